"""Cancellation storms: random in-flight requests cancelled during inline and background refreshes."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import time_machine

from tests.emulator.server import Emulator
from tests.integration.conftest import arm_client, background_policy, make_due, secret_credential
from tests.support import HANG_GUARD, FakeClock, ScriptedCredential, bearer, eventually_async, make_request
from tests.unit.conftest import make_policy


async def _storm(policy: Any, credential: ScriptedCredential, rng: random.Random, size: int) -> list[Any]:
    """``size`` requests while the credential is held; a random third cancelled at random moments."""
    credential.gate = asyncio.Event()
    requests = [make_request() for _ in range(size)]
    tasks = [asyncio.ensure_future(policy.on_request(r)) for r in requests]
    doomed = rng.sample(range(size), size // 3)
    for index in doomed:
        for _ in range(rng.randrange(3)):
            await asyncio.sleep(0)
        tasks[index].cancel()
    credential.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    credential.gate = None
    survivors = [requests[i] for i, result in enumerate(results) if not isinstance(result, BaseException)]
    for i, result in enumerate(results):
        if isinstance(result, BaseException):
            assert isinstance(result, asyncio.CancelledError)
            assert i in doomed
    return survivors


@pytest.mark.parametrize("seed", range(5))
async def test_storm_during_inline_and_background_refreshes(seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)
    survivors = await _storm(policy, credential, rng, 300)  # no token yet: every request waits
    assert {bearer(r) for r in survivors} == {"Bearer token-1"}
    assert len(credential.calls) == 1
    for _ in range(5):
        current = f"Bearer token-{len(credential.calls)}"
        clock.advance(3400)  # due with 200 s left: refreshed in the background
        survivors = await _storm(policy, credential, rng, 300)
        await policy.wait_for_refreshes()
        assert {bearer(r) for r in survivors} == {current}  # still valid: attached without waiting
        clock.advance(3600)  # expired: every request waits for an inline refresh
        calls_before = len(credential.calls)
        survivors = await _storm(policy, credential, rng, 300)
        assert len(credential.calls) == calls_before + 1  # one credential call for the whole storm
        assert {bearer(r) for r in survivors} == {f"Bearer token-{calls_before + 1}"}
    assert len(credential.calls) == 11  # the first token, then one background and one inline per cycle
    assert credential.cancelled == 0  # no cancellation ever reached a shared refresh
    await policy.close()


@pytest.mark.integration
async def test_storm_through_the_real_client(emulator: Emulator, wall_clock: time_machine.Traveller) -> None:
    rng = random.Random(7)
    async with (
        secret_credential(emulator) as credential,
        background_policy(credential) as policy,
        arm_client(emulator, credential, policy) as client,
    ):
        for cycle in range(3):
            if cycle:
                make_due(wall_clock, emulator)
            before = emulator.tokens.requests
            # The refresh (inline at first, then in the background) cannot end before the storm has.
            emulator.tokens.hold()
            tasks = [asyncio.ensure_future(client.resource_groups.get("rg-alpha")) for _ in range(120)]
            for index in rng.sample(range(120), 40):  # each cancelled a random number of loop turns on
                for _ in range(rng.randrange(20)):
                    await asyncio.sleep(0)
                tasks[index].cancel()
            await eventually_async(lambda: emulator.tokens.held == 1)  # the refresh's token request, held
            emulator.tokens.release()
            results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), HANG_GUARD)
            await policy.wait_for_refreshes()
            completed = [r for r in results if not isinstance(r, BaseException)]
            assert all(isinstance(r, asyncio.CancelledError) for r in results if isinstance(r, BaseException))
            assert all(group.name == "rg-alpha" for group in completed)
            assert len(completed) >= 80
            assert emulator.tokens.requests - before == 1, f"cycle {cycle}"
    assert emulator.arm.unauthorized == 0
