"""Semantic 3 and 4: inline refreshes are single-flight, shared, and outlive a cancelled requester."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from azure.core.credentials import AccessTokenInfo

from tests.support import FakeClock, LoopClock, ScriptedCredential, bearer, loop_until, make_request
from tests.unit.conftest import make_policy


async def test_first_requests_share_one_credential_call(policy: Any, credential: ScriptedCredential) -> None:
    credential.gate = asyncio.Event()
    requests = [make_request() for _ in range(300)]
    pending = asyncio.gather(*(policy.on_request(r) for r in requests))
    # The 300 tasks are ready before the refresh task the first of them starts: once the credential
    # has been called, every request has run up to its wait.
    await loop_until(lambda: credential.calls)
    assert not pending.done()  # no token yet: requests wait
    assert len(credential.calls) == 1
    credential.gate.set()
    await pending
    assert len(credential.calls) == 1
    assert {bearer(r) for r in requests} == {"Bearer token-1"}


async def test_expired_token_is_refreshed_inline(policy: Any, credential: ScriptedCredential, clock: FakeClock) -> None:
    await policy.on_request(make_request())
    clock.advance(3600)
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-2"


async def test_below_min_validity_waits_for_the_new_token(clock: FakeClock, credential: ScriptedCredential) -> None:
    policy = make_policy(credential, clock, min_validity=120)
    await policy.on_request(make_request())
    clock.advance(3600 - 119)
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-2"


async def test_inline_request_joins_the_background_refresh(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    await policy.on_request(make_request())
    clock.advance(3400)
    credential.gate = asyncio.Event()
    await policy.on_request(make_request())  # background refresh starts
    clock.advance(150)  # 50 s left: below min_validity
    joining = [make_request(), make_request()]
    waiters = [asyncio.ensure_future(policy.on_request(r)) for r in joining]
    await asyncio.sleep(0)  # each runs up to its wait
    assert not any(w.done() for w in waiters)
    assert len(credential.calls) == 2  # joined, not a second call
    credential.gate.set()
    await asyncio.gather(*waiters)
    assert len(credential.calls) == 2
    assert {bearer(r) for r in joining} == {"Bearer token-2"}  # they waited for the refresh they joined


async def test_credential_error_reaches_every_waiter(policy: Any, credential: ScriptedCredential) -> None:
    credential.gate = asyncio.Event()
    credential.errors.append(PermissionError("tenant says no"))
    waiters = [asyncio.ensure_future(policy.on_request(make_request())) for _ in range(50)]
    await asyncio.sleep(0)
    credential.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, PermissionError) and str(r) == "tenant says no" for r in results)
    assert len(credential.calls) == 1
    request = make_request()
    await policy.on_request(request)  # no back-off when there is no token at all
    assert bearer(request) == "Bearer token-2"


async def test_cancelling_the_request_that_started_it_does_not_cancel_it_for_others(
    policy: Any, credential: ScriptedCredential
) -> None:
    credential.gate = asyncio.Event()
    starter = asyncio.ensure_future(policy.on_request(make_request()))
    await asyncio.sleep(0)
    others = [make_request() for _ in range(20)]
    waiting = asyncio.gather(*(policy.on_request(r) for r in others))
    await asyncio.sleep(0)
    starter.cancel()
    await asyncio.sleep(0)
    assert starter.cancelled()
    credential.gate.set()
    await waiting
    assert {bearer(r) for r in others} == {"Bearer token-1"}
    assert credential.cancelled == 0
    assert len(credential.calls) == 1


async def test_cancelling_every_waiter_still_caches_the_token(policy: Any, credential: ScriptedCredential) -> None:
    credential.gate = asyncio.Event()
    waiters = [asyncio.ensure_future(policy.on_request(make_request())) for _ in range(5)]
    await asyncio.sleep(0)
    for waiter in waiters:
        waiter.cancel()
    credential.gate.set()
    await policy.wait_for_refreshes()
    assert credential.cancelled == 0
    assert credential.finished == 1
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-1"
    assert len(credential.calls) == 1


async def test_failed_inline_refresh_with_a_still_valid_token_keeps_serving_it(
    clock: FakeClock, credential: ScriptedCredential, caplog: pytest.LogCaptureFixture
) -> None:
    policy = make_policy(credential, clock, min_validity=120)
    await policy.on_request(make_request())
    clock.advance(3500)  # 100 s left, below min_validity
    credential.errors.append(ConnectionError("token endpoint down"))
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-1"
    assert "ConnectionError: token endpoint down" in caplog.text
    assert "token-1" not in caplog.text
    # Back-off: the next requests do not each wait on the failing endpoint.
    for _ in range(10):
        await policy.on_request(make_request())
    assert len(credential.calls) == 2
    clock.advance(30)
    await policy.on_request(make_request())
    assert len(credential.calls) == 3


async def test_inline_refresh_has_no_timeout(
    clock: FakeClock, credential: ScriptedCredential, monkeypatch: pytest.MonkeyPatch
) -> None:
    """refresh_timeout bounds background refreshes only: a slow credential (say, interactive) still answers."""
    loop_clock = LoopClock(monkeypatch)
    policy = make_policy(credential, clock, refresh_timeout=0.05)
    credential.gate = asyncio.Event()
    waiter = asyncio.ensure_future(policy.on_request(make_request()))
    await loop_until(lambda: credential.calls)  # the inline refresh is in the credential call
    await loop_clock.advance(3600)  # any timer armed for refresh_timeout has fired
    assert credential.cancelled == 0
    assert not waiter.done()
    credential.gate.set()
    await waiter
    assert credential.cancelled == 0
    assert credential.finished == 1


async def test_result_made_stale_while_waiting_is_not_handed_to_waiters(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    credential.gate = asyncio.Event()
    request = make_request()
    waiter = asyncio.ensure_future(policy.on_request(request))
    while not credential.calls:  # noqa: ASYNC110 - the credential offers no event to wait on
        await asyncio.sleep(0)
    policy._token = AccessTokenInfo("set-explicitly", int(clock.now + 3600))  # supersedes the refresh
    credential.gate.set()
    await waiter
    assert bearer(request) == "Bearer set-explicitly"
