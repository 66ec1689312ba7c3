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
  learn a tenant from a 401 and call ``authorize_request(..., tenant_id=...)``; that tenant
  becomes the policy's own, so later requests attach and refresh its token, and a fresh token
  of that tenant that another client on the credential holds answers the challenge.
- Others (ARM's ``ARMChallengeAuthenticationPolicy``, azure-core's own class) need nothing more.

These family internals are the ones this library relies on outside azure-core.
"""

from __future__ import annotations

import threading
from typing import Any

from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy

from ._key_state import TokenKey
from ._policy_async import AsyncBackgroundRefreshTokenPolicy
from ._policy_sync import BackgroundRefreshTokenPolicy

__all__ = ["background_class", "is_bearer_policy"]


def _vault_key(scope: str, challenge: Any) -> TokenKey:
    """The key of the token Key Vault's ``_request_kv_token`` asks for: an AD FS tenant is left out, as there."""
    tenant = getattr(challenge, "tenant_id", None)
    if tenant and tenant.lower().endswith("adfs"):
        tenant = None
    return TokenKey.of((scope,), tenant or None)


class _AsyncKeyVault(AsyncBackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
    """Key Vault's async challenge policy, its tokens from the shared store."""

    def _need_new_token(self) -> bool:
        return self._fresh_for(self._token_key) is None

    async def _request_kv_token(self, scope: str, challenge: Any) -> None:
        key = _vault_key(scope, challenge)
        await self._token_for(key, (scope,))
        self._token_key = key


class _KeyVault(BackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
    """Key Vault's sync challenge policy, its tokens from the shared store."""

    @property
    def _need_new_token(self) -> bool:
        return self._fresh_for(self._token_key) is None

    def _request_kv_token(self, scope: str, challenge: Any) -> None:
        key = _vault_key(scope, challenge)
        self._token_for(key, (scope,))
        self._token_key = key


# Where a 401 with a challenge leaves the token the request carried, for authorize_request to judge.
_REFUSED = "bgrefresh_policy.refused"


def _defer_rejection(policy: Any, request: Any, response: Any) -> bool:
    """Whether to leave judging a refused token to the challenge: a 401 naming another tenant
    refuses the token only for this resource, and the token stays good for its own tenant."""
    if "WWW-Authenticate" not in response.http_response.headers:
        return False
    request.context[_REFUSED] = request.http_request.headers.get("Authorization")
    return True


def _judge_rejection(policy: Any, request: Any, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> None:
    """Drop the refused token if it is the one of the tenant the challenge asks for."""
    carried = request.context.pop(_REFUSED, None)
    held = policy._store.current(TokenKey.of(scopes, kwargs.get("tenant_id")))
    if carried is not None and held is not None and carried == "Bearer " + held.token.token:
        policy._store.invalidate_carrying(carried)


class _AsyncLearnsTenant(AsyncBackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
    """A family policy whose challenge handler asks for a tenant: that tenant becomes the policy's."""

    def _rejected(self, request: Any, response: Any) -> None:
        if not _defer_rejection(self, request, response):
            super()._rejected(request, response)

    async def authorize_request(self, request: Any, *scopes: str, **kwargs: Any) -> None:
        _judge_rejection(self, request, scopes, kwargs)
        if not self._shared_for_challenge(request, scopes, kwargs):
            await super().authorize_request(request, *scopes, **kwargs)
        self._learn_tenant(scopes, kwargs)


class _LearnsTenant(BackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
    """A family policy whose challenge handler asks for a tenant: that tenant becomes the policy's."""

    def _rejected(self, request: Any, response: Any) -> None:
        if not _defer_rejection(self, request, response):
            super()._rejected(request, response)

    def authorize_request(self, request: Any, *scopes: str, **kwargs: Any) -> None:
        _judge_rejection(self, request, scopes, kwargs)
        if not self._shared_for_challenge(request, scopes, kwargs):
            super().authorize_request(request, *scopes, **kwargs)
        self._learn_tenant(scopes, kwargs)


# Protects _CLASSES: clients may be enabled on several threads at once.
_LOCK = threading.Lock()
# Family class -> the class its policies become; made once per family class.
_CLASSES: dict[type, type] = {}


def is_bearer_policy(candidate: Any) -> bool:
    """Whether ``candidate`` is an azure-core bearer policy (of any family, ours included)."""
    return isinstance(candidate, (AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy))


def background_class(family: type) -> type:
    """The class a policy of class ``family`` becomes to refresh in the background.

    :param type family: an azure-core bearer policy class, or a subclass of one.
    :return: ``family`` itself if it is one of ours already; our class for azure-core's own.
    """
    if issubclass(family, (AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy)):
        return family
    asynchronous = issubclass(family, AsyncBearerTokenCredentialPolicy)
    ours: type = AsyncBackgroundRefreshTokenPolicy if asynchronous else BackgroundRefreshTokenPolicy
    if family in (AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy):
        return ours
    with _LOCK:
        made = _CLASSES.get(family)
        if made is None:
            if hasattr(family, "_request_kv_token"):
                adapter: type = _AsyncKeyVault if asynchronous else _KeyVault
            else:
                adapter = _AsyncLearnsTenant if asynchronous else _LearnsTenant
            name = f"BackgroundRefresh{family.__name__}"
            made = _CLASSES[family] = type(name, (adapter, family, ours), {"__module__": __name__})
        return made
