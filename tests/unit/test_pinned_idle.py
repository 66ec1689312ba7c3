"""Idle timers (``refresh_when_idle``) of the async policy, under asyncio and trio: a timer that
finds a refresh held waits ``LOOK_AGAIN`` before it looks again, re-arming one replaces it, and
none is armed once the policy is closed.

Timer callbacks are counted on a stopped clock (asyncio's :class:`~tests.support.LoopClock`,
trio's ``MockClock``) and by turns of the event loop, never by time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio
import trio.testing

from bgrefresh_policy._face import LOOK_AGAIN
from bgrefresh_policy._key_state import TokenKey
from bgrefresh_policy._policy_base import PolicyBase
from bgrefresh_policy._runners._protocols import BackgroundRunner
from tests.support import FakeClock, LoopClock, ScriptedCredential, bearer, make_request, refresh_begins
from tests.unit.conftest import make_policy

LIFETIME = 3600
DUE_AT = LIFETIME - 300  # no jitter: due with 300 s left


def count_timer_callbacks(monkeypatch: pytest.MonkeyPatch) -> list[TokenKey]:
    """Every idle timer that fires at a due token, from now on: the key it fired for, in order.

    Timers also wake early (at least once a minute, to follow the wall clock) and sleep on: not counted.
    """
    fired: list[TokenKey] = []
    original = PolicyBase._idle_refresh

    def counted(self: PolicyBase, runner: BackgroundRunner, key: TokenKey) -> None:
        fired.append(key)
        original(self, runner, key)

    monkeypatch.setattr(PolicyBase, "_idle_refresh", counted)
    return fired


async def turns(count: int) -> None:
    """Let the event loop run ``count`` passes, its clock standing still."""
    for _ in range(count):
        await asyncio.sleep(0)


async def elapse(clock: FakeClock, loop_clock: LoopClock, seconds: float) -> None:
    """Move the wall clock tokens are judged by and the stopped loop clock timers run on, together."""
    clock.advance(seconds)
    await loop_clock.advance(seconds)


async def test_an_idle_timer_finding_a_refresh_held_waits_look_again_before_it_looks_again(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    fired = count_timer_callbacks(monkeypatch)
    policy = make_policy(credential, clock, refresh_when_idle=True)
    await policy.on_request(make_request())  # token-1; its idle timer is armed for its due moment
    await elapse(clock, loop_clock, DUE_AT - 1)  # both clocks, to just before the timer fires
    clock.advance(2)  # the token's clock, to past its due moment
    credential.gate = asyncio.Event()
    await policy.on_request(make_request())  # starts a background refresh, held in the credential
    await refresh_begins()
    assert len(credential.calls) == 2
    assert fired == []
    await loop_clock.advance(2)  # the timer fires, and finds the refresh running
    assert fired == [policy._default_key]
    runner = policy._runners.current()
    ((_, handle),) = runner._timers.values()
    assert handle.when() == pytest.approx(loop_clock.now + LOOK_AGAIN, abs=0.01)
    await turns(200)  # the loop goes round, its clock still: the timer waits, it does not spin
    assert len(fired) == 1
    await loop_clock.advance(LOOK_AGAIN)  # it looks again once, still held
    assert len(fired) == 2
    await turns(200)
    assert len(fired) == 2
    assert len(credential.calls) == 2  # and never started a second call
    credential.gate.set()
    await policy.wait_for_refreshes()
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-2"
    await policy.close()


async def test_re_arming_an_idle_timer_cancels_the_one_it_replaces(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    fired = count_timer_callbacks(monkeypatch)
    policy = make_policy(credential, clock, refresh_when_idle=True)
    await policy.on_request(make_request())  # token-1; a timer for t0 + 3300
    runner = policy._runners.current()
    ((_, first),) = runner._timers.values()
    await elapse(clock, loop_clock, 30)  # before the first timer wakes (at most a minute on)
    await policy.authorize_request(make_request(), *policy._scopes)  # token-2: a timer for t0 + 3330
    ((_, second),) = runner._timers.values()
    assert second is not first
    assert first.cancelled()
    await elapse(clock, loop_clock, DUE_AT - 30 + 1)  # past token-1's due moment, before token-2's
    assert fired == []  # the replaced timer never fires
    assert len(credential.calls) == 2
    await elapse(clock, loop_clock, 30)  # past token-2's due moment
    await refresh_begins()
    assert fired == [policy._default_key]  # one timer, one callback
    assert len(credential.calls) == 3
    await policy.close()


async def test_no_idle_timer_is_armed_once_the_policy_is_closed(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    fired = count_timer_callbacks(monkeypatch)
    policy = make_policy(credential, clock, refresh_when_idle=True)
    await policy.on_request(make_request())
    runner = policy._runners.current()
    await policy.close()
    assert runner._timers == {}
    # Refreshes still end after close(): a request's inline one, and one the caller asks for.
    policy._token = None
    await policy.on_request(make_request())
    await policy.authorize_request(make_request(), *policy._scopes)
    assert len(credential.calls) == 3
    assert runner._timers == {}  # neither armed a timer
    await elapse(clock, loop_clock, DUE_AT + 1)
    assert fired == []
    assert len(credential.calls) == 3


def test_trio_re_arming_an_idle_timer_cancels_the_one_it_replaces(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fired = count_timer_callbacks(monkeypatch)

    async def main() -> None:
        policy: Any = make_policy(credential, clock, refresh_when_idle=True)
        await policy.on_request(make_request())  # token-1; a timer for t0 + 3300
        runner = policy._runners.current()
        ((_, first, first_ended),) = runner._timers.values()
        clock.advance(30)
        await trio.sleep(30)  # before the first timer wakes (at most a minute on)
        await policy.authorize_request(make_request(), *policy._scopes)  # token-2: a timer for t0 + 3330
        ((_, second, _),) = runner._timers.values()
        assert second is not first
        assert first.cancel_called
        await trio.testing.wait_all_tasks_blocked()
        assert first_ended.is_set()  # its task has ended
        clock.advance(DUE_AT - 30 + 1)
        await trio.sleep(DUE_AT - 30 + 1)  # past token-1's due moment, before token-2's
        await trio.testing.wait_all_tasks_blocked()
        assert fired == []
        clock.advance(30)
        await trio.sleep(30)  # past token-2's due moment
        await trio.testing.wait_all_tasks_blocked()
        assert fired == [policy._default_key]
        assert len(credential.calls) == 3
        await policy.close()
        assert runner._timers == {}
        policy._token = None
        await policy.on_request(make_request())  # an inline refresh after close() arms no timer
        assert runner._timers == {}

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
