"""Semantic 9: one policy across sequential asyncio.run calls, threads with their own loops, and trio."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import trio
import trio.testing

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from tests.support import (
    HANG_GUARD,
    FakeClock,
    ScriptedCredential,
    bearer,
    eventually_async,
    make_request,
    refresh_begins,
)
from tests.unit.conftest import SCOPE, make_policy


def test_sequential_asyncio_runs_share_one_policy() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)

    async def cycle() -> list[str]:
        seen = []
        for _ in range(3):
            request = make_request()
            await policy.on_request(request)
            seen.append(bearer(request))
            await refresh_begins()  # a background refresh this request started runs, and answers at once
            async with policy._lock:  # a lock of this loop
                pass
        return seen

    async def due_then_background() -> None:
        clock.advance(3400)
        credential.gate = asyncio.Event()  # this loop's event: the refresh hangs until the loop ends
        await policy.on_request(make_request())
        await refresh_begins()

    assert asyncio.run(cycle()) == ["Bearer token-1"] * 3
    asyncio.run(due_then_background())  # asyncio.run cancels the hung refresh as it closes its loop
    credential.gate = None
    # The abandoned refresh counts as a failed attempt: runs within retry_delay do not each
    # start (and lose) another token request.
    for _ in range(5):
        assert asyncio.run(cycle()) == ["Bearer token-1"] * 3
    assert len(credential.calls) == 2
    clock.advance(30)
    assert asyncio.run(cycle())[-1] == "Bearer token-3"
    assert len(policy._runners._asyncio) == 1  # runners of closed loops are dropped


def test_a_loop_closed_with_a_refresh_pending_does_not_block_background_refreshes() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(policy.on_request(make_request()))
    clock.advance(3400)
    credential.gate = asyncio.Event()
    loop.run_until_complete(policy.on_request(make_request()))  # a background refresh, left pending
    abandoned = next(iter(policy._runners._asyncio[loop]._tasks))
    loop.close()  # without cancelling it: its task will never run again
    credential.gate = None
    clock.advance(30)  # past the back-off the abandoned attempt counts for
    asyncio.run(policy.on_request(make_request()))  # another loop: starts a new background refresh
    assert len(credential.calls) == 3
    assert policy._store.current(policy._default_key).token.token == "token-3"
    # The closed loop's task object can no longer be cancelled; it was the test's choice to leave it.
    abandoned._log_destroy_pending = False


def test_threads_each_running_their_own_loop() -> None:
    credential = ScriptedCredential(clock=time.time, lifetime=3600)
    policy = AsyncBackgroundRefreshTokenPolicy(credential, SCOPE)
    errors: list[BaseException] = []
    tokens: list[str] = []
    start = threading.Barrier(8)

    async def burst() -> None:
        requests = [make_request() for _ in range(50)]
        await asyncio.gather(*(policy.on_request(r) for r in requests))
        async with policy._lock:
            tokens.extend(bearer(r) for r in requests)
        await policy.close()

    def worker() -> None:
        start.wait()
        try:
            asyncio.run(burst())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(tokens) == 400
    assert len(credential.calls) <= 8  # at most one inline call per loop, none per request


def test_trio_background_refresh() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)

    async def main() -> None:
        await policy.on_request(make_request())
        clock.advance(3400)
        credential.gate = trio.Event()
        async with policy._lock:  # a trio lock
            pass
        request = make_request()
        with trio.fail_after(HANG_GUARD):
            await policy.on_request(request)  # returns while the refresh hangs
        assert bearer(request) == "Bearer token-1"
        await trio.testing.wait_all_tasks_blocked()  # the refresh's system task begins once the request yields
        assert len(credential.calls) == 2
        assert credential.finished == 1  # the refresh is still held in the credential call
        credential.gate.set()
        await trio.testing.wait_all_tasks_blocked()  # the refresh task has run to its end
        assert credential.finished == 2
        later = make_request()
        await policy.on_request(later)
        assert bearer(later) == "Bearer token-2"

    trio.run(main)


def test_trio_refresh_tasks_are_named_for_their_scopes() -> None:
    clock = FakeClock()
    names: list[str] = []

    class TaskNamingCredential(ScriptedCredential):
        async def get_token_info(self, *scopes: str, options: Any = None) -> Any:
            names.append(trio.lowlevel.current_task().name)
            return await super().get_token_info(*scopes, options=options)

    policy = make_policy(TaskNamingCredential(clock=clock), clock)

    async def main() -> None:
        await policy.on_request(make_request())  # an inline refresh
        clock.advance(3400)
        await policy.on_request(make_request())  # a background one
        with trio.fail_after(HANG_GUARD):
            await policy.wait_for_refreshes()

    trio.run(main)
    assert names == [f"bgrefresh token refresh for {SCOPE}"] * 2


def test_trio_inline_refresh_survives_the_starter_being_cancelled() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)
    results: list[str] = []
    starter_scopes: list[trio.CancelScope] = []

    async def starter() -> None:
        with trio.CancelScope() as scope:  # the starter's own scope, cancelled below
            starter_scopes.append(scope)
            await policy.on_request(make_request())

    async def other() -> None:
        request = make_request()
        await policy.on_request(request)
        results.append(bearer(request))

    async def main() -> None:
        credential.gate = trio.Event()
        with trio.fail_after(HANG_GUARD):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(starter)
                await trio.testing.wait_all_tasks_blocked()
                assert len(credential.calls) == 1  # the starter's refresh is running
                nursery.start_soon(other)
                await trio.testing.wait_all_tasks_blocked()  # the other request waits on it
                assert results == []
                starter_scopes[0].cancel()
                await trio.testing.wait_all_tasks_blocked()  # the starter is gone; the refresh is held still
                assert credential.cancelled == 0
                assert results == []
                credential.gate.set()
        assert starter_scopes[0].cancelled_caught
        assert results == ["Bearer token-1"]
        assert credential.cancelled == 0
        assert len(credential.calls) == 1

    trio.run(main)


def test_trio_refresh_timeout_applies() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock, refresh_timeout=0.05)
    # Trio's clock, faked: it jumps to the next deadline once every task is blocked.
    trio_clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> None:
        await policy.on_request(make_request())
        clock.advance(3400)
        credential.gate = trio.Event()
        await policy.on_request(make_request())
        started = trio.current_time()
        with trio.fail_after(HANG_GUARD):
            await policy.wait_for_refreshes()  # ends only by the timeout: the gate stays shut
        assert credential.cancelled == 1  # timed out
        assert trio.current_time() - started == pytest.approx(0.05)  # at refresh_timeout, on the fake clock
        await policy.close()

    trio.run(main, clock=trio_clock)


def test_trio_close_cancels_and_awaits_refreshes() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock, refresh_timeout=30)

    async def main() -> None:
        await policy.on_request(make_request())
        clock.advance(3400)
        credential.gate = trio.Event()
        await policy.on_request(make_request())
        with trio.fail_after(HANG_GUARD):
            await policy.close()
        assert credential.cancelled == 1
        await policy.close()

    trio.run(main)


def test_trio_credential_error_reaches_the_request_and_the_run_survives() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    credential.errors.append(OSError("token endpoint unreachable"))
    policy = make_policy(credential, clock)

    async def main() -> None:
        with pytest.raises(OSError, match="unreachable"):
            await policy.on_request(make_request())
        request = make_request()
        await policy.on_request(request)
        assert bearer(request) == "Bearer token-2"
        clock.advance(3600)  # expired: a second inline refresh, not the finished flight
        await policy.on_request(request)
        assert bearer(request) == "Bearer token-3"

    trio.run(main)


def test_trio_runs_do_not_share_runners_or_locks() -> None:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(ScriptedCredential(clock=FakeClock()), SCOPE)

    async def hold_lock_until_the_run_ends() -> None:
        await policy._lock.acquire()

    async def take_lock() -> None:
        lock = policy._lock
        lock.acquire_nowait()  # trio.WouldBlock if it were the first run's lock, still held
        lock.release()
        async with lock:
            pass

    trio.run(hold_lock_until_the_run_ends)
    trio.run(take_lock)


def test_close_asks_another_threads_loop_to_cancel_its_refresh() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)
    started, finished = threading.Event(), threading.Event()

    async def other_loop() -> None:
        await policy.on_request(make_request())
        clock.advance(3400)
        credential.gate = asyncio.Event()  # hangs until cancelled
        await policy.on_request(make_request())
        started.set()
        await eventually_async(lambda: credential.cancelled)  # what the other thread's close() causes
        finished.set()

    thread = threading.Thread(target=lambda: asyncio.run(other_loop()))
    thread.start()
    assert started.wait(HANG_GUARD)
    asyncio.run(policy.close())
    assert finished.wait(HANG_GUARD)
    thread.join(HANG_GUARD)
    assert credential.cancelled == 1


async def test_lock_is_per_loop_and_usable() -> None:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(ScriptedCredential(clock=FakeClock()), SCOPE)
    lock = policy._lock
    assert isinstance(lock, asyncio.Lock)
    assert policy._lock is lock
    async with lock:
        assert lock.locked()


def test_lock_outside_an_event_loop_is_an_error() -> None:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(ScriptedCredential(clock=FakeClock()), SCOPE)
    with pytest.raises(RuntimeError, match="event loop"):
        policy._lock  # noqa: B018


def test_trio_wait_for_refreshes() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)

    async def main() -> None:
        await policy.wait_for_refreshes()
        await policy.on_request(make_request())
        clock.advance(3400)
        credential.gate = trio.Event()
        await policy.on_request(make_request())
        returned: list[int] = []

        async def wait_then_look() -> None:
            await policy.wait_for_refreshes()
            returned.append(credential.finished)  # how many calls had finished by then

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_then_look)
            await trio.testing.wait_all_tasks_blocked()  # it waits, on the held refresh
            assert returned == []
            assert credential.finished == 1
            credential.gate.set()
        assert returned == [2]
        assert credential.finished == 2

    trio.run(main)


def test_an_idle_policy_refreshes_on_schedule_under_trio(clock: FakeClock, credential: ScriptedCredential) -> None:
    trio_clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> None:
        policy = make_policy(credential, clock, refresh_when_idle=True)
        await policy.on_request(make_request())
        clock.advance(3301)  # due in the policy's time
        await trio.sleep(3301)  # the run's clock jumps: the idle timer fires, the refresh runs
        await trio.testing.wait_all_tasks_blocked()
        assert len(credential.calls) == 2
        request = make_request()
        await policy.on_request(request)
        assert bearer(request) == "Bearer token-2"
        await policy.close()
        assert policy._runners.current()._timers == {}

    trio.run(main, clock=trio_clock)
