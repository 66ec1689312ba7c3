"""Callbacks that do work: on_refresh runs with no lock held and after its refresh has settled.

A callback on the refresh thread that closes its policy, or waits for its refreshes, must not wait
for that very thread; one that sends a request for the same key after an inline failure must not
join the refresh that is telling it.
"""

from __future__ import annotations

import threading
from typing import Any

from azure.core.exceptions import ClientAuthenticationError

from bgrefresh_policy import RefreshEvent, RefreshOutcome
from tests.support import HANG_GUARD, FakeClock, SyncScriptedCredential
from tests.sync.conftest import attach, make_sync_policy, prime


def test_close_from_on_refresh_on_the_refresh_thread_does_not_wait_for_that_thread(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    closed = threading.Event()
    policy: Any = None

    def on_refresh(event: RefreshEvent) -> None:
        if event.background:
            policy.close()  # on the refresh thread: with refresh_timeout=3600, waiting for itself would hang
            closed.set()

    policy = make_sync_policy(credential, clock, refresh_timeout=3600, on_refresh=on_refresh)
    prime(policy, clock)
    attach(policy)  # due: starts the background refresh, which answers at once and tells on_refresh
    assert closed.wait(HANG_GUARD)
    assert policy.closed
    assert policy.wait_for_refreshes(HANG_GUARD)
    assert attach(policy) == "Bearer token-2"


def test_wait_for_refreshes_from_on_refresh_on_the_refresh_thread_returns(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    waited: list[bool] = []
    done = threading.Event()
    policy: Any = None

    def on_refresh(event: RefreshEvent) -> None:
        if event.background:
            waited.append(policy.wait_for_refreshes())  # no timeout: waiting for itself would be forever
            done.set()

    policy = make_sync_policy(credential, clock, on_refresh=on_refresh)
    try:
        prime(policy, clock)
        attach(policy)
        assert done.wait(HANG_GUARD)
        assert waited == [True]
    finally:
        policy.close()


def test_a_request_from_on_refresh_after_an_inline_failure_makes_its_own_credential_call(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    credential.errors = [ClientAuthenticationError("token endpoint down")]
    from_callback: list[str] = []
    policy: Any = None

    def on_refresh(event: RefreshEvent) -> None:
        if event.outcome is RefreshOutcome.FAILED and not from_callback:
            from_callback.append("asking")
            from_callback.append(attach(policy))  # the same key, on the thread the failed refresh told

    policy = make_sync_policy(credential, clock, on_refresh=on_refresh)
    first: list[str] = []

    try:
        request = threading.Thread(target=lambda: first.append(attach(policy)))
        request.start()
        request.join(HANG_GUARD)
        assert not request.is_alive(), "the callback's request joined the refresh that was telling it"
        assert from_callback == ["asking", "Bearer token-2"]
        assert first == ["Bearer token-2"]  # its refresh failed, but a valid token exists by the time it decides
        assert len(credential.calls) == 2
    finally:
        policy.close()
