"""Which credentials the sync policy takes: whatever azure-core's takes, less the surely async ones.

Refused at construction: a credential whose method is a coroutine function. Refused at the first
call: one whose method returned an awaitable anyway (azure-core's sync policy would fail on it too,
less clearly), the coroutine closed so that it does not warn when collected.
"""

from __future__ import annotations

import gc
import inspect
import time
import warnings
from collections.abc import Callable, Coroutine
from typing import Any
from unittest.mock import AsyncMock, MagicMock, Mock

import pytest
from azure.core.credentials import AccessTokenInfo, TokenRequestOptions

from bgrefresh_policy import BackgroundRefreshTokenPolicy
from tests.support import bearer, make_request
from tests.sync.conftest import SCOPE


@pytest.mark.parametrize("make", [Mock, MagicMock], ids=["Mock()", "MagicMock()"])
def test_mocks_are_accepted_at_construction_as_azure_core_accepts_them(make: Callable[[], Any]) -> None:
    BackgroundRefreshTokenPolicy(make(), SCOPE).close()


def test_a_mock_returning_tokens_is_used() -> None:
    # azure-core's own sync tests: Mock(spec_set=["get_token"], get_token=Mock(return_value=token)).
    token = AccessTokenInfo("mock-token", int(time.time()) + 3600)
    credential = Mock(spec_set=["get_token_info"], get_token_info=Mock(return_value=token))
    request = make_request()
    with BackgroundRefreshTokenPolicy(credential, SCOPE, share_tokens=False) as policy:
        policy.on_request(request)
    assert bearer(request) == "Bearer mock-token"


def test_a_coroutine_function_is_refused_at_construction() -> None:
    credential = Mock(spec_set=["get_token_info"], get_token_info=AsyncMock())
    with pytest.raises(TypeError, match=r"Mock\.get_token_info is a coroutine function"):
        BackgroundRefreshTokenPolicy(credential, SCOPE)


class _ReturnsCoroutines:
    """An async credential whose method is a plain callable: its type does not show it is async."""

    def __init__(self) -> None:
        self.returned: list[Coroutine[Any, Any, AccessTokenInfo]] = []
        self.get_token_info = self._call

    def _call(self, *scopes: str, options: TokenRequestOptions | None = None) -> Any:
        coroutine = self._issue()
        self.returned.append(coroutine)
        return coroutine

    async def _issue(self) -> AccessTokenInfo:
        raise AssertionError("never awaited")


def test_an_async_credential_is_refused_at_its_first_call_and_its_coroutine_closed() -> None:
    credential: Any = _ReturnsCoroutines()  # duck-typed, as azure-core checks it
    request = make_request()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with (
            BackgroundRefreshTokenPolicy(credential, SCOPE, share_tokens=False) as policy,
            pytest.raises(TypeError) as caught,
        ):
            policy.on_request(request)
        message = str(caught.value)
        del caught
        assert [inspect.getcoroutinestate(coroutine) for coroutine in credential.returned] == ["CORO_CLOSED"]
        credential.returned.clear()
        gc.collect()
    assert message.startswith("_ReturnsCoroutines.get_token_info returned coroutine, an awaitable")
    assert "AsyncBackgroundRefreshTokenPolicy for an async credential" in message
    assert "Authorization" not in request.http_request.headers
    assert [str(warning.message) for warning in seen] == []  # no "coroutine ... was never awaited"
