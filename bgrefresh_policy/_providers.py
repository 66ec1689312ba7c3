"""Token providers: what azure-identity's ``get_bearer_token_provider`` returns, refreshing in the background."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from azure.core.credentials import TokenProvider
from azure.core.credentials_async import AsyncTokenProvider

from ._options import PolicyOptions, Unpack, take_options

if TYPE_CHECKING:
    from ._key_state import CachedToken

__all__ = ["get_async_bearer_token_provider", "get_bearer_token_provider"]


def _policy(policy_class: Any, credential: Any, scopes: tuple[str, ...], options: dict[str, Any], caller: str) -> Any:
    """The policy behind a provider; any keyword that is not a policy option is refused, as a call would."""
    return policy_class(credential, *scopes, **take_options(dict(options), PolicyOptions, caller=caller))


def get_bearer_token_provider(
    credential: TokenProvider, *scopes: str, **options: Unpack[PolicyOptions]
) -> Callable[[], str]:
    """A callable that returns a bearer token for ``scopes``, refreshed on a background thread.

    The contract of azure-identity's function of this name, for consumers that take a token
    provider rather than a pipeline policy (the OpenAI SDK's ``azure_ad_token_provider``, database
    drivers): each call returns a valid token string. Once the token is due, calls go on
    returning it at once while one background thread asks the credential for the next; a call
    waits only when no usable token is left. Backed by :class:`~bgrefresh_policy.BackgroundRefreshTokenPolicy`, so
    it shares tokens with every policy, provider and credential wrapper on the same credential
    object (a :class:`~bgrefresh_policy.BackgroundRefreshCredential` given here lends its engine and options).

    :param credential: a sync credential, such as ``azure.identity.DefaultAzureCredential()``.
    :type credential: ~azure.core.credentials.TokenProvider
    :param str scopes: the scopes, e.g. ``"https://cognitiveservices.azure.com/.default"``.
    :keyword bool enable_cae: as :class:`~bgrefresh_policy.BackgroundRefreshTokenPolicy` takes it,
        and so are ``min_validity``, ``retry_delay``, ``refresh_timeout``, ``share_tokens``,
        ``on_refresh`` and ``refresh_when_idle``: keyword-only and typed, so that a misspelt one
        is a ``TypeError`` (and a type checker's error). A provider has no ``close()``: its idle
        timer, if any, ends with it.
    :return: a callable returning the token string.
    :rtype: ~collections.abc.Callable[[], str]
    :raises TypeError: a keyword that is no option, or what the policy's constructor raises (and
        ValueError).
    """
    from ._policy_sync import BackgroundRefreshTokenPolicy

    policy = _policy(BackgroundRefreshTokenPolicy, credential, scopes, dict(options), "get_bearer_token_provider")

    def provide_token() -> str:
        cached: CachedToken = policy._attachable_own() or policy._token_for(policy._default_key, policy._scopes)
        return cached.value

    return provide_token


def get_async_bearer_token_provider(
    credential: AsyncTokenProvider, *scopes: str, **options: Unpack[PolicyOptions]
) -> Callable[[], Coroutine[Any, Any, str]]:
    """A coroutine function that returns a bearer token for ``scopes``, refreshed in the background.

    Published as ``bgrefresh_policy.aio.get_bearer_token_provider``: the contract of
    ``azure.identity.aio.get_bearer_token_provider``, backed by
    :class:`~bgrefresh_policy.AsyncBackgroundRefreshTokenPolicy` (asyncio or trio), with the same
    options as :func:`~bgrefresh_policy.get_bearer_token_provider`. A due token is returned at once
    while one background task asks the credential for the next.

    :param credential: an async credential, such as ``azure.identity.aio.DefaultAzureCredential()``.
    :type credential: ~azure.core.credentials_async.AsyncTokenProvider
    :param str scopes: the scopes, e.g. ``"https://cognitiveservices.azure.com/.default"``.
    :return: a coroutine function returning the token string.
    :raises TypeError: a keyword that is no option, or what the policy's constructor raises (and
        ValueError).
    """
    from ._policy_async import AsyncBackgroundRefreshTokenPolicy

    policy = _policy(
        AsyncBackgroundRefreshTokenPolicy,
        credential,
        scopes,
        dict(options),
        "bgrefresh_policy.aio.get_bearer_token_provider",
    )

    async def provide_token() -> str:
        cached: CachedToken = policy._attachable_own() or await policy._token_for(policy._default_key, policy._scopes)
        return cached.value

    return provide_token
