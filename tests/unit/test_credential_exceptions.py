"""Whatever the credential raises reaches the caller as with azure-core, or counts as a failed background refresh.

azure-core's policy calls the credential in the request's own task, so any exception the
credential raises, ``CancelledError`` and ``BaseException`` subclasses included, comes out of
``on_request`` unchanged. This policy calls it in a refresh task (asyncio) or system task (trio)
that requests wait on; those exceptions must come through that task unchanged too, and a
background refresh that ends with one must be an ordinary failed attempt: logged once, backed off,
and never an unretrieved task exception or a crashed trio run.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

import pytest
import trio

from tests.support import FakeClock, ScriptedCredential, bearer, make_request
from tests.unit.conftest import make_policy


class CredentialInterrupt(BaseException):
    """A BaseException subclass of the user's own, as some frameworks raise to unwind."""


def interrupts() -> list[BaseException]:
    return [KeyboardInterrupt(), SystemExit(3), CredentialInterrupt("unwind")]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("bgrefresh_policy")]


# --- asyncio ------------------------------------------------------------------------------


async def test_a_cancelled_error_of_the_credentials_own_reaches_every_waiting_request() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock, gate=asyncio.Event())
    policy = make_policy(credential, clock)
    raised = asyncio.CancelledError("the credential's own")
    credential.errors.append(raised)

    async def outcome() -> BaseException | None:
        # Caught inside the coroutine: a task ending with CancelledError would replace it with its own.
        try:
            await policy.on_request(make_request())
        except asyncio.CancelledError as exc:
            return exc
        return None

    waiting = [asyncio.ensure_future(outcome()) for _ in range(3)]
    while len(credential.calls) < 1:  # noqa: ASYNC110 - other tasks of this loop get there; no timer
        await asyncio.sleep(0)
    credential.gate.set()
    outcomes = await asyncio.gather(*waiting)
    assert all(exc is raised for exc in outcomes)  # the credential's own, not RefreshAbandoned
    assert len(credential.calls) == 1
    request = make_request()
    await policy.on_request(request)  # nothing was cancelled: the next request refreshes as usual
    assert bearer(request) == "Bearer token-2"


async def test_a_base_exception_subclass_reaches_the_waiting_request_unchanged() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)
    raised = CredentialInterrupt("unwind")
    credential.errors.append(raised)
    with pytest.raises(CredentialInterrupt) as caught:
        await policy.on_request(make_request())
    assert caught.value is raised
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-2"
    # The suite's conftest fails this test on "Task exception was never retrieved".


@pytest.mark.parametrize("raised", [KeyboardInterrupt(), SystemExit(3)], ids=["KeyboardInterrupt", "SystemExit"])
def test_keyboard_interrupt_and_system_exit_end_the_run_as_they_would_with_azure_core(raised: BaseException) -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)
    credential.errors.append(raised)
    with pytest.raises(type(raised)) as caught:
        asyncio.run(policy.on_request(make_request()))
    assert caught.value is raised

    async def next_request() -> str:
        request = make_request()
        await policy.on_request(request)
        return bearer(request)

    assert asyncio.run(next_request()) == "Bearer token-2"


async def background_failure_then_recovery(
    policy: Any, clock: FakeClock, credential: ScriptedCredential, raised: BaseException
) -> list[str]:
    """A due token, a background refresh that ends with ``raised``, requests through the back-off
    and after it: the tokens they carried. Runs as it is on asyncio and on trio."""
    seen = []
    await policy.on_request(make_request())
    clock.advance(3400)  # due, 200 s left
    credential.errors.append(raised)
    for _ in range(3):
        request = make_request()
        await policy.on_request(request)
        await policy.wait_for_refreshes()
        seen.append(bearer(request))
    clock.advance(30)  # retry_delay
    await policy.on_request(make_request())
    await policy.wait_for_refreshes()
    request = make_request()
    await policy.on_request(request)
    seen.append(bearer(request))
    return seen


@pytest.mark.parametrize("library", ["asyncio", "trio"])
@pytest.mark.parametrize("raised", interrupts(), ids=lambda e: type(e).__name__)
def test_any_exception_in_a_background_refresh_is_a_failed_attempt(
    library: str, raised: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)

    async def main() -> list[str]:
        return await background_failure_then_recovery(policy, clock, credential, raised)

    with caplog.at_level(logging.DEBUG, logger="bgrefresh_policy"):
        # Neither the interrupt nor a task error gets out of the run (trio: no TrioInternalError).
        seen = asyncio.run(main()) if library == "asyncio" else trio.run(main)
    assert seen == ["Bearer token-1"] * 3 + ["Bearer token-3"]
    assert len(credential.calls) == 3  # one failed attempt, then none until retry_delay
    [warning] = warnings_of(caplog)
    assert type(raised).__name__ in warning.getMessage()


async def test_a_background_refresh_whose_outcome_cannot_be_recorded_is_reported_to_the_loop() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    broken = RuntimeError("a logging filter that raises")

    def refuse(record: logging.LogRecord) -> bool:
        raise broken

    store_logger = logging.getLogger("bgrefresh_policy._store")
    store_logger.addFilter(refuse)
    try:
        await policy.on_request(make_request())
        clock.advance(3400)
        credential.errors.append(OSError("token endpoint down"))  # its WARNING meets the filter
        await policy.on_request(make_request())
        await policy.wait_for_refreshes()
    finally:
        store_logger.removeFilter(refuse)
        loop.set_exception_handler(None)
    assert [context["exception"] for context in reported] == [broken]
    assert not policy._runners.current().flights  # nothing left for a request to wait on forever
    clock.advance(30)
    await policy.on_request(make_request())  # the key is free for the next background refresh
    await policy.wait_for_refreshes()
    assert len(credential.calls) == 3


# --- trio ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raised", interrupts(), ids=lambda e: type(e).__name__)
def test_trio_inline_refresh_passes_any_credential_exception_to_the_caller(raised: BaseException) -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)
    credential.errors.append(raised)

    async def main() -> tuple[BaseException | None, str]:
        caught: BaseException | None = None
        try:
            await policy.on_request(make_request())
        except BaseException as exc:  # noqa: BLE001 - the point: which one arrives
            caught = exc
        request = make_request()
        await policy.on_request(request)  # the run goes on, and so does the policy
        return caught, bearer(request)

    caught, after = trio.run(main)  # without the fix: trio.TrioInternalError
    assert caught is raised
    assert after == "Bearer token-2"


async def test_a_failure_shared_by_many_waiters_does_not_pile_their_stacks_onto_one_traceback() -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock, gate=asyncio.Event())
    policy = make_policy(credential, clock)
    credential.errors.append(LookupError("token endpoint down"))

    async def depth() -> int:
        try:
            await policy.on_request(make_request())
        except LookupError as exc:
            return len(traceback.extract_tb(exc.__traceback__))
        raise AssertionError("the credential's error was expected")

    waiting = [asyncio.ensure_future(depth()) for _ in range(200)]
    while not credential.calls:  # noqa: ASYNC110 - other tasks of this loop get there; no timer
        await asyncio.sleep(0)
    credential.gate.set()
    depths = await asyncio.gather(*waiting)
    assert len(credential.calls) == 1
    assert max(depths) == min(depths) < 30  # each its own frames over the refresh's, never the others'
