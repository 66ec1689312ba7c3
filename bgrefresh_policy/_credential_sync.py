"""BackgroundRefreshCredential: any sync credential, its tokens refreshed on a background thread."""

from __future__ import annotations

import threading
import time
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenProvider, TokenRequestOptions

# The event types by their public names, which load them when first resolved (see _events).
from ._azure_core import ask_credential
from ._credential_face import CredentialFace
from ._face_sync import ThreadFace
from ._key_state import CachedToken

__all__ = ["BackgroundRefreshCredential"]

# A seam for tests: close()'s one deadline for every face it joins.
_monotonic = time.monotonic


class BackgroundRefreshCredential(CredentialFace[TokenProvider], ThreadFace):
    """A credential that hands out its cached tokens at once and refreshes them on a background thread.

    Wrap a credential once and give the wrapper to everything that takes a credential: Azure SDK
    clients (``credential=``), Service Bus and Event Hubs, kiota (msgraph), Kusto, database drivers.
    Per key (scopes, tenant, CAE), a token with more than ``min_validity`` seconds left is returned
    at once, a due one too while one daemon thread asks the wrapped credential for the next. A
    call waits only when no usable token exists; threads waiting together share one call of the
    wrapped credential, and each raises the same exception object if it fails. A call with
    ``claims`` always reaches the wrapped credential.

    Policies, providers and clients given this wrapper (or the credential it wraps, with the same
    options) share its engine: one token per key and one refresh in flight, process-wide.
    Policies and providers built on it take its options.

    :param credential: any sync credential (``get_token_info`` or ``get_token``), such as
        ``azure.identity.DefaultAzureCredential()``; never modified. It is called from more than
        one thread, as azure-identity's credentials allow.
    :type credential: ~azure.core.credentials.TokenProvider
    :keyword float min_validity: seconds; a call finding a due token with less than this left
        waits for a new one. Defaults to 60.
    :keyword float retry_delay: seconds; least time between background attempts for one token
        after a failed attempt or one that gave no newer token. Defaults to 30.
    :keyword float refresh_timeout: seconds; callers stop waiting for a background refresh
        running longer, which counts as failed for them; its thread runs on until the credential
        returns. Also the longest :meth:`close` waits. Defaults to 30.
    :keyword on_refresh: called with a :class:`~bgrefresh_policy.RefreshEvent` after every call of
        the wrapped credential (never with the token); one that raises is logged once.
    :keyword bool refresh_when_idle: refresh each key's token when it falls due even while no call
        comes (a daemon timer thread), so that the first call after a quiet period does not
        wait. Defaults to False.
    :keyword str share_across_processes: a name: every process of this OS user on this machine
        whose wrapper gives the same name shares one token per key and one credential call in
        flight, through a private store (a 0700 directory of 0600 files, in ``XDG_RUNTIME_DIR``
        or ``/dev/shm``). A process with no usable token waits for another's call, at most
        ``refresh_timeout``; one with a valid due token keeps using it. Needs the ``processes``
        extra (filelock). None (the default) shares nothing across processes.
    :ivar bool closed: True once :meth:`close` has run.
    :raises TypeError: a credential with neither ``get_token_info`` nor ``get_token``, an async
        one (use ``bgrefresh_policy.aio.BackgroundRefreshCredential``), a
        ``BackgroundRefreshCredential``, a class instead of an instance, or an option of the wrong type.
    :raises PermissionError: (``NotPrivateError``) the store's
        directory exists and is not private to this user.
    :raises NotImplementedError: ``share_across_processes`` on a host without POSIX user ids (Windows).
    :raises ValueError: an empty ``share_across_processes``, a negative or non-finite option, or a
        ``refresh_timeout`` above ``threading.TIMEOUT_MAX``.
    """

    _ASYNCHRONOUS = False
    _WAIT_LIMIT = threading.TIMEOUT_MAX
    _KIND = "BackgroundRefreshCredential"
    _ASYNC_KIND = "bgrefresh_policy.aio.BackgroundRefreshCredential"

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token for ``scopes``, as ``TokenCredential.get_token`` returns it.

        :param str scopes: the scopes, e.g. ``"https://vault.azure.net/.default"``.
        :keyword str claims: claims from a challenge; the call then reaches the wrapped credential.
        :keyword str tenant_id: the tenant; each tenant has its own token.
        :keyword bool enable_cae: a CAE token; CAE and plain tokens are kept apart.
        :return: an ``AccessToken`` instance.
        :rtype: ~azure.core.credentials.AccessToken
        :raises ValueError: no scope.
        :raises ~azure.core.exceptions.ClientAuthenticationError: or whatever else the wrapped
            credential raises, when no valid token is left to fall back on.
        """
        options = {"claims": claims, "tenant_id": tenant_id, "enable_cae": enable_cae, **kwargs}
        return self._get(scopes, options).as_access_token()

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """A token for ``scopes``, as ``SupportsTokenInfo.get_token_info`` returns it.

        :param str scopes: the scopes, e.g. ``"https://vault.azure.net/.default"``.
        :keyword options: ``claims``, ``tenant_id``, ``enable_cae``, as for :meth:`get_token`.
        :paramtype options: ~azure.core.credentials.TokenRequestOptions
        :return: the token, with the wrapped credential's ``expires_on`` and ``refresh_on``.
        :rtype: ~azure.core.credentials.AccessTokenInfo
        :raises ValueError: no scope.
        :raises ~azure.core.exceptions.ClientAuthenticationError: or whatever else the wrapped
            credential raises, when no valid token is left to fall back on.
        """
        return self._get(scopes, options or {}).as_info()

    def prefetch(self, *scopes: str, tenant_id: str | None = None, enable_cae: bool = False) -> None:
        """Return once the key of ``scopes``, ``tenant_id`` and ``enable_cae`` holds a usable token.

        For start-up: a service that prefetches what its clients need is ready before its first
        request, and a readiness probe reading ``token_status()`` sees every key.

        :param str scopes: the scopes.
        :keyword str tenant_id: the tenant, or None.
        :keyword bool enable_cae: a CAE token.
        :raises ~azure.core.exceptions.ClientAuthenticationError: or whatever else the wrapped credential raised.
        """
        self._get(scopes, {"tenant_id": tenant_id, "enable_cae": enable_cae})

    def close(self) -> None:
        """Start no background refresh or idle timer from now on, join the refreshes this wrapper
        and the policies and providers built on it started, then close the wrapped credential, as
        azure-identity's wrapping credentials (``ChainedTokenCredential``, ``DefaultAzureCredential``)
        close the ones they hold.

        A thread cannot be stopped in the middle of a credential call, so this waits at most
        ``refresh_timeout`` seconds in all; one still running then ends on its own. Those
        policies and providers are closed too: none calls a closed credential in the background.
        Calls after this wait for a token inline. Sets ``closed``. Safe to call more than once.
        """
        # All are (_lend refuses an async policy); each is closed before any is waited for.
        faces = [*(face for face in self._lent_faces() if isinstance(face, ThreadFace)), self]
        for face in faces:
            face._runner.close(face, 0)
        deadline = _monotonic() + self._store.options.refresh_timeout
        for face in faces:
            face._close_refreshes(max(0.0, deadline - _monotonic()))
        close = getattr(self._credential, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> BackgroundRefreshCredential:
        """Enter the wrapped credential too, if it is a context manager.

        :return: the wrapper.
        """
        enter = getattr(self._credential, "__enter__", None)
        if callable(enter):
            enter()
        return self

    # --- machinery ---------------------------------------------------------------------

    def _get(self, scopes: tuple[str, ...], options: TokenRequestOptions | dict[str, Any]) -> CachedToken:
        key, explicit = self._request(scopes, options)
        if explicit is not None:
            return self._refresh_explicit(key, scopes, explicit)
        cached = self._ready(key) or self._token_for(key, scopes)
        self._served_key(key)
        return cached

    def _call_credential(self, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> Any:
        return ask_credential(self._credential, scopes, kwargs)[1]
