"""Idle refresh (refresh_when_idle) that follows the wall clock and the shared key.

- Timers sleep on the event loop's (monotonic) clock, tokens expire by the wall clock: a timer wakes
  at least once a minute, so a wall-clock step (a VM resumed, NTP) is followed.
- A policy that shares a token another policy fetched arms its own timer for it, and keeps it armed
  once that policy is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bgrefresh_policy._face import LONGEST_IDLE_SLEEP
from tests.support import FakeClock, LoopClock, ScriptedCredential, make_request, refresh_begins
from tests.unit.conftest import make_policy

DUE_AT = 3600 - 300  # no jitter: a scripted token (an hour) is due with 300 s left


async def test_an_idle_refresh_follows_a_wall_clock_step_within_a_minute(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    policy = make_policy(credential, clock, refresh_when_idle=True)
    await policy.on_request(make_request())  # token-1 at t0; its timer armed
    clock.advance(56 * 60)  # the wall clock steps 56 minutes (the token is due); no loop time passes
    assert len(credential.calls) == 1
    await loop_clock.advance(LONGEST_IDLE_SLEEP)  # a minute of the timer's clock
    await refresh_begins()
    assert len(credential.calls) == 2  # refreshed, with no request
    await policy.close()


async def test_a_policy_sharing_a_token_another_policy_fetched_refreshes_it_while_idle(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    first = make_policy(credential, clock, refresh_when_idle=True)
    await first.on_request(make_request())  # token-1, fetched by the first policy
    second: Any = make_policy(credential, clock, refresh_when_idle=True)  # shares it; arms its own timer
    assert second._store is first._store
    await first.close()  # its timer goes with it
    clock.advance(DUE_AT + 1)
    await loop_clock.advance(LONGEST_IDLE_SLEEP)
    await refresh_begins()
    assert len(credential.calls) == 2  # the second policy's timer refreshed it
    await second.wait_for_refreshes()
    await second.close()


async def test_a_token_another_policy_refreshes_re_arms_every_idle_policy_on_its_key(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    idle: Any = make_policy(credential, clock, refresh_when_idle=True)  # no token yet: nothing to arm
    busy = make_policy(credential, clock)  # no idle refresh of its own
    await busy.on_request(make_request())  # token-1: the idle policy's timer is armed for it
    runner = idle._runners.current()
    assert [slot[0] for slot in runner._timers] == [id(idle)]
    clock.advance(DUE_AT + 1)
    await loop_clock.advance(LONGEST_IDLE_SLEEP)
    await refresh_begins()
    assert len(credential.calls) == 2
    await idle.wait_for_refreshes()
    await idle.close()
    await busy.close()


async def test_an_idle_timer_never_spins_on_a_failing_credential_with_no_retry_delay(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    policy = make_policy(credential, clock, refresh_when_idle=True, retry_delay=0)
    await policy.on_request(make_request())  # token-1
    credential.errors = [OSError("token endpoint down")] * 1000
    clock.advance(DUE_AT + 1)  # due; no request comes
    await loop_clock.advance(LONGEST_IDLE_SLEEP)  # the timer wakes, and refreshes: it fails
    for _ in range(10):  # ten seconds of the timer's clock, the event loop going round in each
        await loop_clock.advance(1)
        await turns(50)
    assert 2 <= len(credential.calls) <= 1 + 11  # once a second (LOOK_AGAIN) at most, not once a pass
    await policy.close()


async def turns(count: int) -> None:
    """Let the event loop run ``count`` passes, its clock standing still."""
    for _ in range(count):
        await asyncio.sleep(0)
