"""The async BackgroundRefreshCredential: any async credential, its tokens refreshed in the background."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.core.credentials_async import AsyncTokenProvider

# The event types by their public names, which load them when first resolved (see _events).
from ._credential_face import CredentialFace
from ._face_async import LoopFace
from ._key_state import CachedToken

__all__ = ["BackgroundRefreshCredential"]


class BackgroundRefreshCredential(CredentialFace[AsyncTokenProvider], LoopFace):
    """An async credential that hands out its cached tokens at once and refreshes them in the background.

    Published as ``bgrefresh_policy.aio.BackgroundRefreshCredential``, for asyncio and trio: the
    async counterpart of :class:`bgrefresh_policy.BackgroundRefreshCredential`, with the same
    options and rules. Wrap an async credential once and give the wrapper to everything that takes
    one: ``azure.*.aio`` clients (``credential=``), Service Bus and Event Hubs, kiota (msgraph).
    Per key (scopes, tenant, CAE), a token with more than ``min_validity`` seconds left is returned
    at once, a due one too while one background task asks the wrapped credential for the next. A
    call waits only when no usable token exists; tasks waiting together share one call of the
    wrapped credential, and each raises the same exception object if it fails. A call with
    ``claims`` always reaches the wrapped credential.

    :param credential: any async credential (``get_token_info`` or ``get_token``), such as
        ``azure.identity.aio.DefaultAzureCredential()``; never modified.
    :type credential: ~azure.core.credentials_async.AsyncTokenProvider
    :keyword float min_validity: seconds; a call finding a due token with less than this left
        waits for a new one. Defaults to 60.
    :keyword float retry_delay: seconds; least time between background attempts for one token
        after a failed attempt or one that gave no newer token. Defaults to 30.
    :keyword float refresh_timeout: seconds; a background refresh running longer is cancelled
        and counts as failed. Defaults to 30.
    :keyword on_refresh: called with a :class:`~bgrefresh_policy.RefreshEvent` after every call of
        the wrapped credential (never with the token); one that raises is logged once.
    :keyword bool refresh_when_idle: refresh each key's token when it falls due even while no call
        comes, so that the first call after a quiet period does not wait. Defaults to False.
    :keyword str share_across_processes: a name: every process of this OS user on this machine
        whose wrapper gives the same name shares one token per key and one credential call in
        flight, through a private store (a 0700 directory of 0600 files, in ``XDG_RUNTIME_DIR``
        or ``/dev/shm``). A process with no usable token waits for another's call, at most
        ``refresh_timeout``; one with a valid due token keeps using it. Needs the ``processes``
        extra (filelock). None (the default) shares nothing across processes.
    :ivar bool closed: True once :meth:`close` has run.
    :raises TypeError: a credential with neither ``get_token_info`` nor ``get_token``, one of
        azure-identity's sync credentials (use ``bgrefresh_policy.BackgroundRefreshCredential``), a
        ``BackgroundRefreshCredential``, a class instead of an instance, or an option of the wrong type.
    :raises PermissionError: (``NotPrivateError``) the store's
        directory exists and is not private to this user.
    :raises NotImplementedError: ``share_across_processes`` on a host without POSIX user ids (Windows).
    :raises ValueError: an empty ``share_across_processes``, a negative or non-finite option.
    """

    _ASYNCHRONOUS = True
    _SYNC_KIND = "bgrefresh_policy.BackgroundRefreshCredential"

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """As :meth:`bgrefresh_policy.BackgroundRefreshCredential.get_token`, awaited.

        :return: an ``AccessToken`` instance.
        :rtype: ~azure.core.credentials.AccessToken
        """
        options = {"claims": claims, "tenant_id": tenant_id, "enable_cae": enable_cae, **kwargs}
        return (await self._get(scopes, options)).as_access_token()

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """As :meth:`bgrefresh_policy.BackgroundRefreshCredential.get_token_info`, awaited.

        :return: the token, with the wrapped credential's ``expires_on`` and ``refresh_on``.
        :rtype: ~azure.core.credentials.AccessTokenInfo
        """
        return (await self._get(scopes, options or {})).as_info()

    async def prefetch(self, *scopes: str, tenant_id: str | None = None, enable_cae: bool = False) -> None:
        """As :meth:`bgrefresh_policy.BackgroundRefreshCredential.prefetch`, awaited: for a lifespan handler."""
        await self._get(scopes, {"tenant_id": tenant_id, "enable_cae": enable_cae})

    async def close(self) -> None:
        """Start no background refresh or idle timer from now on, cancel and await the refreshes this
        wrapper and the policies and providers built on it started, then close the wrapped
        credential, as azure-identity's wrapping credentials (``ChainedTokenCredential``,
        ``DefaultAzureCredential``) close the ones they hold.

        Those policies and providers are closed too: none calls a closed credential in the
        background. Calls after this wait for a token inline. Sets ``closed``. Safe to call more
        than once.
        """
        for face in self._lent_faces():
            if isinstance(face, LoopFace):  # all are: _lend refuses a sync policy
                await face._aclose_refreshes()
        await self._aclose_refreshes()
        close = getattr(self._credential, "close", None)
        if callable(close):
            outcome = close()
            if inspect.isawaitable(outcome):
                await outcome

    async def __aenter__(self) -> BackgroundRefreshCredential:
        """Enter the wrapped credential too, if it is an async context manager.

        :return: the wrapper.
        """
        enter = getattr(self._credential, "__aenter__", None)
        if callable(enter):
            await enter()
        return self

    # --- machinery ---------------------------------------------------------------------

    async def _get(self, scopes: tuple[str, ...], options: TokenRequestOptions | dict[str, Any]) -> CachedToken:
        key, explicit = self._request(scopes, options)
        if explicit is not None:
            return await self._refresh_explicit(key, scopes, explicit)
        cached = self._ready(key) or await self._token_for(key, scopes)
        self._served_key(key)
        return cached

    def _caller(self) -> Callable[..., Awaitable[Any]]:
        return self._call

    async def _call(self, *scopes: str, **kwargs: Any) -> Any:
        return await self._ask(scopes, kwargs)
