"""Token providers: what azure-identity's ``get_bearer_token_provider`` returns, refreshing in the background.

A provider is a face of its credential's engine with one key: a ``BackgroundRefreshCredential``
asked for the provider's scopes, whose token string it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from azure.core.credentials import TokenProvider
from azure.core.credentials_async import AsyncTokenProvider

from ._face import is_wrapper
from ._options import PolicyOptions, Unpack, check_scopes, checked_refresh_options, take_options

if TYPE_CHECKING:
    from ._credential_face import CredentialFace

__all__ = ["get_async_bearer_token_provider", "get_bearer_token_provider"]

# Seen from warn_if_inline_only: CredentialFace.__init__, _face, the provider function, the user's call.
_CALLER = 5


def _face(face_class: type[CredentialFace[Any]], credential: Any, options: dict[str, Any], caller: str) -> Any:
    """The wrapper behind a provider; any keyword that is no option is refused, as a call would.

    Given a ``BackgroundRefreshCredential``, a provider makes a face of its own on the wrapped
    credential with the wrapper's options, as a policy does, and so joins the same engine.
    """
    taken = take_options(options, PolicyOptions, caller=caller)
    checked_refresh_options(taken, wait_limit=face_class._WAIT_LIMIT)
    share_tokens = taken.pop("share_tokens")
    del taken["enable_cae"]  # asked for with each call
    face = face_class.__new__(face_class)
    face._warn_from = _CALLER  # the user's call, seen from the min_validity warning
    if is_wrapper(credential):
        credential, taken = credential._lend(face, asynchronous=face_class._ASYNCHRONOUS, taken=taken)
        face._warn_from = None  # the wrapper's options were judged when it was made
    if not share_tokens:
        face._share_tokens = False  # read by __init__: an engine of its own
    face_class.__init__(face, credential, **taken)
    return face


def get_bearer_token_provider(
    credential: TokenProvider, *scopes: str, **options: Unpack[PolicyOptions]
) -> Callable[[], str]:
    """A callable that returns a bearer token for ``scopes``, refreshed on a background thread.

    The contract of azure-identity's function of this name, for consumers that take a token
    provider rather than a pipeline policy (the OpenAI SDK's ``azure_ad_token_provider``, database
    drivers): each call returns a valid token string. Once the token is due, calls go on
    returning it at once while one background thread asks the credential for the next; a call
    waits only when no usable token is left. It is a face of the credential's engine (a
    :class:`~bgrefresh_policy.BackgroundRefreshCredential` asked for ``scopes``), so it shares tokens
    with every policy, provider and credential wrapper on the same credential object; given a
    wrapper, it takes the wrapper's engine and options.

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
    :raises TypeError: a keyword that is no option, an option of the wrong type, or a credential
        that is not a sync one.
    :raises ValueError: no scope, or an option out of range.
    """
    from ._credential_sync import BackgroundRefreshCredential

    check_scopes(scopes)
    request = {"enable_cae": bool(options.get("enable_cae"))}
    face = _face(BackgroundRefreshCredential, credential, dict(options), "get_bearer_token_provider")

    def provide_token() -> str:
        return face.get_token_info(*scopes, options=request).token  # type: ignore[no-any-return]

    return provide_token


def get_async_bearer_token_provider(
    credential: AsyncTokenProvider, *scopes: str, **options: Unpack[PolicyOptions]
) -> Callable[[], Coroutine[Any, Any, str]]:
    """A coroutine function that returns a bearer token for ``scopes``, refreshed in the background.

    Published as ``bgrefresh_policy.aio.get_bearer_token_provider``: the contract of
    ``azure.identity.aio.get_bearer_token_provider``, on asyncio or trio, with the same options
    and rules as :func:`~bgrefresh_policy.get_bearer_token_provider`. A due token is returned at
    once while one background task asks the credential for the next.

    :param credential: an async credential, such as ``azure.identity.aio.DefaultAzureCredential()``.
    :type credential: ~azure.core.credentials_async.AsyncTokenProvider
    :param str scopes: the scopes, e.g. ``"https://cognitiveservices.azure.com/.default"``.
    :return: a coroutine function returning the token string.
    :raises TypeError: a keyword that is no option, an option of the wrong type, or one of
        azure-identity's sync credentials.
    :raises ValueError: no scope, or an option out of range.
    """
    from ._credential_async import BackgroundRefreshCredential

    check_scopes(scopes)
    request = {"enable_cae": bool(options.get("enable_cae"))}
    caller = "bgrefresh_policy.aio.get_bearer_token_provider"
    face = _face(BackgroundRefreshCredential, credential, dict(options), caller)

    async def provide_token() -> str:
        return (await face.get_token_info(*scopes, options=request)).token  # type: ignore[no-any-return]

    return provide_token
