"""Tokens that arrive already expired by this machine's clock (a clock ahead, usually).

Each is attached as it is, as azure-core's policy attaches it (the service judges it by its own
clock), and the credential is asked again at most once per retry_delay, however many requests come:
azure-core's policy asks on every request.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bgrefresh_policy import RefreshEvent, RefreshOutcome
from bgrefresh_policy._key_state import TokenKey
from tests.support import FakeClock, SyncScriptedCredential
from tests.sync.conftest import attach, make_sync_policy, prime


def test_an_hour_of_requests_makes_one_credential_call_per_retry_delay(
    credential: SyncScriptedCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    credential.fixed_expiry = clock() - 120  # every token it gives expired two minutes ago, by our clock
    events: list[RefreshEvent] = []
    policy: Any = make_sync_policy(credential, clock, retry_delay=30, on_refresh=events.append)
    headers: list[str] = []
    try:
        with caplog.at_level(logging.WARNING, logger="bgrefresh_policy"):
            for _ in range(3600):  # one request a second for an hour
                headers.append(attach(policy))
                clock.advance(1)
    finally:
        policy.close()
    assert len(credential.calls) == 3600 // 30  # azure-core's policy: 3,600
    # Every request had the token that arrived last: token-1 for the first 30 s, then token-2, ...
    assert headers == [f"Bearer token-{second // 30 + 1}" for second in range(3600)]
    assert [event.outcome for event in events] == [RefreshOutcome.EXPIRED_ON_ARRIVAL] * 120
    assert [event.next_attempt_at for event in events] == [events[0].ended_at + 30 * (n + 1) for n in range(120)]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 120
    assert "arrived expired (120 s before this machine's clock" in warnings[0]
    assert all("arrived expired" in warning and "check it" in warning for warning in warnings)
    assert all("token-" not in warning for warning in warnings)


def test_a_good_token_after_the_clock_is_fixed_ends_the_hold(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    credential.fixed_expiry = clock() - 120
    policy: Any = make_sync_policy(credential, clock, retry_delay=30)
    try:
        assert attach(policy) == "Bearer token-1"
        clock.advance(29)
        assert attach(policy) == "Bearer token-1"  # held: no second call
        assert len(credential.calls) == 1
        credential.fixed_expiry = None  # the clock is right again
        clock.advance(1)
        assert attach(policy) == "Bearer token-2"
        clock.advance(60)
        assert attach(policy) == "Bearer token-2"  # valid, not held: attached until it is due
        assert len(credential.calls) == 2
    finally:
        policy.close()


def test_401s_for_held_tokens_ask_the_credential_once_per_retry_delay(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    credential.fixed_expiry = clock() - 120  # the service, whose clock agrees, refuses every one
    policy: Any = make_sync_policy(credential, clock, retry_delay=30)
    try:
        for _ in range(600):  # ten minutes, a request a second, each answered with a 401
            policy._store.invalidate_carrying(attach(policy))
            clock.advance(1)
        assert len(credential.calls) == 600 // 30  # azure-core's policy: 600
    finally:
        policy.close()


def test_a_401_for_a_held_token_drops_it_once_the_hold_is_over(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    credential.fixed_expiry = clock() - 120
    policy: Any = make_sync_policy(credential, clock, retry_delay=30)
    try:
        assert attach(policy) == "Bearer token-1"
        policy._store.invalidate_carrying("Bearer token-1")  # held: kept
        assert attach(policy) == "Bearer token-1"
        clock.advance(30)
        credential.fixed_expiry = None
        policy._store.invalidate_carrying("Bearer token-1")  # the hold is over: dropped
        assert policy._store.current(policy._default_key) is None
        assert attach(policy) == "Bearer token-2"
        assert len(credential.calls) == 2
    finally:
        policy.close()


def test_an_expired_token_from_a_background_refresh_keeps_the_valid_one(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    events: list[RefreshEvent] = []
    policy: Any = make_sync_policy(credential, clock, on_refresh=events.append)
    try:
        prime(policy, clock)  # token-1, due with 200 s left
        credential.fixed_expiry = clock() - 1
        assert attach(policy) == "Bearer token-1"  # starts the background refresh
        assert policy.wait_for_refreshes(30)
        assert attach(policy) == "Bearer token-1"  # the expired token-2 was not taken over a valid one
        assert events[-1].background
        assert events[-1].outcome is RefreshOutcome.NOT_NEWER
    finally:
        policy.close()


def test_a_401_drops_a_held_token_after_the_store_has_swept_its_keys(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    credential.fixed_expiry = clock() - 120
    policy: Any = make_sync_policy(credential, clock, retry_delay=30)
    other: Any = make_sync_policy(credential, clock, retry_delay=30)
    try:
        assert attach(policy) == "Bearer token-1"  # held, already expired
        clock.advance(61)  # past the sweep's interval ...
        policy._store.begin(TokenKey.of(["https://other.example/.default"]))  # ... which a request for another key runs
        policy._store.invalidate_carrying("Bearer token-1")  # the service refused the held token
        assert policy._store.current(policy._default_key) is None  # dropped all the same
    finally:
        policy.close()
        other.close()
