"""``wait_for_refreshes()`` on asyncio waits for refreshes that start while it waits, too."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support import FakeClock, ScriptedCredential, bearer, make_request
from tests.unit.conftest import SCOPE


async def settle() -> None:
    """Let every task of this loop that can run, run (in-memory work only: no timer is involved)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_waits_for_a_refresh_that_starts_while_it_waits(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    await policy.on_request(make_request())
    clock.advance(3400)
    first_gate = credential.gate = asyncio.Event()
    await policy.on_request(make_request())  # background refresh 1, held at the credential
    waiter = asyncio.ensure_future(policy.wait_for_refreshes())
    await settle()
    assert not waiter.done()

    second_gate = credential.gate = asyncio.Event()  # the next credential call waits on its own gate
    explicit = asyncio.ensure_future(policy.authorize_request(make_request(), SCOPE))  # refresh 2
    await settle()
    assert len(credential.calls) == 3
    first_gate.set()
    await settle()
    assert credential.finished == 2  # refresh 1 ended
    assert not waiter.done()  # refresh 2, started while it waited, still runs

    second_gate.set()
    await waiter
    assert credential.finished == 3
    await explicit
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-3"
