"""Token providers: what azure-identity's ``get_bearer_token_provider`` returns, refreshing in the background."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from azure.core.credentials import TokenProvider
from azure.core.credentials_async import AsyncTokenProvider

# The event type by its public name, which loads it when first resolved (see _events).
import bgrefresh_policy

if TYPE_CHECKING:
    from ._key_state import CachedToken

__all__ = ["get_async_bearer_token_provider", "get_bearer_token_provider"]


def get_bearer_token_provider(
    credential: TokenProvider,
    *scopes: str,
    enable_cae: bool = False,
    min_validity: float = 60.0,
    retry_delay: float = 30.0,
    refresh_timeout: float = 30.0,
    share_tokens: bool = True,
    on_refresh: Callable[[bgrefresh_policy.RefreshEvent], object] | None = None,
    refresh_when_idle: bool = False,
) -> Callable[[], str]:
    """A callable that returns a bearer token for ``scopes``, refreshed on a background thread.

    The contract of azure-identity's function of this name, for consumers that take a token
    provider rather than a pipeline policy (the OpenAI SDK's ``azure_ad_token_provider``, database
    drivers): each call returns a valid token string. Once the token is due, calls go on
    returning it at once while one background thread asks the credential for the next; a call
    waits only when no usable token is left. Backed by :class:`~bgrefresh_policy.BackgroundRefreshTokenPolicy`, so
    it shares tokens with every policy and provider on the same credential object.

    :param credential: a sync credential, such as ``azure.identity.DefaultAzureCredential()``.
    :type credential: ~azure.core.credentials.TokenProvider
    :param str scopes: the scopes, e.g. ``"https://cognitiveservices.azure.com/.default"``.
    :keyword bool enable_cae: as :class:`~bgrefresh_policy.BackgroundRefreshTokenPolicy` takes it,
        and so are ``min_validity``, ``retry_delay``, ``refresh_timeout``, ``share_tokens``,
        ``on_refresh`` and ``refresh_when_idle``: keyword-only, so that a misspelt one is a
        ``TypeError`` (and a type checker's error). A provider has no ``close()``: its idle timer,
        if any, ends with it.
    :return: a callable returning the token string.
    :rtype: ~collections.abc.Callable[[], str]
    :raises TypeError: or ValueError, as the policy's constructor raises them.
    """
    from ._policy_sync import BackgroundRefreshTokenPolicy

    policy: Any = BackgroundRefreshTokenPolicy(
        credential,
        *scopes,
        enable_cae=enable_cae,
        min_validity=min_validity,
        retry_delay=retry_delay,
        refresh_timeout=refresh_timeout,
        share_tokens=share_tokens,
        on_refresh=on_refresh,
        refresh_when_idle=refresh_when_idle,
    )

    def provide_token() -> str:
        cached: CachedToken = policy._attachable_own() or policy._token_for(policy._default_key, policy._scopes)
        return cached.value

    return provide_token


def get_async_bearer_token_provider(
    credential: AsyncTokenProvider,
    *scopes: str,
    enable_cae: bool = False,
    min_validity: float = 60.0,
    retry_delay: float = 30.0,
    refresh_timeout: float = 30.0,
    share_tokens: bool = True,
    on_refresh: Callable[[bgrefresh_policy.RefreshEvent], object] | None = None,
    refresh_when_idle: bool = False,
) -> Callable[[], Coroutine[Any, Any, str]]:
    """A coroutine function that returns a bearer token for ``scopes``, refreshed in the background.

    Published as ``bgrefresh_policy.aio.get_bearer_token_provider``: the contract of
    ``azure.identity.aio.get_bearer_token_provider``, backed by
    :class:`~bgrefresh_policy.AsyncBackgroundRefreshTokenPolicy` (asyncio or trio). A due token is returned at once
    while one background task asks the credential for the next.

    :param credential: an async credential, such as ``azure.identity.aio.DefaultAzureCredential()``.
    :type credential: ~azure.core.credentials_async.AsyncTokenProvider
    :param str scopes: the scopes, e.g. ``"https://cognitiveservices.azure.com/.default"``.
    :keyword bool enable_cae: as :class:`~bgrefresh_policy.AsyncBackgroundRefreshTokenPolicy` takes
        it, and so are ``min_validity``, ``retry_delay``, ``refresh_timeout``, ``share_tokens``,
        ``on_refresh`` and ``refresh_when_idle``: keyword-only, so that a misspelt one is a
        ``TypeError`` (and a type checker's error).
    :return: a coroutine function returning the token string.
    :raises TypeError: or ValueError, as the policy's constructor raises them.
    """
    from ._policy_async import AsyncBackgroundRefreshTokenPolicy

    policy: Any = AsyncBackgroundRefreshTokenPolicy(
        credential,
        *scopes,
        enable_cae=enable_cae,
        min_validity=min_validity,
        retry_delay=retry_delay,
        refresh_timeout=refresh_timeout,
        share_tokens=share_tokens,
        on_refresh=on_refresh,
        refresh_when_idle=refresh_when_idle,
    )

    async def provide_token() -> str:
        cached: CachedToken = policy._attachable_own() or await policy._token_for(policy._default_key, policy._scopes)
        return cached.value

    return provide_token
