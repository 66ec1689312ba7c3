"""Fixtures for the sync policy: a fake clock, a scripted thread-safe credential, no thread left behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bgrefresh_policy import BackgroundRefreshTokenPolicy
from tests.support import FakeClock, SyncScriptedCredential, blocked_in_wait, eventually, make_request

SCOPE = "https://management.azure.com/.default"


def refresh_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("bgrefresh")]


@pytest.fixture(autouse=True)
def no_refresh_thread_outlives_the_test() -> Iterator[None]:
    yield
    left = refresh_threads()
    assert left == [], f"refresh threads left running: {left}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def credential(clock: FakeClock) -> SyncScriptedCredential:
    return SyncScriptedCredential(clock=clock)


def no_jitter() -> int:
    return 0


def make_sync_policy(credential: Any, clock: FakeClock, **options: Any) -> Any:
    """A sync policy on the fake clock with no jitter: a 3600 s token is due with under 300 s left."""
    policy: Any = BackgroundRefreshTokenPolicy(credential, SCOPE, **options)
    policy._store.clock = clock
    policy._store.draw_jitter = no_jitter  # a function, not a lambda: policies get pickled
    return policy


@pytest.fixture
def policy(credential: SyncScriptedCredential, clock: FakeClock) -> Iterator[Any]:
    policy = make_sync_policy(credential, clock)
    yield policy
    for gate in credential.gates:  # release whatever a failed test left waiting
        gate.set()
    policy.close()


def prime(policy: Any, clock: FakeClock, *, age: float = 3400) -> None:
    """Get token-1 (valid 3600 s), then let ``age`` seconds pass: by default it is due, 200 s left."""
    policy.on_request(make_request())
    clock.advance(age)


def attach(policy: Any) -> str:
    """The Authorization header a new request gets."""
    request = make_request()
    policy.on_request(request)
    return str(request.http_request.headers["Authorization"])


def start_stuck_refresh(policy: Any, credential: SyncScriptedCredential, clock: FakeClock) -> threading.Event:
    """Get token-1, let it come due, and start a background refresh whose credential call is under way
    and waits on the returned gate (also ``credential.gate``)."""
    prime(policy, clock)
    gate = credential.gate = threading.Event()
    attach(policy)
    eventually(lambda: len(credential.calls) == 2)
    return gate


def blocked_in_policy(policy: Any, credential: SyncScriptedCredential) -> int:
    """How many threads are blocked inside the policy: waiting on a refresh in flight, or in a
    credential call held at one of the credential's gates."""
    flights = tuple(policy._runner.flights.values())
    return blocked_in_wait(*(flight.done for flight in flights), *credential.gates)
