"""Which credentials the async policy takes: whatever azure-core's takes, less the surely sync ones.

azure-core's async policy takes any object with ``get_token_info`` or ``get_token`` and awaits what
the method returns if it is awaitable. So a plain callable returning a coroutine or a future is a
valid async credential, and only two things prove one sync: its type (azure-identity's sync
classes), refused at construction, or a first call that returned something not awaitable, refused
then, without the token it returned going anywhere.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any
from unittest.mock import MagicMock, Mock

import azure.identity
import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from tests.support import bearer, make_request

SCOPE = "https://management.azure.com/.default"
TOKEN = "eyJ-a-token-that-must-go-nowhere"


def _token() -> AccessTokenInfo:
    return AccessTokenInfo(TOKEN, int(time.time()) + 3600)


class _Answers:
    """The coroutine function the credentials below end up calling, recording each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], Any]] = []

    async def __call__(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        self.calls.append((scopes, options))
        return _token()


def _logged(function: Callable[..., Awaitable[AccessTokenInfo]]) -> Callable[..., Awaitable[AccessTokenInfo]]:
    """A decorator as users write them: a plain function, which returns the coroutine."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Awaitable[AccessTokenInfo]:
        return function(*args, **kwargs)

    return wrapper


class _Credential:
    """A credential whose ``get_token_info`` is whatever callable the test gives it."""

    def __init__(self, get_token_info: Callable[..., Any]) -> None:
        self.get_token_info = get_token_info


def _async_callables(answers: _Answers) -> dict[str, Callable[..., Any]]:
    async def fetch(prefix: str, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return await answers(*scopes, options=options)

    return {
        "a plain callable returning a coroutine": lambda *scopes, **kwargs: answers(*scopes, **kwargs),
        "a partial of a decorated coroutine function": functools.partial(_logged(fetch), "prefix"),
        "a partial of a coroutine function": functools.partial(fetch, "prefix"),
        "a decorated coroutine function": _logged(answers),
    }


@pytest.mark.parametrize(
    "make",
    [Mock, MagicMock, lambda: Mock(spec=azure.identity.ClientSecretCredential)],
    ids=["Mock()", "MagicMock()", "Mock(spec=ClientSecretCredential)"],
)
def test_mocks_are_accepted_at_construction_as_azure_core_accepts_them(make: Callable[[], Any]) -> None:
    # A mock's methods are Mock objects, not coroutine functions: only a call can tell.
    AsyncBackgroundRefreshTokenPolicy(make(), SCOPE)


@pytest.mark.parametrize(
    "kind",
    [
        "a plain callable returning a coroutine",
        "a partial of a decorated coroutine function",
        "a partial of a coroutine function",
        "a decorated coroutine function",
    ],
)
async def test_callables_returning_awaitables_are_accepted_and_used(kind: str) -> None:
    answers = _Answers()
    credential: Any = _Credential(_async_callables(answers)[kind])  # duck-typed, as azure-core checks it
    policy = AsyncBackgroundRefreshTokenPolicy(credential, SCOPE, share_tokens=False)
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == f"Bearer {TOKEN}"
    explicit = make_request()
    await policy.authorize_request(explicit, SCOPE, claims="challenge", tenant_id="other")
    assert bearer(explicit) == f"Bearer {TOKEN}"
    # The options split out of the keyword arguments as azure-core's _get_token splits them.
    assert answers.calls == [((SCOPE,), {}), ((SCOPE,), {"claims": "challenge", "tenant_id": "other"})]


async def test_a_mock_returning_an_awaitable_is_used() -> None:
    # azure-core's own tests: Mock(spec_set=["get_token"], get_token=lambda *_, **__: future).
    async def issue() -> AccessToken:
        return AccessToken(TOKEN, int(time.time()) + 3600)

    credential = Mock(spec_set=["get_token"], get_token=lambda *_, **__: issue())
    request = make_request()
    await AsyncBackgroundRefreshTokenPolicy(credential, SCOPE, share_tokens=False).on_request(request)
    assert bearer(request) == f"Bearer {TOKEN}"


class _Sync:
    """A user-written sync credential: ``get_token_info`` returns the token itself."""

    def __init__(self) -> None:
        self.calls = 0

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        self.calls += 1
        return _token()


class _SyncGetToken:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(TOKEN, int(time.time()) + 3600)


def _frames(tb: TracebackType | None) -> Iterator[dict[str, Any]]:
    while tb is not None:
        yield tb.tb_frame.f_locals
        tb = tb.tb_next


@pytest.mark.parametrize("credential_class", [_Sync, _SyncGetToken])
async def test_a_sync_credential_is_used_as_azure_core_uses_it_and_told_of_once_never_its_token(
    credential_class: type[Any], caplog: pytest.LogCaptureFixture
) -> None:
    # azure-core awaits only what is awaitable (its own tests pass such credentials to its async policy).
    caplog.set_level(logging.DEBUG)  # every logger
    events: list[Any] = []
    credential = credential_class()
    policy = AsyncBackgroundRefreshTokenPolicy(credential, SCOPE, share_tokens=False, on_refresh=events.append)
    method = "get_token_info" if credential_class is _Sync else "get_token"
    returned = "AccessTokenInfo" if credential_class is _Sync else "AccessToken"
    request = make_request()
    await policy.on_request(request)
    assert request.http_request.headers["Authorization"] == f"Bearer {TOKEN}"
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{credential_class.__name__}.{method} returned {returned}, not an awaitable")
    assert "blocks the event loop" in warnings[0]
    assert "azure.identity.aio" in warnings[0]
    assert len(events) == 1
    printed = [repr(event) for event in events] + [record.getMessage() for record in caplog.records]
    printed += ["".join(traceback.format_exception(*record.exc_info)) for record in caplog.records if record.exc_info]
    for text in printed:
        assert TOKEN not in text


async def test_a_sync_credential_is_told_of_once_per_policy(caplog: pytest.LogCaptureFixture) -> None:
    credential = _Sync()
    policy: Any = AsyncBackgroundRefreshTokenPolicy(credential, SCOPE, share_tokens=False)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="bgrefresh_policy"):
        for _ in range(3):
            policy._store.invalidate(policy._default_key)  # each request asks the credential again
            await policy.on_request(make_request())
    assert credential.calls == 3
    assert len([record for record in caplog.records if "not an awaitable" in record.getMessage()]) == 1


class _MySecretCredential(azure.identity.ClientSecretCredential):
    """A subclass in user code that keeps azure-identity's sync get_token_info."""


class _MyAsyncOverride(azure.identity.ClientSecretCredential):
    """A subclass in user code whose get_token_info is its own, async."""

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:  # type: ignore[override]
        return _token()


@pytest.mark.parametrize(
    "make",
    [
        lambda: azure.identity.ClientSecretCredential("tenant", "client", "secret"),
        lambda: _MySecretCredential("tenant", "client", "secret"),
        lambda: azure.identity.AzureCliCredential(),
    ],
    ids=["ClientSecretCredential", "a subclass", "AzureCliCredential"],
)
def test_azure_identitys_sync_credentials_are_refused_at_construction(make: Callable[[], Any]) -> None:
    credential = make()
    with pytest.raises(
        TypeError, match=r"is a sync credential \(its get_token_info is from azure\.identity\."
    ) as caught:
        AsyncBackgroundRefreshTokenPolicy(credential, SCOPE)
    assert "azure.identity.aio" in str(caught.value)
    assert "BackgroundRefreshTokenPolicy for a sync credential" in str(caught.value)


async def test_a_subclass_with_its_own_async_method_is_accepted_and_used() -> None:
    request = make_request()
    credential: Any = _MyAsyncOverride("tenant", "client", "secret")  # async, yet a sync class's subclass
    policy = AsyncBackgroundRefreshTokenPolicy(credential, SCOPE)
    await policy.on_request(request)
    assert bearer(request) == f"Bearer {TOKEN}"
