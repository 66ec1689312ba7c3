"""bgrefresh_policy.aio.BackgroundRefreshCredential, on asyncio and on trio.

Each test is one coroutine run under both libraries. Order and gates, never timing: "did not wait"
is a call that returned while the wrapped credential's call was still held open; "shared one
call" is every caller counted in before the held call is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
import trio
import trio.lowlevel
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.credentials_async import AsyncSupportsTokenInfo, AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy
from azure.core.rest import HttpRequest

import bgrefresh_policy
import bgrefresh_policy.aio
from tests.credential.conftest import SCOPE, on_fake_clock
from tests.support import HANG_GUARD, FakeClock, ScriptedCredential, ScriptedTransport

PRIME_AGE = 3400  # a 3600 s token is then due (300 s window, no jitter) with 200 s left
LIBRARIES = ["asyncio", "trio"]


def run(library: str, main: Callable[[], Awaitable[Any]]) -> Any:
    if library == "trio":

        async def guarded() -> Any:
            with trio.fail_after(HANG_GUARD):
                return await main()

        return trio.run(guarded)
    return asyncio.run(asyncio.wait_for(main(), HANG_GUARD))


def event(library: str) -> Any:
    return trio.Event() if library == "trio" else asyncio.Event()


async def turns(library: str, count: int = 50) -> None:
    """Let every other task run ``count`` times."""
    for _ in range(count):
        if library == "trio":
            await trio.lowlevel.checkpoint()
        else:
            await asyncio.sleep(0)


async def gather(library: str, calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the calls as concurrent tasks; their results (or errors), in order."""
    results: list[Any] = [None] * len(calls)

    async def one(index: int) -> None:
        try:
            results[index] = await calls[index]()
        except Exception as error:  # noqa: BLE001 - the test inspects it
            results[index] = error

    if library == "trio":
        async with trio.open_nursery() as nursery:
            for index in range(len(calls)):
                nursery.start_soon(one, index)
    else:
        await asyncio.gather(*(one(index) for index in range(len(calls))))
    return results


class CountedGate:
    """A gate the wrapped credential waits on, counting the calls that reached it."""

    def __init__(self, library: str) -> None:
        self.opened = event(library)
        self.arrived = 0

    async def wait(self) -> None:
        self.arrived += 1
        await self.opened.wait()


def wrapper_for(inner: Any, clock: FakeClock, **options: Any) -> Any:
    return on_fake_clock(bgrefresh_policy.aio.BackgroundRefreshCredential(inner, **options), clock)


@pytest.mark.parametrize("library", LIBRARIES)
def test_tokens_come_back_as_the_types_azure_core_defines(library: str, clock: FakeClock) -> None:
    inner = ScriptedCredential(clock=clock, refresh_in=1800)

    async def main() -> None:
        async with wrapper_for(inner, clock) as wrapper:
            info = await wrapper.get_token_info(SCOPE)
            assert isinstance(info, AccessTokenInfo)
            assert (info.expires_on, info.refresh_on) == (int(clock.now + 3600), int(clock.now + 1800))
            token = await wrapper.get_token(SCOPE)
            assert type(token) is AccessToken
            assert token.token == info.token == "token-1"
        assert len(inner.calls) == 1

    run(library, main)


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_due_token_is_returned_while_one_background_refresh_is_held_open(library: str, clock: FakeClock) -> None:
    inner = ScriptedCredential(clock=clock)

    async def main() -> list[str]:
        async with wrapper_for(inner, clock) as wrapper:
            await wrapper.get_token_info(SCOPE)
            clock.advance(PRIME_AGE)
            gate = inner.gate = CountedGate(library)
            seen = [(await wrapper.get_token_info(SCOPE)).token]
            await turns(library)
            assert gate.arrived == 1  # the refresh is under way, and held
            seen += [(await wrapper.get_token(SCOPE)).token for _ in range(3)]
            assert len(inner.calls) == 2  # one refresh in flight, however many calls
            gate.opened.set()
            await wrapper.wait_for_refreshes()
            seen.append((await wrapper.get_token_info(SCOPE)).token)
            return seen

    assert run(library, main) == ["token-1"] * 4 + ["token-2"]
    assert len(inner.calls) == 2


@pytest.mark.parametrize("library", LIBRARIES)
def test_tasks_with_no_token_share_one_call_and_one_error(library: str, clock: FakeClock) -> None:
    inner = ScriptedCredential(clock=clock)
    error = ClientAuthenticationError("the token endpoint said no")
    inner.errors.append(error)

    async def main() -> tuple[list[Any], str]:
        wrapper = wrapper_for(inner, clock)
        gate = inner.gate = CountedGate(library)
        started = 0

        async def call() -> Any:
            nonlocal started
            started += 1  # a task runs on from here until it waits: on the one call
            return await wrapper.get_token_info(SCOPE)

        async def release_when_all_wait() -> None:
            while started < 5 or gate.arrived < 1:
                await turns(library, 1)
            assert gate.arrived == 1  # five callers, one call
            gate.opened.set()

        results = await gather(library, [call] * 5 + [release_when_all_wait])
        inner.gate = None
        after = (await wrapper.get_token_info(SCOPE)).token  # after a failed first call, the next asks again
        await wrapper.close()
        return results[:5], after

    raised, after = run(library, main)
    assert all(result is error for result in raised)
    assert after == "token-2"
    assert len(inner.calls) == 2


@pytest.mark.parametrize("library", LIBRARIES)
def test_claims_tenants_and_cae(library: str, clock: FakeClock) -> None:
    inner = ScriptedCredential(clock=clock)

    async def main() -> list[Any]:
        async with wrapper_for(inner, clock) as wrapper:
            await wrapper.get_token(SCOPE)
            await wrapper.get_token(SCOPE, claims="c")  # always reaches the wrapped credential
            await wrapper.get_token(SCOPE, tenant_id="t")
            await wrapper.get_token_info(SCOPE, options={"enable_cae": True})
            await wrapper.get_token(SCOPE, enable_cae=True)  # cached
            status: list[Any] = wrapper.token_status()
            return status

    status = run(library, main)
    assert [call.options for call in inner.calls] == [{}, {"claims": "c"}, {"tenant_id": "t"}, {"enable_cae": True}]
    assert [(s.tenant_id, s.cae) for s in status] == [(None, False), (None, True), ("t", False)]


@pytest.mark.parametrize("library", LIBRARIES)
def test_prefetch_then_azure_cores_own_policy_on_the_wrapper_sends_at_once(library: str, clock: FakeClock) -> None:
    inner = ScriptedCredential(clock=clock)

    async def main() -> str:
        async with wrapper_for(inner, clock) as wrapper:
            await wrapper.prefetch(SCOPE)
            transport = ScriptedTransport()
            pipeline = AsyncPipeline(transport, policies=[AsyncBearerTokenCredentialPolicy(wrapper, SCOPE)])
            await pipeline.run(HttpRequest("GET", "https://vault.example.test/secrets/a"))
            return str(transport.seen[-1][1])

    assert run(library, main) == "Bearer token-1"
    assert len(inner.calls) == 1


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_policy_and_a_provider_on_the_wrapper_share_its_engine(library: str, clock: FakeClock) -> None:
    inner = ScriptedCredential(clock=clock)

    async def main() -> str:
        async with wrapper_for(inner, clock) as wrapper:
            policy: Any = bgrefresh_policy.AsyncBackgroundRefreshTokenPolicy(wrapper, SCOPE)
            assert policy._credential is inner
            assert policy._shared is wrapper._shared
            await wrapper.prefetch(SCOPE)
            token: str = await bgrefresh_policy.aio.get_bearer_token_provider(wrapper, SCOPE)()
            return token

    assert run(library, main) == "token-1"
    assert len(inner.calls) == 1


def test_close_closes_the_wrapped_credential_after_cancelling_its_refreshes(clock: FakeClock) -> None:
    closed: list[str] = []

    class Closing(ScriptedCredential):
        async def close(self) -> None:
            closed.append(f"inner, {self.cancelled} cancelled")

    inner = Closing(clock=clock)

    async def main() -> None:
        wrapper = wrapper_for(inner, clock)
        await wrapper.get_token_info(SCOPE)
        clock.advance(PRIME_AGE)
        inner.gate = asyncio.Event()  # never opened: close() must cancel it
        await wrapper.get_token_info(SCOPE)
        await turns("asyncio")
        await wrapper.close()
        assert wrapper.closed

    run("asyncio", main)
    assert closed == ["inner, 1 cancelled"]


def test_close_cancels_the_refresh_of_a_provider_built_on_the_wrapper_before_closing_the_credential(
    clock: FakeClock,
) -> None:
    closed: list[str] = []

    class Closing(ScriptedCredential):
        async def close(self) -> None:
            closed.append(f"inner, {self.cancelled} cancelled")

    inner = Closing(clock=clock)

    async def main() -> None:
        wrapper = wrapper_for(inner, clock)
        provider = bgrefresh_policy.aio.get_bearer_token_provider(wrapper, SCOPE)  # has no close() of its own
        assert await provider() == "token-1"
        clock.advance(PRIME_AGE)
        inner.gate = asyncio.Event()  # never opened: the wrapper's close() must cancel it
        assert await provider() == "token-1"  # the provider's background refresh, held
        await turns("asyncio")
        assert len(inner.calls) == 2
        await wrapper.close()

    run("asyncio", main)
    assert closed == ["inner, 1 cancelled"]


def test_the_wrapper_is_azure_cores_async_credential_for_a_type_checker_too(clock: FakeClock) -> None:
    """mypy checks the two assignments: azure-core's protocols give ``__aexit__`` defaults, as the wrapper must."""
    wrapper = bgrefresh_policy.aio.BackgroundRefreshCredential(ScriptedCredential(clock=clock))
    as_credential: AsyncTokenCredential = wrapper
    as_token_info: AsyncSupportsTokenInfo = wrapper
    assert isinstance(as_credential, AsyncTokenCredential)
    assert isinstance(as_token_info, AsyncSupportsTokenInfo)
    run("asyncio", as_credential.__aexit__)  # with no arguments, as the protocol allows
    assert wrapper.closed


def test_the_sync_wrapper_is_refused_by_the_async_faces(clock: FakeClock) -> None:
    from tests.support import SyncScriptedCredential

    sync_wrapper = bgrefresh_policy.BackgroundRefreshCredential(SyncScriptedCredential(clock=clock))
    with pytest.raises(TypeError, match=r"bgrefresh_policy\.aio"):
        bgrefresh_policy.AsyncBackgroundRefreshTokenPolicy(sync_wrapper, SCOPE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="already"):
        bgrefresh_policy.aio.BackgroundRefreshCredential(sync_wrapper)  # type: ignore[arg-type]
