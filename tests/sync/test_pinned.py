"""The sync policy's idle timers (``refresh_when_idle``): the ``LOOK_AGAIN`` floor, one timer per
policy and key, none after ``close()``, and a policy dropped without ``close()`` collected."""

from __future__ import annotations

import gc
import heapq
import itertools
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import pytest

from bgrefresh_policy._face import LOOK_AGAIN
from bgrefresh_policy._runners._protocols import Owner
from bgrefresh_policy._runners._threads import ThreadRunner
from tests.support import HANG_GUARD, FakeClock, SyncScriptedCredential, eventually, make_request

from .conftest import attach, make_sync_policy, start_stuck_refresh

IDLE_TIMERS = "bgrefresh idle timers"  # the name of the thread that fires a runner's idle timers


def live_idle_timers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == IDLE_TIMERS]


@pytest.fixture
def idle_policy(credential: SyncScriptedCredential, clock: FakeClock) -> Iterator[Any]:
    policy = make_sync_policy(credential, clock, refresh_when_idle=True)
    yield policy
    for gate in credential.gates:  # release whatever a failed test left waiting
        gate.set()
    policy.close()


class ManualTimers:
    """A runner's timers that fire only when the test says, on a clock of their own (seconds from 0).

    Background refreshes start on ``real``, the policy's thread runner.
    """

    alive = None  # as a thread runner's: no event loop to outlive

    def __init__(self, real: ThreadRunner) -> None:
        self.real = real
        self.now = 0.0
        self.fired = 0
        self._order = itertools.count()
        self._due: list[tuple[float, int, Callable[[], None]]] = []

    def start(self, *args: Any, **kwargs: Any) -> Any:
        return self.real.start(*args, **kwargs)

    def schedule(self, owner: Owner, key: Hashable, delay: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._due, (self.now + max(0.0, delay), next(self._order), callback))

    def run_until(self, moment: float, *, limit: int = 1000) -> None:
        """Fire, in order, every timer due by ``moment`` (those they arm too); more than ``limit`` is a spin."""
        while self._due and self._due[0][0] <= moment:
            self.now, _, callback = heapq.heappop(self._due)
            self.fired += 1
            assert self.fired <= limit, f"{self.fired} timer callbacks by t={moment}: the timer spins"
            callback()
        self.now = moment


def test_an_idle_timer_finding_a_refresh_held_waits_look_again_before_it_looks_again(
    idle_policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    gate = start_stuck_refresh(idle_policy, credential, clock)  # token-1 due, its refresh held
    timers = ManualTimers(idle_policy._runner)
    idle_policy._arm_idle(idle_policy._default_key, runner=timers)  # due already: fires LOOK_AGAIN on
    timers.run_until(LOOK_AGAIN / 2)
    assert timers.fired == 0  # not at once: no timer fires sooner than LOOK_AGAIN
    timers.run_until(LOOK_AGAIN * 1.5)
    assert timers.fired == 1  # it found the refresh running, and waits
    timers.run_until(LOOK_AGAIN * 2.5)
    assert timers.fired == 2  # looked again once
    timers.run_until(LOOK_AGAIN * 11.5)
    assert timers.fired == 11  # once per LOOK_AGAIN
    assert len(credential.calls) == 2  # and started no second call
    gate.set()
    assert idle_policy.wait_for_refreshes(HANG_GUARD)
    assert attach(idle_policy) == "Bearer token-2"


def test_re_arming_a_sync_idle_timer_cancels_the_one_it_replaces(idle_policy: Any) -> None:
    attach(idle_policy)  # token-1, and its timer
    ((_, first),) = idle_policy._runner._timers.values()
    idle_policy.authorize_request(make_request(), *idle_policy._scopes)  # token-2, and its timer
    ((_, second),) = idle_policy._runner._timers.values()
    assert second is not first
    assert first.finished.is_set()  # cancelled
    assert not second.finished.is_set()
    assert [timer for _, timer in idle_policy._runner._timers.values()] == [second]  # one per policy and key
    assert len(live_idle_timers()) == 1  # one thread fires them all
    idle_policy.close()
    assert second.finished.is_set()
    assert live_idle_timers() == []


def test_a_refresh_ending_while_close_runs_arms_no_timer(
    idle_policy: Any, credential: SyncScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = start_stuck_refresh(idle_policy, credential, clock)
    runner = idle_policy._runner
    arming, go_on = threading.Event(), threading.Event()
    schedule = ThreadRunner.schedule

    def held(self: ThreadRunner, owner: Owner, key: Hashable, delay: float, callback: Callable[[], None]) -> None:
        # The refresh's thread, arming the next idle timer, past every check of the policy's own.
        arming.set()
        assert go_on.wait(HANG_GUARD)
        schedule(self, owner, key, delay, callback)

    monkeypatch.setattr(ThreadRunner, "schedule", held)
    gate.set()
    assert arming.wait(HANG_GUARD)
    closer = threading.Thread(target=idle_policy.close, name="test closer")
    closer.start()  # close() marks the policy closed, cancels its timers, then joins the refresh
    eventually(lambda: idle_policy.closed)
    go_on.set()
    closer.join(HANG_GUARD)
    assert not closer.is_alive()
    try:
        assert runner._timers == {}
        assert live_idle_timers() == []
    finally:
        for _, timer in runner._timers.values():  # what a failure left armed
            timer.cancel()


def test_a_sync_policy_dropped_without_close_is_collected_with_its_idle_timer(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    policy = make_sync_policy(credential, clock, refresh_when_idle=True)
    attach(policy)
    runner = policy._runner
    ((_, timer),) = runner._timers.values()
    try:
        assert not timer.finished.is_set()  # armed, waiting for its moment
        dropped = weakref.ref(policy)
        del policy
        gc.collect()
        assert dropped() is None
        timer.function(*timer.args)  # the timer firing late finds nothing to do
        assert len(credential.calls) == 1
    finally:
        timer.cancel()
        eventually(lambda: live_idle_timers() == [])  # with nothing left to fire, the scheduler ends


def test_the_idle_timers_of_many_sync_policies_cost_one_thread(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    policies = [make_sync_policy(credential, clock, refresh_when_idle=True) for _ in range(50)]
    try:
        attach(policies[0])  # token-1: every idle policy on the key arms its timer
        runner = policies[0]._runner
        assert len(runner._timers) == 50
        idle_threads = [thread for thread in threading.enumerate() if thread.name.startswith("bgrefresh idle")]
        assert len(idle_threads) == 1  # one scheduler thread, not one thread per timer
    finally:
        for policy in policies:
            policy.close()
    assert live_idle_timers() == []
