"""Semantics 5 and 6: failed, fruitless and hung background refreshes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.support import FakeClock, LoopClock, ScriptedCredential, bearer, make_request, refresh_begins
from tests.unit.conftest import make_policy


async def due(policy: Any, clock: FakeClock) -> None:
    await policy.on_request(make_request())
    clock.advance(3400)


async def test_failed_background_refresh_is_logged_and_leaves_requests_alone(
    policy: Any, credential: ScriptedCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await due(policy, clock)
    credential.errors.append(OSError("connection reset by token endpoint"))
    with caplog.at_level(logging.DEBUG, logger="bgrefresh_policy"):
        requests = [make_request() for _ in range(5)]
        for request in requests:
            await policy.on_request(request)
        await asyncio.sleep(0)
    assert {bearer(r) for r in requests} == {"Bearer token-1"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "OSError: connection reset by token endpoint" in warnings[0].getMessage()
    assert all("token-" not in r.getMessage() for r in caplog.records)


async def test_no_retry_before_retry_delay(policy: Any, credential: ScriptedCredential, clock: FakeClock) -> None:
    await due(policy, clock)
    credential.errors.extend([OSError("1"), OSError("2")])
    await policy.on_request(make_request())
    await asyncio.sleep(0)
    assert len(credential.calls) == 2
    for _ in range(29):
        clock.advance(1)
        await policy.on_request(make_request())
        await asyncio.sleep(0)
    assert len(credential.calls) == 2
    clock.advance(1)
    await policy.on_request(make_request())
    await asyncio.sleep(0)
    assert len(credential.calls) == 3
    clock.advance(30)
    await policy.on_request(make_request())
    await refresh_begins()
    assert len(credential.calls) == 4
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-4"


async def test_credential_answering_from_its_cache_does_not_make_the_policy_spin(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    await due(policy, clock)
    credential.fixed_expiry = clock.now + 200  # the same expiry again: nothing newer
    for _ in range(100):
        await policy.on_request(make_request())
        await asyncio.sleep(0)
        clock.advance(0.25)  # 25 s in all
    assert len(credential.calls) == 2
    clock.advance(5)
    await policy.on_request(make_request())
    await refresh_begins()
    assert len(credential.calls) == 3


async def test_hung_refresh_is_cancelled_at_refresh_timeout(
    clock: FakeClock, credential: ScriptedCredential, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    policy = make_policy(credential, clock, refresh_timeout=0.05, retry_delay=10)
    await due(policy, clock)
    credential.gate = asyncio.Event()  # never set: the endpoint hangs
    await policy.on_request(make_request())
    await refresh_begins()
    await loop_clock.advance(0.04)
    assert credential.cancelled == 0  # not before refresh_timeout ...
    await loop_clock.advance(0.01)
    assert credential.cancelled == 1  # ... and at it
    assert "TimeoutError" in caplog.text
    assert "refresh_timeout=0.05" in caplog.text
    clock.advance(10)
    credential.gate = None
    await policy.on_request(make_request())  # the hung refresh does not block the next one
    await refresh_begins()
    assert len(credential.calls) == 3
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-3"


async def test_inline_request_joined_to_a_hung_background_refresh_gets_the_timeout(
    clock: FakeClock, credential: ScriptedCredential
) -> None:
    policy = make_policy(credential, clock, refresh_timeout=0.05)
    await due(policy, clock)
    credential.gate = asyncio.Event()
    await policy.on_request(make_request())
    clock.advance(200)  # expired
    with pytest.raises(TimeoutError, match="refresh_timeout"):
        await policy.on_request(make_request())
    credential.gate = None
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-3"


async def test_a_failed_inline_refresh_is_logged_once_for_all_its_waiters(
    clock: FakeClock, credential: ScriptedCredential, caplog: pytest.LogCaptureFixture
) -> None:
    policy = make_policy(credential, clock, min_validity=120)
    await policy.on_request(make_request())
    clock.advance(3500)  # 100 s left: below min_validity, every request waits
    credential.gate = asyncio.Event()
    credential.errors.append(ConnectionError("token endpoint down"))
    waiters = [asyncio.ensure_future(policy.on_request(make_request())) for _ in range(100)]
    await asyncio.sleep(0)
    credential.gate.set()
    await asyncio.gather(*waiters)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ConnectionError: token endpoint down" in warnings[0].getMessage()


async def test_waiters_keep_the_current_token_when_the_answer_is_not_newer(
    clock: FakeClock, credential: ScriptedCredential
) -> None:
    policy = make_policy(credential, clock, min_validity=120)
    await policy.on_request(make_request())
    clock.advance(3550)  # 50 s left: the request waits for a refresh
    credential.fixed_expiry = clock.now + 40  # the credential answers with one that expires sooner
    request = make_request()
    await policy.on_request(request)
    assert len(credential.calls) == 2
    assert bearer(request) == "Bearer token-1"  # the longer-lived token, not the credential's answer
