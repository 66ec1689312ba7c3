"""Operating the async policy: ``on_refresh`` events field by field, a callback that raises,
``token_status()``, the ``Retry-After`` back-off, and ``refresh_when_idle``."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import time
import weakref
from typing import Any, ClassVar

import pytest
from azure.core.exceptions import HttpResponseError

from bgrefresh_policy import RefreshEvent, RefreshOutcome, TokenStatus
from tests.support import (
    FakeClock,
    LoopClock,
    ScriptedCredential,
    bearer,
    eventually_async,
    make_request,
    refresh_begins,
)
from tests.unit.conftest import SCOPE, make_policy

LIFETIME = 3600
DUE_AT = LIFETIME - 300  # no jitter: due with 300 s left


class _Throttled:
    headers: ClassVar[dict[str, str]] = {"Retry-After": "7"}
    status_code = 429
    reason = "Too Many Requests"

    def text(self) -> str:
        return ""


def throttled() -> HttpResponseError:
    return HttpResponseError(message="throttled", response=_Throttled())  # type: ignore[arg-type]


async def primed(policy: Any, clock: FakeClock) -> None:
    await policy.on_request(make_request())
    clock.advance(DUE_AT + 100)  # due, 200 s left


async def test_each_credential_call_is_one_event_field_by_field(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    events: list[RefreshEvent] = []
    policy = make_policy(credential, clock, on_refresh=events.append, retry_delay=30)
    start = clock()
    await primed(policy, clock)
    first = events[0]
    assert first.next_attempt_at == pytest.approx(start + DUE_AT, abs=0.01)  # when the new token falls due
    assert dataclasses.replace(first, next_attempt_at=None) == RefreshEvent(
        scopes=(SCOPE,),
        tenant_id=None,
        background=False,
        started_at=start,
        ended_at=start,
        outcome=RefreshOutcome.NEW_TOKEN,
        error=None,
        validity_left=None,
        next_attempt_at=None,
    )
    failure = OSError("token endpoint down")
    credential.errors = [failure]
    await policy.on_request(make_request())
    await refresh_begins()
    assert events[1] == RefreshEvent(
        scopes=(SCOPE,),
        tenant_id=None,
        background=True,
        started_at=clock(),
        ended_at=clock(),
        outcome=RefreshOutcome.FAILED,
        error=failure,
        validity_left=200,
        next_attempt_at=clock() + 30,
    )
    clock.advance(30)
    await policy.on_request(make_request())
    await refresh_begins()
    assert events[2].outcome is RefreshOutcome.NEW_TOKEN
    assert events[2].background
    assert events[2].next_attempt_at == pytest.approx(clock() + DUE_AT, abs=0.01)


async def test_not_newer_stale_timed_out_and_cancelled_are_told_apart(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[RefreshEvent] = []
    loop_clock = LoopClock(monkeypatch)
    policy = make_policy(credential, clock, on_refresh=events.append, retry_delay=10, refresh_timeout=5)
    await primed(policy, clock)
    credential.fixed_expiry = clock() + 200  # the credential answers from its cache: no newer token
    await policy.on_request(make_request())
    await refresh_begins()
    credential.fixed_expiry = None
    clock.advance(10)
    credential.gate = asyncio.Event()
    await policy.on_request(make_request())  # a refresh that the next line makes stale
    await refresh_begins()
    policy._token = None
    credential.gate.set()
    await policy.wait_for_refreshes()
    await policy.on_request(make_request())  # the inline refresh after the drop
    clock.advance(DUE_AT + 100)
    credential.gate = asyncio.Event()  # hangs: timed out at refresh_timeout
    await policy.on_request(make_request())
    await refresh_begins()
    await loop_clock.advance(5)
    clock.advance(10)
    await policy.on_request(make_request())  # hangs too, and is cancelled by close()
    await refresh_begins()
    await policy.close()
    outcomes = [event.outcome for event in events]
    assert outcomes == [
        RefreshOutcome.NEW_TOKEN,
        RefreshOutcome.NOT_NEWER,
        RefreshOutcome.STALE,
        RefreshOutcome.NEW_TOKEN,
        RefreshOutcome.TIMED_OUT,
        RefreshOutcome.CANCELLED,
    ]
    assert isinstance(events[4].error, TimeoutError)
    assert events[1].next_attempt_at == events[1].ended_at + 10
    assert events[2].next_attempt_at is None
    assert events[5].error is None


async def test_a_callback_that_raises_is_logged_once_and_breaks_nothing(
    credential: ScriptedCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: RefreshEvent) -> None:
        raise RuntimeError("dashboard is down")

    policy = make_policy(credential, clock, on_refresh=broken)
    caplog.set_level(logging.DEBUG, logger="bgrefresh_policy")
    await primed(policy, clock)
    request = make_request()
    await policy.on_request(request)  # starts a background refresh whose callback raises too
    await refresh_begins()
    later = make_request()
    await policy.on_request(later)
    assert bearer(request) == "Bearer token-1"
    assert bearer(later) == "Bearer token-2"
    raised = [record for record in caplog.records if "on_refresh callback raised" in record.getMessage()]
    assert [record.levelno for record in raised] == [logging.WARNING, logging.DEBUG]


async def test_no_event_holds_the_token(credential: ScriptedCredential, clock: FakeClock) -> None:
    events: list[RefreshEvent] = []
    policy = make_policy(credential, clock, on_refresh=events.append)
    await primed(policy, clock)
    await policy.on_request(make_request())
    await refresh_begins()
    assert len(events) == 2
    for event in events:
        assert "token-" not in repr(event)
        assert all("token-" not in repr(value) for value in vars(event).values())


async def test_token_status_is_plain_data_for_a_readiness_probe(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    policy = make_policy(credential, clock)
    assert policy.token_status() == [
        TokenStatus((SCOPE,), None, False, None, None, False, None, None, None)  # built, not used yet
    ]
    await primed(policy, clock)
    credential.errors = [OSError("down")]
    await policy.on_request(make_request())
    await refresh_begins()
    (status,) = policy.token_status()
    assert status.due_in == pytest.approx(-100, abs=0.01)  # due 100 s ago
    assert dataclasses.replace(status, due_in=None) == TokenStatus(
        scopes=(SCOPE,),
        tenant_id=None,
        cached=True,
        expires_in=200,
        due_in=None,
        refreshing=False,
        last_outcome=RefreshOutcome.FAILED,
        last_outcome_at=clock(),
        backoff_until=clock() + 30,
    )
    assert status.healthy
    clock.advance(300)
    assert not policy.token_status()[0].healthy
    assert "token-" not in repr(policy.token_status())


async def test_retry_after_backs_the_key_off_at_least_that_long(
    credential: ScriptedCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    policy = make_policy(credential, clock, retry_delay=1)
    await primed(policy, clock)
    attempts = []
    for _ in range(16):  # a request every second for 16 s, the token endpoint throttling throughout
        credential.errors = [throttled()]
        await policy.on_request(make_request())
        await refresh_begins()
        attempts.append(len(credential.calls))
        clock.advance(1)
    assert attempts == [2] * 7 + [3] * 7 + [4] * 2  # one attempt per 7 s, not per second
    assert "next attempt in 7 s" in caplog.text


async def test_retry_after_never_holds_a_refresh_back_past_min_validity(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    policy = make_policy(credential, clock, retry_delay=1, min_validity=60)
    await primed(policy, clock)  # 200 s left
    credential.errors = [HttpResponseError(message="throttled", response=_LongThrottle())]  # type: ignore[arg-type]
    await policy.on_request(make_request())
    await refresh_begins()
    assert policy.token_status()[0].backoff_until == clock() + 200 - 60  # not an hour


async def elapse(clock: FakeClock, loop_clock: LoopClock, seconds: float) -> None:
    """Move the wall clock tokens are judged by and the stopped loop clock idle timers run on, together."""
    clock.advance(seconds)
    await loop_clock.advance(seconds)


class _LongThrottle(_Throttled):
    headers: ClassVar[dict[str, str]] = {"Retry-After": "3600"}


async def test_an_idle_policy_refreshes_on_schedule_once(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    policy = make_policy(credential, clock, refresh_when_idle=True)
    await policy.on_request(make_request())
    await elapse(clock, loop_clock, DUE_AT - 1)
    assert len(credential.calls) == 1  # not before it is due
    await elapse(clock, loop_clock, 2)
    await refresh_begins()
    assert len(credential.calls) == 2  # exactly one call, with no request
    credential.gate = asyncio.Event()  # any call from now on would hang the request below
    request = make_request()
    await asyncio.wait_for(policy.on_request(request), 5)
    assert bearer(request) == "Bearer token-2"
    assert len(credential.calls) == 2
    credential.gate.set()
    await policy.close()


async def test_idle_refresh_follows_the_back_off_and_stops_with_the_token(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    policy = make_policy(credential, clock, refresh_when_idle=True, retry_delay=30, min_validity=60)
    await policy.on_request(make_request())
    credential.errors = [OSError("down")] * 100  # a dead token endpoint
    await elapse(clock, loop_clock, DUE_AT + 1)
    await refresh_begins()
    for _ in range(20):  # 20 x 30 s: past the token's expiry
        await elapse(clock, loop_clock, 30)
        await refresh_begins()
    # Due after 3300 s, then every 30 s until under min_validity (3540 s): 3301, 3331, ..., 3511.
    assert len(credential.calls) == 1 + 8
    assert policy._runners.current()._timers == {}  # stopped, nothing left armed
    await policy.close()


async def test_close_cancels_the_idle_timer(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    policy = make_policy(credential, clock, refresh_when_idle=True)
    await policy.on_request(make_request())
    assert len(policy._runners.current()._timers) == 1
    await policy.close()
    assert policy._runners.current()._timers == {}
    await elapse(clock, loop_clock, DUE_AT)
    assert len(credential.calls) == 1


async def test_an_idle_policy_refreshes_on_the_real_clock(credential: ScriptedCredential) -> None:
    """No fake clock: the timer fires just past the due moment and finds the token due (azure-core's rule is strict)."""
    from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy

    credential.clock = time.time
    credential.lifetime = 301  # due within a second of being issued (expiry is whole seconds)
    events: list[RefreshEvent] = []
    policy: Any = AsyncBackgroundRefreshTokenPolicy(
        credential, SCOPE, refresh_when_idle=True, min_validity=10, on_refresh=events.append
    )
    policy._store.draw_jitter = lambda: 0
    await policy.on_request(make_request())
    await eventually_async(lambda: len(events) == 2)  # by the timer alone
    assert events[1].background
    assert events[1].outcome is RefreshOutcome.NEW_TOKEN
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-2"
    await policy.close()


async def test_a_policy_dropped_without_close_is_not_kept_alive_by_its_idle_timer(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    policy = make_policy(credential, clock, refresh_when_idle=True)
    await policy.on_request(make_request())
    runner = policy._runners.current()
    assert len(runner._timers) == 1
    dropped = weakref.ref(policy)
    del policy
    gc.collect()
    assert dropped() is None
    for _, handle in list(runner._timers.values()):
        handle._run()  # the timer firing late finds nothing to do
    assert len(credential.calls) == 1


async def test_idle_timers_only_for_the_policys_own_key(credential: ScriptedCredential, clock: FakeClock) -> None:
    policy = make_policy(credential, clock, refresh_when_idle=True)
    await policy.authorize_request(make_request(), SCOPE, tenant_id="other", claims='{"a": 1}')
    assert policy._runners.current()._timers == {}
    await policy.on_request(make_request())
    assert [key for _, key in policy._runners.current()._timers] == [policy._default_key]
    await policy.close()


async def test_telemetry_that_raises_never_breaks_a_request(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        def current_context(self) -> None:
            return None

        def start(self, *args: Any, **kwargs: Any) -> Any:
            raise ValueError("span processor exploded")

        def end(self, *args: Any) -> None:
            raise ValueError("exporter exploded")

    monkeypatch.setattr("bgrefresh_policy._watch.telemetry", Broken)
    events: list[RefreshEvent] = []
    policy = make_policy(credential, clock, on_refresh=events.append)
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-1"
    assert [event.outcome for event in events] == [RefreshOutcome.NEW_TOKEN]
