"""Sync policy: a due token is attached while one daemon thread refreshes it; no thread waits."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from tests.support import FakeClock, SyncScriptedCredential, eventually, in_threads
from tests.sync.conftest import attach, make_sync_policy, prime, start_stuck_refresh


def test_due_token_is_attached_while_a_daemon_thread_refreshes(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    prime(policy, clock)
    credential.gate = threading.Event()  # the token endpoint now hangs until released
    assert attach(policy) == "Bearer token-1"  # returned although the credential is stuck
    (worker,) = policy._runner.threads
    assert worker.daemon
    eventually(lambda: len(credential.calls) == 2)
    assert credential.threads[1] is worker  # not the requesting thread
    credential.gate.set()
    assert policy.wait_for_refreshes(10)
    assert attach(policy) == "Bearer token-2"


def test_many_threads_on_a_due_token_make_one_credential_call_and_none_waits(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    prime(policy, clock)
    credential.gate = threading.Event()
    # in_threads fails on its timeout if any request blocked on the stuck credential.
    headers = in_threads(64, lambda _: attach(policy))
    assert set(headers) == {"Bearer token-1"}
    assert len(policy._runner.threads) == 1
    eventually(lambda: len(credential.calls) == 2)
    credential.gate.set()
    assert policy.wait_for_refreshes(10)
    assert set(in_threads(64, lambda _: attach(policy))) == {"Bearer token-2"}
    assert len(credential.calls) == 2


def test_token_not_due_makes_no_credential_call_and_starts_no_thread(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    prime(policy, clock, age=3000)
    in_threads(16, lambda _: attach(policy))
    assert len(credential.calls) == 1
    assert policy._runner.threads == []


def test_background_refresh_uses_refresh_on(policy: Any, credential: SyncScriptedCredential, clock: FakeClock) -> None:
    credential.refresh_in = 1800
    prime(policy, clock, age=1799)
    attach(policy)
    assert len(credential.calls) == 1
    clock.advance(1)
    attach(policy)
    policy.wait_for_refreshes(10)
    assert len(credential.calls) == 2


def test_background_result_expiring_sooner_does_not_replace(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    prime(policy, clock)
    credential.fixed_expiry = clock() + 100  # sooner than token-1's 200 s
    attach(policy)
    policy.wait_for_refreshes(10)
    assert attach(policy) == "Bearer token-1"


def test_one_thread_per_key_even_past_refresh_timeout(
    credential: SyncScriptedCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    policy = make_sync_policy(credential, clock, refresh_timeout=0.05, retry_delay=10)
    gate = start_stuck_refresh(policy, credential, clock)
    credential.gate = None  # later calls answer at once
    clock.advance(150)  # 50 s left, under min_validity: these requests wait, up to refresh_timeout
    with caplog.at_level(logging.WARNING):
        assert set(in_threads(8, lambda _: attach(policy))) == {"Bearer token-1"}  # gave up; still valid
    failures = [r.message for r in caplog.records if "did not finish within refresh_timeout" in r.message]
    assert len(failures) == 1  # one failed attempt, however many waited
    # A failed attempt backs off, as in the async policy: nobody waits again for retry_delay.
    assert attach(policy) == "Bearer token-1"
    assert len(credential.calls) == 2
    clock.advance(10)  # then the next request refreshes inline, on its own thread
    assert attach(policy) == "Bearer token-3"
    assert credential.threads[2] is threading.current_thread()
    clock.advance(3400)  # token-3 is due; the stuck thread still holds the key's running mark
    assert attach(policy) == "Bearer token-3"
    assert len(policy._runner.threads) == 1
    assert len(credential.calls) == 3
    gate.set()
    assert policy.wait_for_refreshes(10)
    assert attach(policy) == "Bearer token-2"  # its late answer is newer than token-3, so it is kept
    assert len(credential.calls) == 3
    policy.close()
