"""The token store under threads: no lost update, and exactly one refresh per token however many threads race."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from azure.core.credentials import AccessTokenInfo

from bgrefresh_policy._key_state import Action, TokenKey
from bgrefresh_policy._options import RefreshOptions
from bgrefresh_policy._outcome import RefreshTimedOut
from bgrefresh_policy._store import TokenStore
from tests.support import FakeClock, SyncScriptedCredential, in_threads
from tests.sync.conftest import attach, make_sync_policy

KEY = TokenKey.of(["https://management.azure.com/.default"])


@pytest.fixture(autouse=True)
def switch_threads_often() -> Iterator[None]:
    """Make the interpreter switch threads every microsecond, so that races show up."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_no_lost_update_when_threads_store_and_invalidate_at_once() -> None:
    store = TokenStore(RefreshOptions())
    keys = [TokenKey.of([f"https://service-{n}.example.test/.default"]) for n in range(3000)]

    def hammer(index: int) -> None:
        # Every thread walks the same keys: each key's state is created under contention.
        for key in keys:
            store.store(key, AccessTokenInfo(f"t{index}", 2_000_000_000))
            store.invalidate(key)

    in_threads(8, hammer, timeout=60)
    generations = [state.generation for state in map(store.peek, keys) if state is not None]
    assert generations == [8 * 2] * len(keys)  # every store and every invalidation counted


def test_racing_threads_start_exactly_one_background_refresh_per_token() -> None:
    store = TokenStore(RefreshOptions())
    clock = FakeClock()
    store.clock = clock
    store.draw_jitter = lambda: 0
    keys = [TokenKey.of([f"https://service-{n}.example.test/.default"]) for n in range(2000)]
    for key in keys:
        store.store(key, AccessTokenInfo("t", int(clock.now + 200)))  # due, above min_validity
    # Every thread walks the same keys: the first decision for each key is raced.
    decided = in_threads(8, lambda _: [store.begin(key)[0] is Action.BACKGROUND for key in keys], timeout=60)
    assert [sum(column) for column in zip(*decided, strict=True)] == [1] * len(keys)


def _three_requests(policy: Any, _: int) -> None:
    for _ in range(3):
        attach(policy)


def test_threads_racing_for_a_first_token_make_one_credential_call() -> None:
    """The decision and the joining are two steps for threads: a refresh ending between them is not redone."""
    extra_calls = 0
    for _ in range(150):
        clock = FakeClock()
        credential = SyncScriptedCredential(clock=clock)  # answers at once
        in_threads(8, partial(_three_requests, make_sync_policy(credential, clock)))
        extra_calls += len(credential.calls) - 1
    assert extra_calls == 0


def test_waiting_for_refreshes_while_others_start_them() -> None:
    clock = FakeClock()
    credential = SyncScriptedCredential(clock=clock)
    policy: Any = make_sync_policy(credential, clock)
    attach(policy)
    stop = threading.Event()
    errors: list[BaseException] = []

    def wait_repeatedly() -> None:
        while not stop.is_set():
            try:
                policy.wait_for_refreshes(1)
            except Exception as exc:  # noqa: BLE001 - the test counts them
                errors.append(exc)

    waiter = threading.Thread(target=wait_repeatedly)
    waiter.start()
    for _ in range(300):  # a refresh thread starts each time, as the waiter joins
        clock.advance(3400)
        attach(policy)
        assert policy.wait_for_refreshes(10)
        clock.advance(100)
    stop.set()
    waiter.join(10)
    assert errors == []
    assert len(credential.calls) == 301


def test_many_threads_through_many_token_lifetimes_make_one_call_each(clock: FakeClock) -> None:
    credential = SyncScriptedCredential(clock=clock)
    policy: Any = make_sync_policy(credential, clock)
    attach(policy)
    cycles = 50
    stop = threading.Event()
    headers: set[str] = set()

    def request_until_stopped(_: int) -> None:
        while not stop.is_set():
            headers.add(attach(policy))

    workers = threading.Thread(target=lambda: in_threads(16, request_until_stopped, timeout=120))
    workers.start()
    for cycle in range(cycles):
        clock.advance(3400)  # due, 200 s left: one background refresh, whoever gets there first
        while len(credential.calls) < cycle + 2:
            threading.Event().wait(0.001)
        assert policy.wait_for_refreshes(10)
        while f"Bearer token-{cycle + 2}" not in headers:  # some thread attached the new token
            threading.Event().wait(0.001)
        clock.advance(100)  # the new token is not due yet
    stop.set()
    workers.join(120)
    policy.close()
    assert len(credential.calls) == cycles + 1
    assert all(call.options == {} for call in credential.calls)
    assert len(headers) == cycles + 1  # every token was attached by someone


def test_a_timeout_recorded_after_the_late_success_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    store = TokenStore(RefreshOptions())
    clock = FakeClock()
    store.clock = clock
    store.store(KEY, AccessTokenInfo("old", int(clock.now + 200)))
    action, _, generation, mark = store.begin(KEY)
    assert action is Action.BACKGROUND
    # The refresh thread records its success just before the waiter that gave up records the timeout.
    store.finish(KEY, generation, AccessTokenInfo("new", int(clock.now + 3600)), None, mark=mark, explicit=False)
    with caplog.at_level(logging.WARNING):
        verdict = store.finish(KEY, generation, None, RefreshTimedOut("gave up"), mark=mark, explicit=False)
    assert verdict.token is not None
    assert verdict.token.token.token == "new"
    state = store.peek(KEY)
    assert state is not None
    assert state.retry_not_before == float("-inf")  # no back-off after a refresh that succeeded
    assert caplog.records == []  # and no failure logged
