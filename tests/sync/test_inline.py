"""Sync policy: requests with no usable token wait, and the threads waiting share one credential call."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError

from tests.support import FakeClock, SyncScriptedCredential, Threads, eventually, in_threads
from tests.sync.conftest import attach, blocked_in_policy, prime, start_stuck_refresh


def test_first_requests_from_many_threads_share_one_credential_call(
    policy: Any, credential: SyncScriptedCredential
) -> None:
    gate = credential.gate = threading.Event()
    threads = Threads(32, lambda _: attach(policy))
    # Every thread has arrived: one in the credential's held call, the other 31 waiting on it.
    eventually(lambda: blocked_in_policy(policy, credential) + threads.finished == 32)
    assert threads.finished == 0  # no token yet: every request waits
    assert len(credential.calls) == 1
    gate.set()
    assert set(threads.results()) == {"Bearer token-1"}
    assert len(credential.calls) == 1
    assert not credential.threads[0].name.startswith("bgrefresh")  # a requesting thread made it
    assert policy._runner.threads == []


def test_expired_token_is_refreshed_inline(policy: Any, credential: SyncScriptedCredential, clock: FakeClock) -> None:
    prime(policy, clock, age=3600)
    assert attach(policy) == "Bearer token-2"
    assert credential.threads[1] is threading.current_thread()


def test_below_min_validity_waits_for_the_new_token(policy: Any, clock: FakeClock) -> None:
    prime(policy, clock, age=3550)  # 50 s left, under the default 60
    assert attach(policy) == "Bearer token-2"


def test_inline_request_joins_the_background_refresh(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    gate = start_stuck_refresh(policy, credential, clock)
    clock.advance(150)  # 50 s left: requests now wait, on the refresh already running
    threads = Threads(16, lambda _: attach(policy))
    # All 16 have arrived and wait; the 17th thread blocked is the refresh thread, in the held call.
    eventually(lambda: blocked_in_policy(policy, credential) + threads.finished == 16 + 1)
    assert threads.finished == 0
    assert len(credential.calls) == 2  # joined, not a call of their own
    gate.set()
    assert set(threads.results()) == {"Bearer token-2"}
    assert len(credential.calls) == 2


def test_credential_error_reaches_every_waiting_thread(policy: Any, credential: SyncScriptedCredential) -> None:
    gate = credential.gate = threading.Event()
    credential.errors = [ClientAuthenticationError("token endpoint says no")]

    def request(_: int) -> str:
        try:
            return attach(policy)
        except ClientAuthenticationError as exc:
            return str(exc)

    threads = Threads(16, request)
    # Every thread has arrived: one in the credential's held call, the other 15 waiting on it.
    eventually(lambda: blocked_in_policy(policy, credential) + threads.finished == 16)
    assert threads.finished == 0
    assert len(credential.calls) == 1
    gate.set()
    assert set(threads.results()) == {"token endpoint says no"}
    assert len(credential.calls) == 1


def test_failed_inline_refresh_with_a_still_valid_token_keeps_serving_it(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    prime(policy, clock, age=3550)
    credential.errors = [ClientAuthenticationError("down")]
    with caplog.at_level(logging.WARNING):
        assert set(in_threads(8, lambda _: attach(policy))) == {"Bearer token-1"}
    assert len(credential.calls) == 2
    assert len([r for r in caplog.records if "using the current token" in r.message]) == 1


def test_interrupting_the_thread_that_refreshes_lets_the_others_refresh_again(
    policy: Any, credential: SyncScriptedCredential
) -> None:
    credential.gate = threading.Event()
    credential.errors = [KeyboardInterrupt()]
    outcomes: list[str] = []

    def first() -> None:
        try:
            attach(policy)
        except KeyboardInterrupt:
            outcomes.append("interrupted")

    starter = threading.Thread(target=first)
    starter.start()
    eventually(lambda: len(credential.calls) == 1)
    credential.gate = None
    waiters = threading.Thread(target=lambda: outcomes.extend(in_threads(4, lambda _: attach(policy))))
    waiters.start()
    (flight,) = policy._runner.flights.values()
    # Every waiter is blocked on the flight (threading.Event keeps them in its private condition).
    eventually(lambda: len(flight.done._cond._waiters) == 4)
    credential.gates[0].set()
    starter.join(10)
    waiters.join(10)
    assert sorted(outcomes) == ["Bearer token-2"] * 4 + ["interrupted"]
    assert len(credential.calls) == 2


def test_result_made_stale_while_waiting_is_not_handed_to_waiters(
    policy: Any, credential: SyncScriptedCredential
) -> None:
    credential.gate = threading.Event()
    result: list[str] = []
    waiter = threading.Thread(target=lambda: result.append(attach(policy)))
    waiter.start()
    eventually(lambda: len(credential.calls) == 1)
    credential.gate = None
    policy._token = None  # as azure-core's send() does on a 401 meanwhile
    credential.gates[0].set()
    waiter.join(10)
    assert result == ["Bearer token-2"]
