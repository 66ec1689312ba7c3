"""What the async and the sync policy share: options, their own key, the hot path, azure-core's
``_token``, adoption by enable_background_refresh, challenges, 401 handling and pickling.

Refreshes, health and idle timers are every face's (:mod:`._face`)."""

from __future__ import annotations

from typing import Any, ClassVar

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline import PipelineRequest

# The event types by their public names, which load them when first resolved (see _events).
from ._azure_core import cae_enabled, enforce_https, policy_credential, policy_scopes
from ._face import Face, is_wrapper
from ._key_state import CachedToken, TokenKey, checked_token
from ._options import (
    PolicyOptions,
    Unpack,
    check_credential,
    check_scopes,
    checked_refresh_options,
    take_options,
    warn_if_inline_only,
)
from ._sharing import Shared, shared_for
from ._watch import Observers

__all__ = ["PolicyBase"]


TokenLike = AccessToken | AccessTokenInfo


class PolicyBase(Face):
    """Mixed in after azure-core's bearer policy, whose ``_token`` attribute it turns into a view.

    After, so that the policies' layout base is azure-core's class: an azure-core policy object
    can then change class to one built on this (enable_background_refresh). No name here is one
    azure-core defines, so the order decides nothing else.

    Subclasses call :meth:`_configure` before azure-core's ``__init__``, which assigns
    ``self._token`` and so already goes through the setter.
    """

    # Set by azure-core's __init__.
    _credential: Any
    _scopes: tuple[str, ...]
    # Set by _share: the policy's own key (its scopes, and a tenant a challenge taught it), and
    # the key azure-core's single _token attribute stands for.
    _default_key: TokenKey
    _token_key: TokenKey
    # Attributes that hold locks, threads, tasks or shared tokens: not copied or pickled;
    # _share and _new_runtime remake them.
    _RUNTIME: tuple[str, ...] = ()
    _SHARED = ("_shared", "_store", "_own", "closed", "_held", "_lender")  # _held: Key Vault's (_families)
    # The BackgroundRefreshCredential the policy was built on, if any.
    _lender: Any = None
    # Whether the policy shares its credential's tokens (the share_tokens option).
    _share_tokens = True
    # Whether its tokens are CAE ones (enable_cae): part of every key it uses.
    _cae = False
    _last_jitter = 0  # see _refresh_jitter
    # True while azure-core's __init__ runs: its "no token yet" and "jitter 0" are about the
    # policy it thinks it is making, not about the token this one may already share.
    _initialising = False
    # Set by each policy class: whether its credential is async, the longest its waits may be, and
    # the azure-core policy it stands in for.
    _ASYNCHRONOUS: bool
    _WAIT_LIMIT: float | None = None
    _AZURE_CORE_POLICY: ClassVar[type[Any]]
    # Derived per subclass (__init_subclass__): whether its on_request is the policy's own, and
    # whether it hooks on_response or on_exception. When it is and does not, send() takes the
    # fast path.
    _own_on_request = True
    _hooks = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_AZURE_CORE_POLICY" in vars(cls):  # a policy class itself: what its subclasses are held to
            return
        ours: Any = next(klass for klass in cls.__mro__ if "_AZURE_CORE_POLICY" in vars(klass))
        core = ours._AZURE_CORE_POLICY
        cls._own_on_request = cls.on_request is ours.on_request  # type: ignore[attr-defined]
        cls._hooks = (
            cls.on_response is not core.on_response  # type: ignore[attr-defined]
            or cls.on_exception is not core.on_exception  # type: ignore[attr-defined]
        )

    def _init_policy(self, credential: Any, *scopes: str, **kwargs: Unpack[PolicyOptions]) -> None:
        """Both policies' ``__init__``, which each class documents.

        Written once here and assigned in each class: azure-core's class comes first in their
        bases, so an ``__init__`` inherited from this mixin would never be found.
        """
        rest: dict[str, Any] = dict(kwargs)
        credential = self._configure(credential, scopes, rest)
        # Last: azure-core's __init__ assigns self._token, which our setter handles (and ignores).
        self._AZURE_CORE_POLICY.__init__(self, credential, *scopes, enable_cae=self._cae, **rest)
        self._configured()

    def _configure(
        self, credential: Any, scopes: tuple[str, ...], kwargs: dict[str, Any], *, scopes_required: bool = True
    ) -> Any:
        """Take the options out of ``kwargs``, check them, and join the engine; the credential
        azure-core's ``__init__`` is to hold.

        That is the credential given, or for a ``BackgroundRefreshCredential`` the one it wraps,
        with the wrapper's options (see ``CredentialFace._lend``). What is left in ``kwargs`` goes
        to azure-core's ``__init__``.
        """
        check_credential(credential, asynchronous=self._ASYNCHRONOUS)
        if scopes_required:
            check_scopes(scopes)
        taken = take_options(kwargs, PolicyOptions, caller=type(self).__name__, others_allowed=True)
        options = checked_refresh_options(taken, wait_limit=self._WAIT_LIMIT)
        if is_wrapper(credential):
            self._lender = credential  # whose close() ends this policy's refreshes too
            credential, taken = credential._lend(self, asynchronous=self._ASYNCHRONOUS, taken=taken)
            options = checked_refresh_options(taken, wait_limit=self._WAIT_LIMIT)
        else:
            warn_if_inline_only(options.min_validity)  # a wrapper's were judged when it was made
        on_refresh, refresh_when_idle = taken["on_refresh"], taken["refresh_when_idle"]
        if on_refresh is not None:
            self._observers = Observers(on_refresh)
        if refresh_when_idle:
            self._refresh_when_idle = True
        if not taken["share_tokens"]:
            self._share_tokens = False
        if taken["enable_cae"]:
            self._cae = True
        self._share(credential, options, self._key(scopes))
        self._initialising = True  # until _configured()
        return credential

    def _configured(self, *, idle: bool = True) -> None:
        """Called once azure-core's ``__init__`` has run.

        :keyword bool idle: start refreshing while idle, if asked to (not for a stand-in).
        """
        del self._initialising
        if idle:
            self._start_idle()

    def _idle_keys(self) -> tuple[TokenKey]:
        return (self._default_key,)

    # Whether a token an azure-core policy held before enable_background_refresh took it over is
    # known to be for the policy's own key (not so where a challenge may have taught a tenant).
    _ADOPTS_HELD_TOKEN = True

    @classmethod
    def _adoption_state(cls, policy: Any, **options: Any) -> dict[str, Any]:
        """What an azure-core bearer policy, still of its own class, needs to become one of this class.

        For :func:`~bgrefresh_policy.enable_background_refresh`: options are checked and the
        state built on a stand-in of this class, so that a bad option leaves the policy as it was;
        the caller adds the attributes, then changes the class (a thread using the policy
        meanwhile never meets this class without its state), then calls :meth:`_adopted`.

        :param policy: the policy, built by its family's ``__init__``.
        :keyword options: ``min_validity``, ``retry_delay``, ``refresh_timeout``, ``share_tokens``.
        :return: the attributes to add to the policy.
        """
        stand_in = cls.__new__(cls)
        stand_in.__dict__.update(policy.__dict__)
        scopes, cae, held = policy_scopes(policy), cae_enabled(policy), policy_credential(policy)
        credential = stand_in._configure(held, scopes, {**options, "enable_cae": cae}, scopes_required=False)
        stand_in._configured(idle=False)
        state = {name: value for name, value in stand_in.__dict__.items() if name not in policy.__dict__}
        if credential is not held:  # a BackgroundRefreshCredential's: the one it wraps
            state["_credential"] = credential
        return state

    def _adopted(self) -> None:
        """Once the class has changed: the token azure-core's attributes held moves into the store.

        Only where it is surely the policy's own key's, and the store has none for it yet.
        """
        held = self.__dict__.pop("_token", None)
        jitter = self.__dict__.pop("_refresh_jitter", 0)
        if held is not None and self._ADOPTS_HELD_TOKEN and self._store.current(self._default_key) is None:
            self._store.store(self._default_key, checked_token(held, "get_token_info"), jitter=jitter)
        if self._lender is not None:  # lent to the stand-in the state was built on: now to this policy
            self._lender._lent.add(self)
        self._start_idle()

    def _follow(self, key: TokenKey) -> None:
        """Make ``key`` the policy's own: its requests attach, and refresh, that key's token.

        For the families whose challenge teaches the scope and tenant (see :mod:`._families`).
        """
        if key != self._default_key:
            self._own = self._store.pin(key)
            self._default_key = self._own.key or key
            self._scopes = self._default_key.scopes  # what on_request asks the credential for
            if self._refresh_when_idle:  # its token came through authorize_request, before this
                self._arm_idle(self._default_key)
        self._token_key = self._default_key

    def _key(self, scopes: tuple[str, ...], tenant_id: str | None = None) -> TokenKey:
        """The key of this policy's token for ``scopes`` and ``tenant_id``: CAE or not, as the policy is."""
        return TokenKey.of(scopes, tenant_id, cae=self._cae)

    def _share(self, credential: Any, options: Any, key: TokenKey) -> None:
        """Join the tokens and refreshes of every policy on ``credential`` (or keep its own)."""
        if self._share_tokens:
            self._shared = shared_for(credential, options=options)
        else:
            self._shared = Shared(options)
        self._store = self._shared.store
        # The state of the policy's own key, held here: the hot path reads it without a lookup.
        self._own = self._store.pin(key)
        self._default_key = self._own.key or key  # the store's, shared by every policy of the key
        self._first_key = self._default_key  # before any challenge taught another (see _follow)
        # The key azure-core's single _token attribute stands for: the one last used by
        # on_request (the policy's scopes), _request_token() or authorize_request().
        self._token_key = self._default_key
        self._new_runtime()

    # --- azure-core's _token, as a view of the key last used ------------------------------

    @property
    def _token(self) -> TokenLike | None:
        """The token azure-core's attribute would hold: the cached one for the key last used."""
        current = self._store.current(self._token_key)
        return current.token if current is not None else None

    @_token.setter
    def _token(self, value: TokenLike | None) -> None:
        if self._initialising:
            return
        if value is not None:
            # Judged with the jitter azure-core would use: the one of the token it replaces.
            self._store.store(self._token_key, checked_token(value, "get_token_info"), jitter=self._refresh_jitter)
            return
        self._last_jitter = self._refresh_jitter  # azure-core keeps it across a dropped token
        self._store.invalidate(self._token_key)

    @property
    def _refresh_jitter(self) -> int:
        """azure-core's jitter for ``_token``: the one that token was drawn with when it was obtained.

        With no token, the last one seen (azure-core's attribute outlives its token), 0 at first.
        """
        current = self._store.current(self._token_key)
        return current.jitter if current is not None else self._last_jitter

    @_refresh_jitter.setter
    def _refresh_jitter(self, value: int) -> None:
        if self._initialising:
            return
        self._last_jitter = value
        current = self._store.current(self._token_key)
        if current is not None:
            current.jitter = value

    def _token_is_due(self) -> bool:
        """Whether the token ``_token`` stands for is missing or due, under azure-core's rule."""
        current = self._store.current(self._token_key)
        return current is None or current.is_due(self._store.clock())

    # --- requests and refreshes ------------------------------------------------------------

    def _attach(self, request: PipelineRequest[Any], key: TokenKey, cached: CachedToken) -> None:
        self._token_key = key
        request.http_request.headers["Authorization"] = cached.header

    def _attachable_own(self) -> CachedToken | None:
        """The token of the policy's own key if a request attaches it as it is; None if it has more to do.

        The pinned state and one comparison for a token that is not due: no lock, no key hashed.
        """
        cached = self._own.current
        store = self._store
        if cached is None or store.clock() >= cached.fresh_until:
            # Due: attached if a refresh runs or backs off.
            return store.attachable(self._own, background_allowed=not self.closed)
        return cached

    def _attach_own(self, request: PipelineRequest[Any]) -> bool:
        """Do what ``on_request`` does when the policy's token can be attached as it is.

        The hot path (see :meth:`_attachable_own`): nothing allocated but the header.

        :return: whether it could; if not, the request needs ``on_request`` itself.
        """
        # _attachable_own, written out: a call less on the path every request takes.
        cached = self._own.current
        if cached is None or self._store.clock() >= cached.fresh_until:
            cached = self._store.attachable(self._own, background_allowed=not self.closed)
            if cached is None:
                return False
        enforce_https(request)
        self._token_key = self._default_key
        request.http_request.headers["Authorization"] = cached.header
        return True

    def _shared_for_challenge(
        self, request: PipelineRequest[Any], scopes: tuple[str, ...], kwargs: dict[str, Any]
    ) -> bool:
        """Answer a family's tenant challenge with the shared token of that tenant, if one is fresh.

        Without claims, a challenge asks only for a token of its tenant: the one another client on
        the credential holds is as good, unless it is the very token the service refused.

        :return: whether it attached one; if not, the caller asks the credential.
        """
        if kwargs.get("claims") or not set(kwargs) <= {"tenant_id", "claims"}:
            return False
        key = self._key(scopes, kwargs.get("tenant_id"))
        cached = self._fresh_for(key)
        if cached is None or request.http_request.headers.get("Authorization") == cached.header:
            return False
        self._attach(request, key, cached)
        return True

    def _fresh_for(self, key: TokenKey) -> CachedToken | None:
        """The cached token for ``key`` if it is not due yet, else None."""
        current = self._store.current(key)
        return current if current is not None and self._store.clock() < current.fresh_until else None

    def _rejected(self, request: PipelineRequest[Any]) -> None:
        """A 401 answered ``request``: drop the token it carried, if that token is still cached.

        azure-core's policy drops whatever it holds; dropping only the rejected token means a burst
        of 401s for one revoked token costs one refresh, and a token obtained since stays.
        """
        carried = request.http_request.headers.get("Authorization")
        if carried is not None:
            self._store.invalidate_carrying(carried)

    # --- pickling: runtime objects and cached tokens stay behind -------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in (*self._RUNTIME, *self._SHARED):
            state.pop(name, None)
        # A copy is a new, open policy. It shares the tokens of its credential, as any policy
        # built on it does; unpickled elsewhere, that credential is a new object, with none yet.
        state["_options"] = self._store.options
        state["_key"] = self._default_key
        # ``next`` stays, as in azure-core's policies: a client or pipeline pickled whole is linked
        # as it was; a policy pickled alone brings the rest of its pipeline, as azure-core's does.
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        options, key = state.pop("_options"), state.pop("_key")
        self.__dict__.update(state)
        self._cae = key.cae
        self._share(self._credential, options, key)
        self._start_idle()
