"""What the sync and the async ``BackgroundRefreshCredential`` share: options, keys, and what they return.

A wrapper is the engine's face for every consumer that takes a credential rather than a
pipeline policy: an Azure SDK client given it as ``credential=`` (whose azure-core policy then
asks it for each token), AMQP clients, kiota, database drivers. Policies and providers built
on a wrapper unwrap it (:meth:`CredentialFace._lend`): they call the wrapped credential
themselves, on the same engine, so that no refresh ever waits on a refresh of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, ClassVar

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

# The event types by their public names, which load them when first resolved (see _events).
import bgrefresh_policy

from ._face import Face
from ._key_state import CachedToken, TokenKey
from ._options import (
    RefreshOptions,
    check_callback,
    check_credential,
    check_flags,
    check_options_of_wrapper,
    check_wait_limit,
    refresh_options,
    warn_if_inline_only,
)
from ._sharing import shared_for
from ._watch import Observers

__all__ = ["CredentialFace", "as_access_token", "as_token_info"]

# Seen from warn_if_inline_only: CredentialFace.__init__, then the user's call.
_CALLER = 3


def as_token_info(cached: CachedToken) -> AccessTokenInfo:
    """The cached token as an ``AccessTokenInfo``: the credential's own object when it is one."""
    token = cached.token
    if isinstance(token, AccessTokenInfo):
        return token
    return AccessTokenInfo(cached.value, int(cached.expires_on))


def as_access_token(cached: CachedToken) -> AccessToken:
    """The cached token as an ``AccessToken`` instance: the credential's own object when it is one.

    Some consumers accept only an ``AccessToken`` instance (kiota's token provider checks it).
    """
    token = cached.token
    if isinstance(token, AccessToken):
        return token
    return AccessToken(cached.value, int(cached.expires_on))


def _host_shared(credential: Any, name: object, options: RefreshOptions, *, asynchronous: bool) -> Any:
    """``credential`` wrapped to share its tokens through the host store of ``name``.

    :raises TypeError: a name that is not a str.
    :raises ValueError: an empty name.
    """
    if not isinstance(name, str):
        raise TypeError(f"share_across_processes must be a str (a name) or None, not {type(name).__name__}")
    if not name:
        raise ValueError("share_across_processes must be a non-empty name")
    from ._host_credential import host_shared  # loads filelock: only for those who share

    return host_shared(credential, name, options, asynchronous=asynchronous)


class CredentialFace(Face):
    """The options, keys and idle timers of a ``BackgroundRefreshCredential``, sync or async.

    :param credential: the credential to wrap; never modified.
    :keyword float min_validity: see the public classes.
    :keyword float retry_delay: see the public classes.
    :keyword float refresh_timeout: see the public classes.
    :keyword on_refresh: see the public classes.
    :keyword bool refresh_when_idle: see the public classes.
    :keyword str share_across_processes: see the public classes.
    """

    # Set by each public class: whether the wrapped credential is async, and the longest wait.
    _ASYNCHRONOUS: ClassVar[bool]
    _WAIT_LIMIT: ClassVar[float | None] = None

    def __init__(
        self,
        credential: Any,
        *,
        min_validity: float = 60.0,
        retry_delay: float = 30.0,
        refresh_timeout: float = 30.0,
        on_refresh: Callable[[bgrefresh_policy.RefreshEvent], object] | None = None,
        refresh_when_idle: bool = False,
        share_across_processes: str | None = None,
    ) -> None:
        if isinstance(credential, CredentialFace):
            raise TypeError("credential is a BackgroundRefreshCredential already: use it as it is")
        check_credential(credential, asynchronous=self._ASYNCHRONOUS, face="credential")
        check_flags(refresh_when_idle=refresh_when_idle)
        check_callback("on_refresh", on_refresh)
        options = refresh_options(min_validity=min_validity, retry_delay=retry_delay, refresh_timeout=refresh_timeout)
        if self._WAIT_LIMIT is not None:
            check_wait_limit("refresh_timeout", options.refresh_timeout, self._WAIT_LIMIT)
        warn_if_inline_only(options.min_validity, stacklevel=_CALLER)
        if share_across_processes is not None:
            # The engine, and the policies the wrapper lends it to, call the host-shared credential.
            credential = _host_shared(credential, share_across_processes, options, asynchronous=self._ASYNCHRONOUS)
        self._credential = credential
        self._on_refresh = on_refresh
        if on_refresh is not None:
            self._observers = Observers(on_refresh)
        self._shared = shared_for(credential, options=options)
        self._store = self._shared.store
        # The keys plain calls were served for: what refresh_when_idle keeps fresh. Added to under
        # the GIL (a set's add is atomic); read as a snapshot.
        self._served: set[TokenKey] = set()
        self._new_runtime()
        if refresh_when_idle:
            self._refresh_when_idle = True
            self._shared.add_idle(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self._credential).__name__})"

    # --- what a call asks for -----------------------------------------------------------

    @staticmethod
    def _request(
        scopes: tuple[str, ...], options: TokenRequestOptions | dict[str, Any]
    ) -> tuple[TokenKey, dict[str, Any] | None]:
        """The key a call is for, and the credential's arguments if the call must reach it (claims,
        or options this library does not know); None for a plain call, which the engine serves.

        :raises ValueError: no scope.
        """
        if not scopes:
            raise ValueError("at least one scope is required")
        tenant_id = options.get("tenant_id") or None
        cae = bool(options.get("enable_cae"))
        key = TokenKey.of(scopes, tenant_id, cae=cae)
        if not options.get("claims") and set(options) <= {"tenant_id", "enable_cae", "claims"}:
            return key, None
        explicit = {name: value for name, value in options.items() if value is not None}
        if not cae:
            explicit.pop("enable_cae", None)
        return key, explicit

    def _ready(self, key: TokenKey) -> CachedToken | None:
        """The token a plain call for ``key`` returns as it is, without the lock; None if it has more to do."""
        state = self._store.peek(key)
        return self._store.attachable(state, background_allowed=not self.closed) if state is not None else None

    def _served_key(self, key: TokenKey) -> None:
        """A plain call was served for ``key``: with ``refresh_when_idle``, keep it fresh from now on."""
        if self._refresh_when_idle and key not in self._served:
            self._served.add(key)
            self._arm_idle(key)

    def _idle_keys(self) -> Collection[TokenKey]:
        return frozenset(self._served)

    # --- lent to policies and providers ---------------------------------------------------

    def _lend(
        self,
        *,
        asynchronous: bool,
        options: RefreshOptions,
        on_refresh: Callable[[bgrefresh_policy.RefreshEvent], object] | None,
        refresh_when_idle: bool,
    ) -> tuple[Any, RefreshOptions, Callable[[bgrefresh_policy.RefreshEvent], object] | None, bool]:
        """What a policy or provider built on this wrapper uses: the wrapped credential, the
        wrapper's options, its own ``on_refresh`` or else the wrapper's, and ``refresh_when_idle``
        if either asks for it.

        :raises TypeError: a sync policy given an async wrapper, or the other way round.
        :raises ValueError: an option that differs from the wrapper's (see ``check_options_of_wrapper``).
        """
        if asynchronous != self._ASYNCHRONOUS:
            wanted = "bgrefresh_policy.aio" if asynchronous else "bgrefresh_policy"
            raise TypeError(f"{self!r} is for {'async' if self._ASYNCHRONOUS else 'sync'} code: use {wanted}'s")
        held = self._store.options
        check_options_of_wrapper(options, held)
        return self._credential, held, on_refresh or self._on_refresh, refresh_when_idle or self._refresh_when_idle
