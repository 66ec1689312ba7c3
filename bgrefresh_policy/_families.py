"""The Azure SDK families' own bearer policies, given background refresh with their behaviour kept.

:func:`background_class` gives the class an already built family policy becomes. Its method
order is: a small adapter of ours, then the family's class (so its ``on_challenge``, and for
Key Vault its ``send`` and ``on_request``, keep working), then our policy (the token store and
refreshes), then azure-core's. The family's code then gets its tokens through ours:

- Key Vault (``ChallengeAuthPolicy``, ``AsyncChallengeAuthPolicy``, in each ``azure-keyvault-*``
  package's ``_shared``) learns scope and tenant from its challenge and gets tokens through its
  ``_request_kv_token(scope, challenge)``, asking first ``_need_new_token``. The adapter answers
  both from the shared store, refreshing the challenge's tenant in the background.
- Storage (``StorageBearerTokenCredentialPolicy``) and Tables (``BearerTokenChallengePolicy``)
  learn a scope and tenant from a 401 and call ``authorize_request(..., tenant_id=...)``; that
  key becomes the policy's own, so later requests attach and refresh its token; a fresh token of
  it that another client on the credential holds answers the challenge; and a client built later
  for the same service starts with that key.
- Others (ARM's ``ARMChallengeAuthenticationPolicy``, azure-core's own class) need nothing more.

These family internals are the ones this library relies on outside azure-core.
"""

from __future__ import annotations

import os
import threading
from typing import Any, ClassVar, SupportsIndex
from urllib.parse import urlsplit

from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy

from ._key_state import TokenKey
from ._policy_async import AsyncBackgroundRefreshTokenPolicy
from ._policy_base import PolicyBase
from ._policy_sync import BackgroundRefreshTokenPolicy

__all__ = ["background_class", "is_bearer_policy"]


def _vault_key(policy: PolicyBase, scope: str, challenge: Any) -> TokenKey:
    """The key of the token Key Vault's ``_request_kv_token`` asks for: an AD FS tenant is left out, as there."""
    tenant = getattr(challenge, "tenant_id", None)
    if tenant and tenant.lower().endswith("adfs"):
        tenant = None
    return policy._key((scope,), tenant or None)


def _origin(request: Any) -> str:
    """The service a request goes to (scheme and host): what a challenge's tenant is learned for."""
    parts = urlsplit(request.http_request.url)
    return f"{parts.scheme}://{parts.netloc}".lower()


# --- Key Vault ---------------------------------------------------------------------------
#
# Key Vault's on_request asks _need_new_token, then calls _request_kv_token if needed, then reads
# self._token. The policy keeps the token it last got (_held) and shows that as _token, so that
# another client on the credential dropping the shared token in between cannot leave it None;
# and "self._token = None" (its 401 handling) drops the shared token only if it is that one.


def _held_token(policy: Any) -> Any:
    held = policy.__dict__.get("_held")
    return held.token if held is not None else None


def _hold_token(policy: Any, value: Any) -> None:
    held = policy.__dict__.pop("_held", None)
    if value is None:
        if held is not None and not policy._initialising:
            policy._store.invalidate(policy._token_key, held.serial)
        return
    PolicyBase._token.fset(policy, value)  # type: ignore[attr-defined]
    policy._held = policy._store.current(policy._token_key)


def _hold_challenged(policy: Any, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> None:
    """After the challenge's authorize_request: its key is the policy's, its token the one held."""
    policy._follow(policy._key(scopes, kwargs.get("tenant_id")))
    policy._held = policy._own.current


def _needs_token(policy: Any) -> bool:
    held = policy.__dict__.get("_held")
    return held is None or policy._store.clock() >= held.fresh_until or held is not policy._own.current


class _AsyncKeyVault(AsyncBackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
    """Key Vault's async challenge policy, its tokens from the shared store."""

    _ADOPTS_HELD_TOKEN = False  # its own key is learned from each vault's challenge
    _token = property(_held_token, _hold_token)

    def _need_new_token(self) -> bool:
        return _needs_token(self)

    async def _request_kv_token(self, scope: str, challenge: Any) -> None:
        key = _vault_key(self, scope, challenge)
        self._follow(key)
        self._held = await self._token_for(key, key.scopes)

    async def authorize_request(self, request: Any, *scopes: str, **kwargs: Any) -> None:
        if not self._shared_for_challenge(request, scopes, kwargs):  # another vault of the tenant's
            await super().authorize_request(request, *scopes, **kwargs)
        _hold_challenged(self, scopes, kwargs)


class _KeyVault(BackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
    """Key Vault's sync challenge policy, its tokens from the shared store."""

    _ADOPTS_HELD_TOKEN = False
    _token = property(_held_token, _hold_token)

    @property
    def _need_new_token(self) -> bool:
        return _needs_token(self)

    def _request_kv_token(self, scope: str, challenge: Any) -> None:
        key = _vault_key(self, scope, challenge)
        self._follow(key)
        self._held = self._token_for(key, key.scopes)

    def authorize_request(self, request: Any, *scopes: str, **kwargs: Any) -> None:
        if not self._shared_for_challenge(request, scopes, kwargs):
            super().authorize_request(request, *scopes, **kwargs)
        _hold_challenged(self, scopes, kwargs)


# --- Storage and Tables --------------------------------------------------------------------
#
# Their on_challenge learns the scope and tenant from a 401 and calls authorize_request with them.
# The policy follows that key from then on (as azure-core's keeps using the token it got), and
# leaves a hint in the shared store: a client built later for the same service starts with it.


def _learned(policy: Any, request: Any, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> None:
    key = policy._key(scopes, kwargs.get("tenant_id"))
    if key != policy._default_key:
        policy._store.hints[(_origin(request), policy._first_key)] = key
        policy._follow(key)


def _use_hint(policy: Any, request: Any) -> None:
    hints = policy._store.hints
    if hints and policy._default_key is policy._first_key:
        key = hints.get((_origin(request), policy._first_key))
        if key is not None:
            policy._follow(key)


class _AsyncLearnsTenant(AsyncBackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
    """A family policy whose challenge handler asks for a tenant (and scope): the policy's from then on."""

    _ADOPTS_HELD_TOKEN = False  # it may be the token of a tenant a challenge taught

    async def on_request(self, request: Any) -> None:
        _use_hint(self, request)
        await super().on_request(request)

    async def authorize_request(self, request: Any, *scopes: str, **kwargs: Any) -> None:
        if not self._shared_for_challenge(request, scopes, kwargs):
            await super().authorize_request(request, *scopes, **kwargs)
        _learned(self, request, scopes, kwargs)


class _LearnsTenant(BackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
    """A family policy whose challenge handler asks for a tenant (and scope): the policy's from then on."""

    _ADOPTS_HELD_TOKEN = False

    def on_request(self, request: Any) -> None:
        _use_hint(self, request)
        super().on_request(request)

    def authorize_request(self, request: Any, *scopes: str, **kwargs: Any) -> None:
        if not self._shared_for_challenge(request, scopes, kwargs):
            super().authorize_request(request, *scopes, **kwargs)
        _learned(self, request, scopes, kwargs)


# Protects _CLASSES: clients may be enabled on several threads at once. A new one in a forked
# child: another thread may have held it at the fork.
_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
# Family class -> the class its policies become; made once per family class.
_CLASSES: dict[type, type[PolicyBase]] = {}


def _adapters(family: type, asynchronous: bool) -> tuple[type, ...]:
    """What goes before the family's class: Key Vault's token calls, or a challenge that teaches a key."""
    if hasattr(family, "_request_kv_token"):
        return (_AsyncKeyVault if asynchronous else _KeyVault,)
    base = AsyncBearerTokenCredentialPolicy if asynchronous else BearerTokenCredentialPolicy
    if family.on_challenge is not base.on_challenge:  # type: ignore[attr-defined]
        return (_AsyncLearnsTenant if asynchronous else _LearnsTenant,)
    return ()  # adds nothing to azure-core's challenge handling (ARM's policy)


def is_bearer_policy(candidate: Any) -> bool:
    """Whether ``candidate`` is an azure-core bearer policy (of any family, ours included)."""
    return isinstance(candidate, (AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy))


class _MadeFor:
    """Mixed into every class :func:`background_class` makes: such a policy is pickled (and copied)
    by the family class it was made for, which is importable, and made again where it is loaded."""

    __slots__ = ()  # adds nothing to the instances' layout: their class changes in place (see _enable)
    _FAMILY: ClassVar[type]

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        return (_rebuild, (self._FAMILY, self.__getstate__()))  # type: ignore[attr-defined]


def _rebuild(family: type, state: dict[str, Any]) -> PolicyBase:
    """A policy of ``background_class(family)`` with ``state``: how a pickled one is loaded."""
    made = background_class(family)
    policy = made.__new__(made)
    policy.__setstate__(state)
    return policy


def background_class(family: type) -> type[PolicyBase]:
    """The class a policy of class ``family`` becomes to refresh in the background.

    :param type family: an azure-core bearer policy class, or a subclass of one.
    :return: ``family`` itself if it is one of ours already; our class for azure-core's own.
    """
    if issubclass(family, PolicyBase):
        return family
    asynchronous = issubclass(family, AsyncBearerTokenCredentialPolicy)
    ours: type[PolicyBase] = AsyncBackgroundRefreshTokenPolicy if asynchronous else BackgroundRefreshTokenPolicy
    if family in (AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy):
        return ours
    with _LOCK:
        made = _CLASSES.get(family)
        if made is None:
            name = f"BackgroundRefresh{family.__name__}"
            bases = (*_adapters(family, asynchronous), family, ours, _MadeFor)
            made = _CLASSES[family] = type(name, bases, {"__module__": __name__, "_FAMILY": family})
        return made
