"""bgrefresh_policy.testing.AsyncFakeCredential, on asyncio and on trio.

Each test is one coroutine run under both libraries, with a hang guard; order and gates, never timing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from bgrefresh_policy.aio import BackgroundRefreshCredential
from bgrefresh_policy.testing import DUE, FRESH, AsyncFakeCredential, FakeCall
from tests.credential.test_async_credential import LIBRARIES, gather, run, turns
from tests.support import HANG_GUARD, FakeClock, Threads, eventually

SCOPE = "https://vault.azure.net/.default"


@pytest.mark.parametrize("library", LIBRARIES)
def test_tokens_and_records(library: str) -> None:
    clock = FakeClock()
    credential = AsyncFakeCredential(lifetime=DUE, refresh_in=100, clock=clock)

    async def main() -> None:
        info = await credential.get_token_info(SCOPE, options={"claims": "c"})
        assert (info.token, info.expires_on, info.refresh_on) == ("fake-token-1", clock.now + DUE, clock.now + 100)
        token = await credential.get_token(SCOPE, tenant_id="t", enable_cae=True)
        assert type(token) is AccessToken
        assert token.token == "fake-token-2"
        async with credential:
            pass

    run(library, main)
    assert credential.calls == [FakeCall((SCOPE,), claims="c"), FakeCall((SCOPE,), tenant_id="t", enable_cae=True)]
    assert credential.closed


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_held_call_waits_until_released(library: str) -> None:
    credential = AsyncFakeCredential()

    async def main() -> list[Any]:
        credential.hold()

        async def release_once_held() -> None:
            await credential.wait_for_calls(2)
            await turns(library)
            assert credential.waiting == 2  # both callers still wait at the gate
            credential.release()

        async def call() -> str:
            return (await credential.get_token_info(SCOPE)).token

        return await gather(library, [call, call, release_once_held])

    assert sorted(run(library, main)[:2]) == ["fake-token-1", "fake-token-2"]
    assert credential.waiting == 0


@pytest.mark.parametrize("library", LIBRARIES)
def test_fail_and_succeed(library: str) -> None:
    credential = AsyncFakeCredential()
    error = ClientAuthenticationError("the token endpoint said no")

    async def main() -> str:
        credential.fail(error)
        with pytest.raises(ClientAuthenticationError) as raised:
            await credential.get_token(SCOPE)
        assert raised.value is error
        credential.succeed()
        return (await credential.get_token(SCOPE)).token

    assert run(library, main) == "fake-token-1"


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_hung_call_ends_when_cancelled_or_released(library: str) -> None:
    credential = AsyncFakeCredential()

    async def main() -> None:
        credential.hang()
        if library == "trio":
            with trio.move_on_after(0) as scope:  # cancelled at its first wait: no timer runs out
                await credential.get_token_info(SCOPE)
            assert scope.cancelled_caught
        else:
            task = asyncio.create_task(credential.get_token_info(SCOPE))
            await credential.wait_for_calls(1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert (credential.cancelled, credential.waiting) == (1, 0)

        async def release_once_waiting() -> None:
            await credential.wait_for_calls(2)
            credential.release()

        hung, _ = await gather(library, [lambda: credential.get_token_info(SCOPE), release_once_waiting])
        assert isinstance(hung, TimeoutError)

    run(library, main)
    assert credential.issued == []


@pytest.mark.parametrize("library", LIBRARIES)
def test_release_from_another_thread_wakes_the_loop(library: str) -> None:
    credential = AsyncFakeCredential()
    credential.hold()

    def release_once_waiting(_: int) -> None:
        eventually(lambda: credential.waiting == 1)
        credential.release()
        # The loop had nothing else to do: it was asleep, and only the release can wake it (well
        # before the run's own hang guard would).
        eventually(lambda: credential.issued, timeout=HANG_GUARD / 3)

    releaser = Threads(1, release_once_waiting)

    async def main() -> str:
        return (await credential.get_token(SCOPE)).token

    assert run(library, main) == "fake-token-1"
    releaser.results()


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_wrapper_returns_a_due_token_while_the_fake_holds_its_one_refresh_open(library: str) -> None:
    credential = AsyncFakeCredential(lifetime=DUE)

    async def main() -> list[str]:
        async with BackgroundRefreshCredential(credential) as wrapper:
            seen = [(await wrapper.get_token(SCOPE)).token]
            credential.hold()
            seen += [(await wrapper.get_token(SCOPE)).token for _ in range(3)]  # returned while held
            await credential.wait_for_calls(2)
            assert credential.waiting == 1
            credential.issue(lifetime=FRESH)
            credential.release()
            await wrapper.wait_for_refreshes()
            seen.append((await wrapper.get_token(SCOPE)).token)
            return seen

    assert run(library, main) == ["fake-token-1"] * 4 + ["fake-token-2"]
    assert credential.call_count == 2
    assert credential.closed
