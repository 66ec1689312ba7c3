"""What the sync and the async ``BackgroundRefreshCredential`` share: options, keys, and what they return.

A wrapper is the engine's face for every consumer that takes a credential rather than a
pipeline policy: an Azure SDK client given it as ``credential=`` (whose azure-core policy then
asks it for each token), AMQP clients, kiota, database drivers. Policies and providers built
on a wrapper unwrap it (:meth:`CredentialFace._lend`): they call the wrapped credential
themselves, on the same engine, so that no refresh ever waits on a refresh of its own.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection
from typing import Any, ClassVar, Generic, TypeVar

from azure.core.credentials import TokenRequestOptions

# The event types by their public names, which load them when first resolved (see _events).
from ._face import Face
from ._key_state import CachedToken, TokenKey
from ._options import (
    CredentialOptions,
    RefreshOptions,
    Unpack,
    check_credential,
    check_options_of_wrapper,
    checked_refresh_options,
    take_options,
    warn_if_inline_only,
)
from ._sharing import Shared, shared_for
from ._watch import Observers

__all__ = ["CredentialFace"]

# Seen from warn_if_inline_only: CredentialFace.__init__, then the user's call.
_CALLER = 3
# The credential a public class wraps: azure-core's sync or async token provider protocols.
CredentialT = TypeVar("CredentialT")


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


class CredentialFace(Face, Generic[CredentialT]):
    """The constructor, options, keys and idle timers of a ``BackgroundRefreshCredential``, sync or async.

    The public classes document the arguments; the constructor is written once, here.
    """

    # Set by each public class: whether the wrapped credential is async, and the longest wait.
    _ASYNCHRONOUS: ClassVar[bool]
    _WAIT_LIMIT: ClassVar[float | None] = None
    # Whether it joins its credential's engine; False only for a provider's (share_tokens=False).
    _share_tokens = True
    # Where the user's call is for the min_validity warning; None: judged already (see _providers).
    _warn_from: int | None = _CALLER

    def __init__(self, credential: CredentialT, **options: Unpack[CredentialOptions]) -> None:
        if isinstance(credential, CredentialFace):
            raise TypeError("credential is a BackgroundRefreshCredential already: use it as it is")
        check_credential(credential, asynchronous=self._ASYNCHRONOUS, face="credential")
        taken = take_options(dict(options), CredentialOptions, caller=type(self).__name__)
        refresh = checked_refresh_options(taken, wait_limit=self._WAIT_LIMIT)
        if self._warn_from is not None:
            warn_if_inline_only(refresh.min_validity, stacklevel=self._warn_from)
        on_refresh, refresh_when_idle = taken["on_refresh"], taken["refresh_when_idle"]
        name = taken["share_across_processes"]
        if name is not None:
            # The engine, and the policies the wrapper lends it to, call the host-shared credential.
            credential = _host_shared(credential, name, refresh, asynchronous=self._ASYNCHRONOUS)
        self._credential: Any = credential
        self._on_refresh = on_refresh
        if on_refresh is not None:
            self._observers = Observers(on_refresh)
        # Its own engine only for a provider built with share_tokens=False (see _providers).
        self._shared = shared_for(credential, options=refresh) if self._share_tokens else Shared(refresh)
        self._store = self._shared.store
        # The keys plain calls were served for: what refresh_when_idle keeps fresh. Added to under
        # the GIL (a set's add is atomic); read as a snapshot.
        self._served: set[TokenKey] = set()
        # The policies and providers built on the wrapper: its close() closes them too, since a
        # provider has no close() of its own and they all call the credential it closes.
        self._lent: weakref.WeakSet[Face] = weakref.WeakSet()
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

    def _lend(self, borrower: Face, *, asynchronous: bool, taken: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """What a policy or provider built on this wrapper uses: the wrapped credential, and its
        options (``take_options``'s, checked) with the wrapper's refresh options, its own
        ``on_refresh`` or else the wrapper's, and ``refresh_when_idle`` if either asks for it.
        The wrapper's ``close()`` closes ``borrower``'s refreshes too (see :meth:`_lent_faces`).

        :raises TypeError: a sync policy given an async wrapper, or the other way round.
        :raises ValueError: an option that differs from the wrapper's (see ``check_options_of_wrapper``).
        """
        if asynchronous != self._ASYNCHRONOUS:
            wanted = "bgrefresh_policy.aio" if asynchronous else "bgrefresh_policy"
            raise TypeError(f"{self!r} is for {'async' if self._ASYNCHRONOUS else 'sync'} code: use {wanted}'s")
        held = self._store.options
        check_options_of_wrapper(checked_refresh_options(taken, wait_limit=None), held)
        self._lent.add(borrower)
        lent = {
            **taken,
            **{name: getattr(held, name) for name in RefreshOptions.__slots__},
            "on_refresh": taken["on_refresh"] or self._on_refresh,
            "refresh_when_idle": taken["refresh_when_idle"] or self._refresh_when_idle,
        }
        return self._credential, lent

    def _lent_faces(self) -> list[Face]:
        """The policies and providers built on the wrapper that are still alive, for ``close()``."""
        return list(self._lent)
