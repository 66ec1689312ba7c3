"""Sync policy: close() and ``with`` join the refresh threads; copies and pickles; interpreter exit."""

from __future__ import annotations

import copy
import logging
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bgrefresh_policy._face import flight_key
from bgrefresh_policy._key_state import Action
from bgrefresh_policy._outcome import RETRY, Recorded, Verdict
from bgrefresh_policy._runners._threads import ThreadRunner
from tests.support import HANG_GUARD, FakeClock, SyncScriptedCredential, Threads, blocked_in_wait, eventually
from tests.sync.conftest import attach, make_sync_policy, prime, refresh_threads, start_stuck_refresh


def closing_waits(policy: Any) -> bool:
    """Whether a thread is in ``close()`` (or ``wait_for_refreshes()``), waiting for the refresh threads to end.

    The runner's ``join`` waits on its ``_ended`` condition, which keeps its waiters in a private list;
    the first ``join`` makes the condition.
    """
    ended = policy._runner._ended
    return ended is not None and len(ended._waiters) == 1


def test_close_joins_the_running_refresh(policy: Any, credential: SyncScriptedCredential, clock: FakeClock) -> None:
    gate = start_stuck_refresh(policy, credential, clock)
    (worker,) = policy._runner.threads
    closing = Threads(1, lambda _: policy.close())
    eventually(lambda: closing_waits(policy))  # close() is waiting for the refresh thread ...
    assert closing.finished == 0  # ... which is held in the credential call: close() has not returned
    assert worker.is_alive()
    gate.set()
    closing.results()
    assert not worker.is_alive()
    assert refresh_threads() == []
    assert attach(policy) == "Bearer token-2"  # it ran to the end and was kept


def test_close_waits_at_most_refresh_timeout_for_a_stuck_refresh(
    credential: SyncScriptedCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    policy = make_sync_policy(credential, clock, refresh_timeout=0.05)
    prime(policy, clock)
    credential.gate = threading.Event()
    attach(policy)
    with caplog.at_level(logging.WARNING):
        policy.close()
    assert "1 background token refresh(es) still running after refresh_timeout" in caplog.text
    (worker,) = policy._runner.threads
    assert worker.daemon  # so it cannot keep the interpreter alive
    credential.gate.set()
    worker.join(10)


def test_after_close_a_due_token_is_refreshed_inline(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    prime(policy, clock)
    policy.close()
    assert attach(policy) == "Bearer token-2"
    assert credential.threads[1] is threading.current_thread()
    policy.close()  # twice is fine


def test_with_closes(credential: SyncScriptedCredential, clock: FakeClock) -> None:
    policy = make_sync_policy(credential, clock)
    workers: list[threading.Thread] = []

    def use_then_leave(_: int) -> None:
        with policy as entered:
            assert entered is policy
            start_stuck_refresh(policy, credential, clock)
            workers.extend(policy._runner.threads)

    leaving = Threads(1, use_then_leave)
    eventually(lambda: closing_waits(policy))  # leaving the block, close() waits for the refresh thread
    assert leaving.finished == 0
    (worker,) = workers
    assert worker.is_alive()
    assert credential.gate is not None
    credential.gate.set()
    leaving.results()
    assert not worker.is_alive()
    assert policy.closed


def test_wait_for_refreshes(policy: Any, credential: SyncScriptedCredential, clock: FakeClock) -> None:
    assert policy.wait_for_refreshes(0)
    prime(policy, clock)
    credential.gate = threading.Event()
    attach(policy)
    assert not policy.wait_for_refreshes(0.01)
    credential.gate.set()
    assert policy.wait_for_refreshes(10)
    assert len(credential.calls) == 2


def test_copies_have_their_own_closed_state_and_deep_ones_their_own_tokens(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    prime(policy, clock)
    credential.gate = threading.Event()
    attach(policy)  # a refresh thread is running
    policy.closed = True
    shallow = copy.copy(policy)  # the same credential object: its tokens and refreshes
    assert shallow._store is policy._store
    assert shallow._runner is policy._runner
    assert shallow._runner.threads_of(shallow) == []  # the running thread is not its own
    assert not shallow.closed
    for duplicate in (copy.deepcopy(policy), pickle.loads(pickle.dumps(policy))):
        assert duplicate._store is not policy._store
        assert duplicate._token is None  # tokens stay behind
        assert duplicate._runner is not policy._runner
        assert duplicate._runner.threads == []
        assert not duplicate.closed
    for duplicate in (shallow, copy.deepcopy(policy), pickle.loads(pickle.dumps(policy))):
        assert getattr(duplicate, "next", None) is None  # never in a pipeline; a linked one keeps its link
    assert b"token-" not in pickle.dumps(policy)
    credential.gate.set()


_EXIT_SCRIPT = """
import atexit, sys, threading, time
sys.path.insert(0, {root!r})
from bgrefresh_policy import BackgroundRefreshTokenPolicy
from tests.support import FakeClock, SyncScriptedCredential, make_request

clock = FakeClock()
credential = SyncScriptedCredential(clock=clock)
policy = BackgroundRefreshTokenPolicy(credential, "https://management.azure.com/.default")
policy._store.clock = clock
policy._store.draw_jitter = lambda: 0
policy.on_request(make_request())
clock.advance(3400)
credential.gate = threading.Event()  # never set: the refresh thread is stuck for good
policy.on_request(make_request())
assert len(policy._runner.threads) == 1

# A second policy whose token falls due only in an exit handler, when a new thread may no
# longer start (Python 3.12+ refuses); the request still gets the valid token.
other = BackgroundRefreshTokenPolicy(SyncScriptedCredential(clock=clock), "https://storage.azure.com/.default")
other._store.clock = clock
other._store.draw_jitter = lambda: 0
other.on_request(make_request())

def at_exit():
    clock.advance(3400)
    request = make_request()
    other.on_request(request)
    print("at exit:", request.http_request.headers["Authorization"], flush=True)

atexit.register(at_exit)
print("main done", flush=True)
"""


def test_a_stuck_refresh_thread_neither_keeps_the_interpreter_alive_nor_fails_at_exit(tmp_path: Path) -> None:
    script = tmp_path / "exit.py"
    script.write_text(_EXIT_SCRIPT.format(root=str(Path(__file__).resolve().parents[2])))
    done = subprocess.run(
        [sys.executable, "-X", "dev", str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["main done", "at exit: Bearer token-1"]
    assert done.stderr == ""


def test_refresh_threads_are_named_for_the_scopes_and_carry_no_token(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    gate = start_stuck_refresh(policy, credential, clock)
    (worker,) = policy._runner.threads
    assert worker.name == "bgrefresh token refresh for https://management.azure.com/.default"
    gate.set()


def test_a_refresh_thread_that_cannot_start_leaves_the_request_its_token(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    prime(policy, clock)

    def refuse(thread: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")  # as Python 3.12+ says

    with monkeypatch.context() as patched:
        patched.setattr(threading.Thread, "start", refuse)
        assert attach(policy) == "Bearer token-1"
    state = policy._store.peek(policy._default_key)
    assert policy._runner.threads == []
    assert state.background is None  # the running mark is cleared: nothing runs
    assert state.retry_not_before == clock() + 30  # counted as a failed attempt: no retry storm
    assert len(credential.calls) == 1
    clock.advance(30)
    attach(policy)
    assert policy.wait_for_refreshes(10)
    assert attach(policy) == "Bearer token-2"


def test_a_refresh_decided_before_close_and_started_after_it_starts_no_thread(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    prime(policy, clock)
    key = policy._default_key
    action, _, generation, mark = policy._store.begin(key)  # a request decides to refresh ...
    assert action is Action.BACKGROUND
    policy.close()  # ... close() returns before that request starts the thread ...
    policy._runner.start(  # ... which it then does
        flight_key(key, generation, {}),
        policy._fetcher(policy._scopes, {}, None),
        policy._finisher(key, generation, mark=mark),
        timeout=30,
        name="bgrefresh late",
        owner=policy,
    )
    assert refresh_threads() == []
    assert policy._store.peek(key).background is None  # the running mark is cleared
    assert len(credential.calls) == 1


def test_a_waiter_giving_up_as_the_refresh_ends_gets_its_outcome_not_a_timeout() -> None:
    runner = ThreadRunner()
    recording, release = threading.Event(), threading.Event()
    recorded: list[BaseException | None] = []
    outcome = Verdict(None, LookupError("the refresh's own outcome"))

    def finish(result: Any, error: BaseException | None) -> Recorded:
        recorded.append(error)
        recording.set()
        release.wait(HANG_GUARD)  # the outcome is being recorded while the deadline passes
        return Recorded(outcome)

    flight = runner.start(
        "key", lambda: "a token", finish, timeout=0.0, name="bgrefresh test", owner=SimpleNamespace(closed=False)
    )
    assert recording.wait(HANG_GUARD)
    verdicts: list[Verdict] = []
    waiter = threading.Thread(target=lambda: verdicts.append(runner.wait(flight)))
    waiter.start()
    eventually(lambda: flight.timed_out)  # the waiter is past its deadline
    release.set()
    waiter.join(10)
    assert runner.join(10)
    assert verdicts == [outcome]
    assert recorded == [None]  # no failed attempt recorded over the refresh that succeeded


def test_a_refresh_whose_outcome_cannot_be_recorded_still_releases_its_waiters() -> None:
    runner = ThreadRunner()
    gate = threading.Event()

    def fetch() -> str:
        gate.wait(HANG_GUARD)
        return "a token"

    def finish(result: Any, error: BaseException | None) -> Recorded:
        raise RuntimeError("a logging filter failed")  # recording logs; a filter may raise

    flight = runner.join_or_start("key", fetch, finish)
    failures: list[BaseException] = []

    def owner() -> None:
        try:
            runner.wait(flight)
        except RuntimeError as exc:
            failures.append(exc)

    running = threading.Thread(target=owner)
    running.start()
    eventually(lambda: flight.pending is None)  # the owner has claimed it and is in the credential call
    verdicts: list[Verdict] = []
    waiter = threading.Thread(target=lambda: verdicts.append(runner.wait(flight)))
    waiter.start()
    eventually(lambda: blocked_in_wait(flight.done) == 1)  # the other request waits on it ...
    gate.set()  # ... before the refresh ends
    running.join(10)
    waiter.join(10)
    assert [str(exc) for exc in failures] == ["a logging filter failed"]  # the owner sees the error
    assert verdicts == [RETRY]  # the other request decides again instead of waiting forever
    assert "key" not in runner.flights
