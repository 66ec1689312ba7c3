"""An ``asyncio.run`` that ends with a background refresh pending leaves nothing behind for the next run."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.support import FakeClock, ScriptedCredential, bearer, make_request, refresh_begins
from tests.unit.conftest import make_policy


def test_the_next_run_starts_its_own_background_refresh_and_nothing_warns(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)

    async def first_run() -> None:
        await policy.on_request(make_request())
        clock.advance(3400)
        credential.gate = asyncio.Event()  # this loop's: the refresh is still pending as the run ends
        await policy.on_request(make_request())
        await refresh_begins()

    async def next_run() -> tuple[str, bool, Any]:
        gate = credential.gate = asyncio.Event()
        request = make_request()
        await policy.on_request(request)  # attaches the old token while its own refresh is held open
        await refresh_begins()
        held = not gate.is_set() and len(credential.calls) == 3
        gate.set()
        await policy.wait_for_refreshes()
        later = make_request()
        await policy.on_request(later)
        return bearer(request), held, bearer(later)

    with caplog.at_level(logging.DEBUG, logger="bgrefresh_policy"):
        asyncio.run(first_run())
        clock.advance(30)  # the abandoned refresh counted as one attempt: past its retry_delay
        attached, held, later = asyncio.run(next_run())
    assert (attached, held, later) == ("Bearer token-1", True, "Bearer token-3")
    assert credential.cancelled == 1  # the first run's refresh was cancelled as its loop ended
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
