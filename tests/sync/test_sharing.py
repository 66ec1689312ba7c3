"""One token per credential: sync policies on one credential object share its tokens and refreshes."""

from __future__ import annotations

import threading
from typing import Any

from tests.support import FakeClock, SyncScriptedCredential, Threads, blocked_in_wait, eventually, make_request

from .conftest import attach, make_sync_policy, prime, refresh_threads


def test_threads_of_ten_policies_racing_for_a_first_token_make_one_call(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    policies = [make_sync_policy(credential, clock) for _ in range(10)]
    gate = credential.gate = threading.Event()
    threads = Threads(10, lambda i: attach(policies[i]))
    runner = policies[0]._runner
    # One thread is in the credential call, the nine others wait on its flight.
    eventually(lambda: blocked_in_wait(gate, *(f.done for f in tuple(runner.flights.values()))) == 10)
    assert len(credential.calls) == 1
    gate.set()
    assert set(threads.results()) == {"Bearer token-1"}
    assert len(credential.calls) == 1


def test_ten_policies_with_a_due_token_start_one_background_thread(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    policies = [make_sync_policy(credential, clock) for _ in range(10)]
    prime(policies[0], clock)
    gate = credential.gate = threading.Event()
    headers = [attach(policy) for policy in policies]  # each returns while the refresh is held open
    assert set(headers) == {"Bearer token-1"}
    assert len(refresh_threads()) == 1
    eventually(lambda: len(credential.calls) == 2)
    gate.set()
    assert policies[5].wait_for_refreshes(30)
    assert attach(policies[9]) == "Bearer token-2"
    assert len(credential.calls) == 2


def test_closing_one_policy_neither_joins_nor_stops_the_refresh_another_started(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    starter, other = make_sync_policy(credential, clock), make_sync_policy(credential, clock)
    prime(starter, clock)
    gate = credential.gate = threading.Event()
    attach(starter)
    eventually(lambda: len(credential.calls) == 2)
    other.close()  # returns at once: the running thread is the starter's
    assert [thread.is_alive() for thread in refresh_threads()] == [True]
    gate.set()
    starter.close()  # joins its own
    assert refresh_threads() == []
    assert attach(other) == "Bearer token-2"  # closed: no background refresh, but the shared token


def test_the_opt_out_keeps_a_policys_tokens_to_itself(credential: SyncScriptedCredential, clock: FakeClock) -> None:
    own: list[Any] = [make_sync_policy(credential, clock, share_tokens=False) for _ in range(3)]
    for policy in own:
        policy.on_request(make_request())
    assert len(credential.calls) == 3


def test_an_idle_sync_policy_refreshes_on_schedule_once(credential: SyncScriptedCredential, clock: FakeClock) -> None:
    credential.lifetime = 301  # due 1 s after it is issued
    policy = make_sync_policy(credential, clock, refresh_when_idle=True, min_validity=10)
    try:
        attach(policy)
        clock.advance(2)  # due now in the policy's time; its timer fires in about a second
        eventually(lambda: credential.finished == 2)  # one call, with no request
        assert policy.wait_for_refreshes(30)  # and its answer recorded
        credential.gate = threading.Event()  # any call from now on would hang the request below
        assert attach(policy) == "Bearer token-2"
        assert len(credential.calls) == 2
    finally:
        if credential.gate is not None:
            credential.gate.set()
        policy.close()
    assert policy._runner._timers == {}  # close() cancelled the next timer, and joined it


def test_close_cancels_a_sync_idle_timer(credential: SyncScriptedCredential, clock: FakeClock) -> None:
    policy = make_sync_policy(credential, clock, refresh_when_idle=True)
    attach(policy)
    assert len(policy._runner._timers) == 1
    policy.close()
    assert policy._runner._timers == {}
    assert [thread.name for thread in refresh_threads()] == []
