"""Sync policy: a failing token endpoint costs one attempt per retry_delay and no failed request."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError

from tests.support import FakeClock, SyncScriptedCredential, in_threads
from tests.sync.conftest import attach, make_sync_policy, prime, start_stuck_refresh


def test_failed_background_refresh_is_logged_once_and_leaves_requests_alone(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    prime(policy, clock)
    credential.errors = [ClientAuthenticationError("token endpoint down")]
    with caplog.at_level(logging.WARNING):
        attach(policy)
        assert policy.wait_for_refreshes(10)
        assert set(in_threads(16, lambda _: attach(policy))) == {"Bearer token-1"}
    (record,) = caplog.records
    assert record.getMessage().startswith("background token refresh for ('https://management.azure.com/.default',)")
    assert "ClientAuthenticationError: token endpoint down" in record.getMessage()


def test_no_retry_before_retry_delay(policy: Any, credential: SyncScriptedCredential, clock: FakeClock) -> None:
    prime(policy, clock)
    credential.errors = [ClientAuthenticationError("down")]
    attach(policy)
    policy.wait_for_refreshes(10)
    clock.advance(29)
    in_threads(8, lambda _: attach(policy))
    assert len(credential.calls) == 2
    clock.advance(1)
    assert attach(policy) == "Bearer token-1"
    policy.wait_for_refreshes(10)
    assert len(credential.calls) == 3
    assert attach(policy) == "Bearer token-3"


def test_credential_answering_from_its_cache_does_not_make_the_policy_spin(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    credential.fixed_expiry = clock() + 3600
    prime(policy, clock)
    for _ in range(5):
        attach(policy)
        policy.wait_for_refreshes(10)
    assert len(credential.calls) == 2  # one fruitless attempt, then the back-off


def test_request_waiting_on_a_hung_refresh_with_an_expired_token_gets_a_timeout(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    policy = make_sync_policy(credential, clock, refresh_timeout=0.05)
    gate = start_stuck_refresh(policy, credential, clock)
    clock.advance(200)  # token-1 has expired
    with pytest.raises(TimeoutError, match="did not finish within refresh_timeout"):
        attach(policy)
    gate.set()
    # close() waits only refresh_timeout for the thread: let its late answer land first, as it does
    # however long that takes.
    assert policy.wait_for_refreshes(10)
    policy.close()
    assert attach(policy) == "Bearer token-2"  # the late answer was recorded


def test_a_timed_out_thread_refresh_is_one_event_though_its_late_answer_is_recorded(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    events: list[Any] = []
    policy = make_sync_policy(credential, clock, refresh_timeout=0.05, on_refresh=events.append)
    gate = start_stuck_refresh(policy, credential, clock)
    clock.advance(200)  # token-1 has expired: a request waits on the stuck refresh, then gives up
    with pytest.raises(TimeoutError):
        attach(policy)
    gate.set()
    assert policy.wait_for_refreshes(10)
    policy.close()
    assert attach(policy) == "Bearer token-2"  # the late answer was recorded ...
    assert [event.outcome.value for event in events] == ["new_token", "timed_out"]  # ... and told once
