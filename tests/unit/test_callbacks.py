"""Closing or waiting from inside a refresh never waits for that refresh, on asyncio and trio.

The credential call of a background refresh runs in the refresh's own task; code it calls (a
credential that closes the policy on shutdown, say) must not cancel or await that task.
"""

from __future__ import annotations

import asyncio
from typing import Any

import trio
from azure.core.credentials import AccessTokenInfo, TokenRequestOptions

from tests.support import HANG_GUARD, FakeClock, bearer, make_request
from tests.unit.conftest import make_policy


class _InsideRefresh:
    """A credential whose second call (the background refresh) runs ``inside(policy)`` before answering."""

    def __init__(self, clock: FakeClock, inside: str) -> None:
        self.clock = clock
        self.inside = inside
        self.policy: Any = None
        self.calls = 0
        self.returned_from_inside = False

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        self.calls += 1
        if self.calls == 2:
            await getattr(self.policy, self.inside)()
            self.returned_from_inside = True
        return AccessTokenInfo(f"token-{self.calls}", int(self.clock() + 3600))


def _policy(inside: str) -> tuple[Any, _InsideRefresh, FakeClock]:
    clock = FakeClock()
    credential = _InsideRefresh(clock, inside)
    credential.policy = make_policy(credential, clock)
    return credential.policy, credential, clock


async def _due_refresh(policy: Any, clock: FakeClock) -> None:
    await policy.on_request(make_request())
    clock.advance(3400)
    await policy.on_request(make_request())  # due: starts the background refresh


async def test_asyncio_wait_for_refreshes_inside_a_refresh_does_not_wait_for_it() -> None:
    policy, credential, clock = _policy("wait_for_refreshes")
    await _due_refresh(policy, clock)
    await asyncio.wait_for(policy.wait_for_refreshes(), HANG_GUARD)
    assert credential.returned_from_inside


async def test_asyncio_close_inside_a_refresh_lets_that_refresh_finish() -> None:
    policy, credential, clock = _policy("close")
    await _due_refresh(policy, clock)
    await asyncio.wait_for(policy.wait_for_refreshes(), HANG_GUARD)
    assert credential.returned_from_inside  # not cancelled by its own close()
    assert policy.closed
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-2"


def test_trio_wait_for_refreshes_inside_a_refresh_does_not_wait_for_it() -> None:
    policy, credential, clock = _policy("wait_for_refreshes")

    async def main() -> None:
        with trio.fail_after(HANG_GUARD):
            await _due_refresh(policy, clock)
            await policy.wait_for_refreshes()

    trio.run(main)
    assert credential.returned_from_inside


def test_trio_close_inside_a_refresh_lets_that_refresh_finish() -> None:
    policy, credential, clock = _policy("close")

    async def main() -> str:
        with trio.fail_after(HANG_GUARD):
            await _due_refresh(policy, clock)
            await policy.wait_for_refreshes()
        request = make_request()
        await policy.on_request(request)
        return bearer(request)

    assert trio.run(main) == "Bearer token-2"
    assert credential.returned_from_inside
    assert policy.closed
