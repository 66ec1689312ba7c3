"""Sync policies and their credential: policies built by many threads at once share one token; a
credential that cannot be weakly referenced works; no event or status of a thread's refresh, a
timed-out one included, holds the token."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import pytest
from azure.core.credentials import AccessTokenInfo, TokenRequestOptions

from bgrefresh_policy import RefreshEvent, RefreshOutcome, TokenStatus, _sharing
from bgrefresh_policy._sharing import shared_count
from tests.support import HANG_GUARD, FakeClock, SyncScriptedCredential, Threads, blocked_in_wait, eventually
from tests.unit.test_pinned import leaks

from .conftest import attach, make_sync_policy, start_stuck_refresh

THREADS = 16


class Arrivals:
    """Where the building threads are: in the registry's lookup, waiting for its lock, or done."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_lookup = self.waiting = self.built = 0
        self.gate = threading.Event()  # holds the lookups open until every thread has arrived

    def add(self, name: str, change: int) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + change)

    def total(self) -> int:
        with self.lock:
            return self.in_lookup + self.waiting + self.built


class HeldRegistry(dict[int, Any]):
    """The registry of shared tokens by credential, its lookup of one credential held at a gate."""

    def __init__(self, real: dict[int, Any], ident: int, arrivals: Arrivals) -> None:
        super().__init__(real)
        self.ident = ident
        self.arrivals = arrivals

    def get(self, key: int, default: Any = None) -> Any:
        found = super().get(key, default)  # what the registry holds as the thread arrives
        if key == self.ident:
            self.arrivals.add("in_lookup", 1)
            assert self.arrivals.gate.wait(HANG_GUARD)
        return found


class CountedLock:
    """The registry's lock, counting the threads waiting to take it."""

    def __init__(self, lock: Any, arrivals: Arrivals) -> None:
        self.lock = lock
        self.arrivals = arrivals

    def __enter__(self) -> CountedLock:
        self.arrivals.add("waiting", 1)
        self.lock.acquire()
        self.arrivals.add("waiting", -1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.lock.release()


def test_policies_built_on_one_credential_by_many_threads_at_once_share_one_token(
    credential: SyncScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrivals = Arrivals()
    # Every thread looks its credential up at once: the lookup is held open until all have arrived
    # (in it, or waiting for the registry's lock), so a registry that let two of them in would
    # make each a store of its own.
    monkeypatch.setattr(_sharing, "_BY_CREDENTIAL", HeldRegistry(_sharing._BY_CREDENTIAL, id(credential), arrivals))
    monkeypatch.setattr(_sharing, "_LOCK", CountedLock(_sharing._LOCK, arrivals))
    gate = credential.gate = threading.Event()
    policies: list[Any] = []
    all_built = threading.Barrier(THREADS)

    def build_then_request(index: int) -> str:
        policy = make_sync_policy(credential, clock)  # all at once: Threads releases them together
        policies.append(policy)
        arrivals.add("built", 1)
        all_built.wait(HANG_GUARD)  # no request before every policy exists
        return attach(policy)

    threads = Threads(THREADS, build_then_request)
    try:
        eventually(lambda: arrivals.total() == THREADS)
        arrivals.gate.set()

        def blocked() -> int:
            # One thread in the credential call, the others waiting on its refresh; with stores
            # or runners of their own, more in the call, but as many blocked in all.
            runners = {id(policy._runner): policy._runner for policy in tuple(policies)}.values()
            flights = [flight for runner in runners for flight in tuple(runner.flights.values())]
            return blocked_in_wait(gate, *(flight.done for flight in flights))

        eventually(lambda: blocked() == THREADS)
        gate.set()
        assert set(threads.results()) == {"Bearer token-1"}
        assert len(credential.calls) == 1
        assert len({id(policy._store) for policy in policies}) == 1
    finally:
        arrivals.gate.set()
        gate.set()
        for policy in policies:
            policy.close()


_COLLECTED: list[str] = []


class SlottedSyncCredential:
    """A sync credential with ``__slots__`` and no ``__weakref__``: ``weakref.ref()`` refuses it."""

    __slots__ = ("calls", "clock", "name")

    def __init__(self, clock: FakeClock, name: str) -> None:
        self.clock = clock
        self.name = name
        self.calls = 0

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        self.calls += 1
        return AccessTokenInfo(f"slotted-{self.calls}", int(self.clock() + 3600))

    def __del__(self) -> None:
        _COLLECTED.append(self.name)


def test_a_sync_credential_without_weak_references_works_with_tokens_of_its_own_per_policy(clock: FakeClock) -> None:
    credential = SlottedSyncCredential(clock, "slotted sync")
    with pytest.raises(TypeError):
        weakref.ref(credential)
    before = shared_count()
    first, second = make_sync_policy(credential, clock), make_sync_policy(credential, clock)
    try:
        assert attach(first) == "Bearer slotted-1"
        assert attach(second) == "Bearer slotted-2"  # each policy its own token: sharing would keep it alive
        assert shared_count() == before  # the registry holds nothing for it
        clock.advance(3400)
        assert attach(first) == "Bearer slotted-1"  # due: a background refresh, as with any credential
        assert first.wait_for_refreshes(HANG_GUARD)
        assert attach(first) == "Bearer slotted-3"
        assert credential.calls == 3
    finally:
        first.close()
        second.close()
    del first, second, credential
    gc.collect()
    assert "slotted sync" in _COLLECTED  # the library kept it alive nowhere


def test_no_event_or_status_of_a_threads_refresh_holds_the_token_a_timed_out_one_included(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    events: list[RefreshEvent] = []
    statuses: list[TokenStatus] = []
    policy = make_sync_policy(credential, clock, refresh_timeout=0.05, retry_delay=10, on_refresh=events.append)
    try:
        gate = start_stuck_refresh(policy, credential, clock)  # inline: new token; then one held
        statuses += policy.token_status()
        credential.gate = None
        clock.advance(150)  # 50 s left, under min_validity: a request waits for it, up to refresh_timeout
        assert attach(policy) == "Bearer token-1"  # gave up on it: timed out
        statuses += policy.token_status()
        gate.set()
        assert policy.wait_for_refreshes(HANG_GUARD)  # its late token is recorded, not told again
        statuses += policy.token_status()
        clock.advance(3400)
        credential.errors = [OSError("token endpoint down")]
        attach(policy)  # background: failed
        assert policy.wait_for_refreshes(HANG_GUARD)
        statuses += policy.token_status()
    finally:
        policy.close()
    assert [event.outcome for event in events] == [
        RefreshOutcome.NEW_TOKEN,
        RefreshOutcome.TIMED_OUT,
        RefreshOutcome.FAILED,
    ]
    assert isinstance(events[1].error, TimeoutError)
    secrets = {f"token-{number}" for number in range(1, len(credential.calls) + 1)}
    leaking_events, leaking_statuses = leaks(events, secrets), leaks(statuses, secrets)  # counts only
    assert leaking_events == 0, "an event holds a token"
    assert leaking_statuses == 0, "a token status holds a token"
