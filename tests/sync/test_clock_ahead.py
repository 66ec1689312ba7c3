"""Tokens that arrive already expired (the machine's clock is ahead): never attached, and the
credential asked at most once per retry_delay, however many requests come."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError

from bgrefresh_policy import RefreshEvent, RefreshOutcome
from tests.support import FakeClock, SyncScriptedCredential, make_request
from tests.sync.conftest import attach, make_sync_policy, prime


def test_an_hour_of_requests_makes_one_credential_call_per_retry_delay(
    credential: SyncScriptedCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    credential.fixed_expiry = clock() - 120  # every token it gives expired two minutes ago, by our clock
    events: list[RefreshEvent] = []
    policy: Any = make_sync_policy(credential, clock, retry_delay=30, on_refresh=events.append)
    messages: set[str] = set()
    try:
        with caplog.at_level(logging.WARNING, logger="bgrefresh_policy"):
            for _ in range(3600):  # one request a second for an hour
                request = make_request()
                with pytest.raises(ClientAuthenticationError) as raised:
                    policy.on_request(request)
                assert "Authorization" not in request.http_request.headers  # never attached
                messages.add(str(raised.value))
                clock.advance(1)
    finally:
        policy.close()
    assert len(credential.calls) == 3600 // 30
    assert len(messages) == len(credential.calls)  # one error per credential call, told to every request
    assert all("already expired" in message and "clock" in message for message in messages)
    assert all("token-" not in message for message in messages)
    assert [event.outcome for event in events] == [RefreshOutcome.FAILED] * len(credential.calls)
    assert all(isinstance(event.error, ClientAuthenticationError) for event in events)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == len(credential.calls)
    assert all("already expired" in warning and "token-" not in warning for warning in warnings)


def test_a_good_token_after_the_clock_is_fixed_ends_the_refusal(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    credential.fixed_expiry = clock() - 120
    policy: Any = make_sync_policy(credential, clock, retry_delay=30)
    try:
        with pytest.raises(ClientAuthenticationError):
            attach(policy)
        with pytest.raises(ClientAuthenticationError):
            attach(policy)  # fails fast: no second call
        assert len(credential.calls) == 1
        credential.fixed_expiry = None  # the clock is right again
        clock.advance(30)
        assert attach(policy) == "Bearer token-2"
        assert attach(policy) == "Bearer token-2"
        assert len(credential.calls) == 2
    finally:
        policy.close()


def test_an_expired_token_from_a_background_refresh_keeps_the_current_one(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    events: list[RefreshEvent] = []
    policy: Any = make_sync_policy(credential, clock, on_refresh=events.append)
    try:
        prime(policy, clock)  # token-1, due with 200 s left
        credential.fixed_expiry = clock() - 1
        assert attach(policy) == "Bearer token-1"  # starts the background refresh
        assert policy.wait_for_refreshes(30)
        assert attach(policy) == "Bearer token-1"  # the expired token-2 was never taken
        assert events[-1].background
        assert events[-1].outcome is RefreshOutcome.FAILED
        assert isinstance(events[-1].error, ClientAuthenticationError)
    finally:
        policy.close()
