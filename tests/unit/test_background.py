"""Semantic 2: a due token is attached while one background refresh runs; requests never wait."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from tests.support import (
    HANG_GUARD,
    FakeClock,
    LoopClock,
    ScriptedCredential,
    bearer,
    loop_until,
    make_request,
    refresh_begins,
)
from tests.unit.conftest import SCOPE, make_policy, prime


async def test_due_token_is_attached_while_the_refresh_runs(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    await prime(policy, clock)
    credential.gate = asyncio.Event()  # the token endpoint now hangs until released
    request = make_request()
    await asyncio.wait_for(policy.on_request(request), HANG_GUARD)  # returns although the credential is stuck
    assert bearer(request) == "Bearer token-1"
    assert len(credential.calls) == 2  # the refresh had begun before on_request returned ...
    assert credential.finished == 1  # ... and is still held in the credential call
    credential.gate.set()
    await policy.close()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks: Python 3.12+")
async def test_refresh_started_eagerly_so_a_cache_answer_is_ready_for_the_next_request(
    policy: Any, clock: FakeClock
) -> None:
    await prime(policy, clock)
    first, second = make_request(), make_request()
    await policy.on_request(first)
    await policy.on_request(second)  # no sleep in between
    assert bearer(first) == "Bearer token-1"
    assert bearer(second) == "Bearer token-2"


async def test_hundreds_of_concurrent_requests_one_credential_call_none_waiting(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    await prime(policy, clock)
    credential.gate = asyncio.Event()
    requests = [make_request() for _ in range(500)]
    await asyncio.wait_for(asyncio.gather(*(policy.on_request(r) for r in requests)), HANG_GUARD)
    assert {bearer(r) for r in requests} == {"Bearer token-1"}
    assert len(credential.calls) == 2
    assert credential.finished == 1  # all 500 returned while the refresh was held in the credential call
    credential.gate.set()
    await asyncio.sleep(0)
    later = make_request()
    await policy.on_request(later)
    assert bearer(later) == "Bearer token-2"
    assert len(credential.calls) == 2


async def test_token_not_due_makes_no_credential_call(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    await prime(policy, clock, age=3000)
    for _ in range(50):
        await policy.on_request(make_request())
    assert len(credential.calls) == 1


async def test_background_refresh_uses_refresh_on(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    credential.refresh_in = 1800  # as Entra ID's refresh_in
    await prime(policy, clock, age=1799)
    await policy.on_request(make_request())
    assert len(credential.calls) == 1
    clock.advance(1)
    await policy.on_request(make_request())
    await refresh_begins()
    assert len(credential.calls) == 2


async def test_the_request_that_starts_a_background_refresh_never_suspends(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    # It hands the refresh to a task and returns: neither a pass of the event loop (which with
    # thousands of requests in flight would cost milliseconds) nor a cancellation can reach it.
    await prime(policy, clock)
    credential.gate = asyncio.Event()
    request = make_request()
    starting = policy.on_request(request)
    with pytest.raises(StopIteration):
        starting.send(None)  # ran to its end in one step
    assert bearer(request) == "Bearer token-1"
    await refresh_begins()
    assert len(credential.calls) == 2  # the refresh runs on its own
    credential.gate.set()
    await policy.wait_for_refreshes()
    later = make_request()
    await policy.on_request(later)
    assert bearer(later) == "Bearer token-2"


async def test_background_refresh_does_not_inherit_the_request_deadline(
    policy: Any, credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)  # the deadlines pass when the test says so
    await prime(policy, clock)
    credential.gate = asyncio.Event()
    attached: list[str] = []

    async def request_with_deadline() -> None:
        request = make_request()
        await asyncio.wait_for(policy.on_request(request), timeout=0.05)
        attached.append(bearer(request))
        await asyncio.sleep(1)  # the request's own work, cut short by its deadline

    deadline = asyncio.ensure_future(asyncio.wait_for(request_with_deadline(), timeout=0.05))
    await loop_until(lambda: attached)  # on_request returned, having started the refresh
    assert attached == ["Bearer token-1"]
    assert len(credential.calls) == 2
    await loop_clock.advance(0.05)  # the request's deadline passes while the refresh is held
    with pytest.raises(asyncio.TimeoutError):
        await deadline
    assert credential.cancelled == 0
    credential.gate.set()
    await policy.wait_for_refreshes()
    assert credential.cancelled == 0
    assert credential.finished == 2


async def test_background_result_expiring_sooner_does_not_replace(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    await prime(policy, clock)
    credential.fixed_expiry = clock.now + 100  # sooner than token-1's remaining 200 s
    await policy.on_request(make_request())
    await asyncio.sleep(0)
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-1"


@pytest.mark.skipif(not hasattr(asyncio, "eager_task_factory"), reason="eager tasks need Python 3.12+")
async def test_refresh_that_finishes_inside_create_task_is_not_left_joinable(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    try:
        await policy.on_request(make_request())  # the credential answers without suspending
        clock.advance(3600)
        request = make_request()
        await policy.on_request(request)
        assert bearer(request) == "Bearer token-2"
    finally:
        asyncio.get_running_loop().set_task_factory(None)


class TaskNamingCredential(ScriptedCredential):
    """Records the name of the task each credential call runs in."""

    task_names: list[str]

    async def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        task = asyncio.current_task()
        self.task_names.append(task.get_name() if task is not None else "")
        return await super().get_token_info(*scopes, options=options)


async def test_refresh_tasks_are_named_for_their_scopes(clock: FakeClock) -> None:
    credential = TaskNamingCredential(clock=clock)
    credential.task_names = []
    policy = make_policy(credential, clock)
    await prime(policy, clock)  # an inline refresh
    await policy.on_request(make_request())  # a background one
    await asyncio.wait_for(policy.wait_for_refreshes(), HANG_GUARD)
    assert credential.task_names == [f"bgrefresh token refresh for {SCOPE}"] * 2
    await policy.close()
