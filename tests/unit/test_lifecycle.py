"""Semantics 8 and 12: close, async with, and pickling."""

from __future__ import annotations

import asyncio
import copy
import gc
import pickle
import sys
import time
from typing import Any

import pytest
from azure.core.credentials import AccessTokenInfo
from azure.core.pipeline import AsyncPipeline

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from tests.support import (
    HANG_GUARD,
    FakeClock,
    LoopClock,
    ScriptedCredential,
    ScriptedTransport,
    bearer,
    make_request,
    refresh_begins,
)
from tests.unit.conftest import SCOPE, make_policy

# On Python 3.12+ the policy starts its refreshes as eager tasks: their first step runs before
# start() returns, so no cancellation can come before it.
BEFORE_FIRST_STEP = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="eager tasks have no time before their first step"
)


async def due(policy: Any, clock: FakeClock) -> None:
    await policy.on_request(make_request())
    clock.advance(3400)


def live_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def test_close_cancels_and_awaits_the_running_refresh(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    await due(policy, clock)
    credential.gate = asyncio.Event()
    before = live_tasks()
    await policy.on_request(make_request())
    await refresh_begins()
    assert len(live_tasks() - before) == 1
    await policy.close()
    assert credential.cancelled == 1
    assert live_tasks() == before
    await policy.close()  # idempotent


async def test_after_close_a_due_token_is_refreshed_inline(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    await due(policy, clock)
    await policy.close()
    before = live_tasks()
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-2"
    assert live_tasks() == before


async def test_async_with_closes(credential: ScriptedCredential, clock: FakeClock) -> None:
    async with make_policy(credential, clock) as policy:
        await due(policy, clock)
        credential.gate = asyncio.Event()
        await policy.on_request(make_request())
        await refresh_begins()
    assert credential.cancelled == 1


async def test_inline_waiters_survive_close_by_refreshing_again(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    credential.gate = asyncio.Event()
    waiter = asyncio.ensure_future(policy.on_request(make_request()))
    while not credential.calls:  # noqa: ASYNC110 - the credential offers no event to wait on
        await asyncio.sleep(0)
    await policy.close()  # cancels the shared refresh; the waiting request starts its own
    credential.gate.set()
    await waiter
    assert credential.cancelled == 1
    assert len(credential.calls) == 2
    await policy.close()


@BEFORE_FIRST_STEP
async def test_refresh_cancelled_before_it_began_releases_its_waiters(
    policy: Any, credential: ScriptedCredential
) -> None:
    waiter = asyncio.ensure_future(policy.on_request(make_request()))  # no token: it must wait
    runner = policy._runners.current()
    while not runner.flights:  # noqa: ASYNC110 - the policy's internals offer no event to wait on
        await asyncio.sleep(0)
    await policy.close()  # cancels the refresh before its first step
    assert runner.flights == {}
    await asyncio.wait_for(waiter, HANG_GUARD)  # the waiter refreshed again instead of hanging
    assert len(credential.calls) == 1  # the cancelled refresh never reached the credential
    assert runner._tasks == {}


@BEFORE_FIRST_STEP
async def test_background_refresh_cancelled_before_it_began_clears_its_mark(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    await due(policy, clock)
    starter = asyncio.ensure_future(policy.on_request(make_request()))
    runner = policy._runners.current()
    while not runner.flights:  # noqa: ASYNC110 - the policy's internals offer no event to wait on
        await asyncio.sleep(0)
    await policy.close()
    await starter
    assert credential.cancelled == 0
    assert policy._store.peek(policy._default_key).background_since is None


class _NeverAnswers:
    """A credential whose call waits on a future nothing else references: only its task holds it."""

    async def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        await asyncio.get_running_loop().create_future()


async def test_refresh_tasks_are_held_by_the_policy() -> None:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(_NeverAnswers(), SCOPE)  # type: ignore[arg-type]
    policy._token = AccessTokenInfo("due", int(time.time() + 200))
    await policy.on_request(make_request())  # starts a background refresh that never ends
    gc.collect()  # the loop holds tasks weakly: a task only it held would be destroyed here
    runner = policy._runners.current()
    assert len(runner._tasks) == 1
    await policy.close()  # then the conftest check: no "Task was destroyed but it is pending"


def test_a_shallow_copy_shares_its_credentials_tokens_and_closes_on_its_own() -> None:
    clock = FakeClock()
    policy = make_policy(ScriptedCredential(clock=clock), clock)
    asyncio.run(policy.on_request(make_request()))
    duplicate: Any = copy.copy(policy)
    assert duplicate._store is policy._store  # the same credential object: one token
    assert duplicate._token is policy._token
    asyncio.run(duplicate.close())
    assert duplicate.closed is True
    assert policy.closed is False
    assert policy._token is not None


def test_copies_keep_their_pipeline_links_and_leave_a_closed_state_behind() -> None:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(ScriptedCredential(clock=FakeClock()), SCOPE)
    AsyncPipeline(ScriptedTransport(), policies=[policy])
    assert policy.next is not None
    asyncio.run(policy.close())
    for restored in (pickle.loads(pickle.dumps(policy)), copy.deepcopy(policy)):
        restored_any: Any = restored
        # As azure-core's policy: the link comes along (a pickled client's pipeline must still work).
        assert type(restored_any.next) is type(policy.next)
        assert restored_any.closed is False  # a copy is a new policy: it refreshes in the background
        assert restored_any._store is not policy._store  # a copy of the credential: tokens of its own


def test_pickle_and_copy_before_use() -> None:
    policy = AsyncBackgroundRefreshTokenPolicy(ScriptedCredential(clock=FakeClock()), SCOPE, min_validity=10)
    for restored in (pickle.loads(pickle.dumps(policy)), copy.deepcopy(policy), copy.copy(policy)):
        restored_any: Any = restored
        assert restored_any._store.options.min_validity == 10
        request = make_request()
        asyncio.run(restored.on_request(request))
        assert bearer(request) == "Bearer token-1"


def test_pickle_while_a_refresh_runs_carries_no_task_lock_or_token() -> None:
    credential = ScriptedCredential(clock=FakeClock())
    policy: Any = AsyncBackgroundRefreshTokenPolicy(credential, SCOPE)
    policy._store.clock = credential.clock

    async def main() -> bytes:
        await policy.on_request(make_request())
        async with policy._lock:  # a lock exists and is held
            credential.fixed_expiry = credential.clock() + 200
            await policy.authorize_request(make_request(), SCOPE)  # cached token is now due
            credential.gate = asyncio.Event()
            await policy.on_request(make_request())  # background refresh in flight
            await refresh_begins()
            data = pickle.dumps(policy)
        credential.gate.set()
        await policy.close()
        return data

    data = asyncio.run(main())
    assert b"token-" not in data
    restored: Any = pickle.loads(data)
    restored._credential.fixed_expiry = None
    request = make_request()
    asyncio.run(restored.on_request(request))
    assert bearer(request) == "Bearer token-4"


async def test_wait_for_refreshes_returns_once_the_background_refresh_landed(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    await policy.wait_for_refreshes()  # nothing started yet: returns at once
    await due(policy, clock)
    credential.gate = asyncio.Event()
    await policy.on_request(make_request())

    async def wait_then_look() -> str:
        await policy.wait_for_refreshes()
        return str(policy._store.current(policy._default_key).token.token)  # what had landed by then

    waiting = asyncio.ensure_future(wait_then_look())
    await asyncio.sleep(0)  # it runs up to its wait
    assert not waiting.done()
    credential.gate.set()
    assert await asyncio.wait_for(waiting, HANG_GUARD) == "token-2"
    assert credential.finished == 2


async def test_cancelling_wait_for_refreshes_leaves_the_refresh_running(
    policy: Any, credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)  # the deadline passes when the test says so
    await due(policy, clock)
    credential.gate = asyncio.Event()
    await policy.on_request(make_request())
    waiting = asyncio.ensure_future(asyncio.wait_for(policy.wait_for_refreshes(), 0.01))
    await asyncio.sleep(0)  # it starts waiting, on the held refresh, and arms its deadline
    await loop_clock.advance(0.01)
    with pytest.raises(asyncio.TimeoutError):
        await waiting
    assert credential.cancelled == 0
    credential.gate.set()
    await policy.wait_for_refreshes()
    assert credential.cancelled == 0
    assert credential.finished == 2
