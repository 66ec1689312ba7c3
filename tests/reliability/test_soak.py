"""A compressed-time soak: many token lifetimes of concurrent requests through the real client and transport.

Hour-long tokens, as Entra ID issues them; a clock task moves the wall clock 100 s ahead every
0.25 s, so a token lives about 9 s of real time and is refreshed in the background each time.
``BGREFRESH_SOAK_SECONDS`` sets the length (CI: 6 s; on demand, e.g. 60 or more).
"""

from __future__ import annotations

import asyncio
import gc
import os
import ssl
import time
import tracemalloc
from pathlib import Path

import aiohttp
import pytest
import time_machine
from azure.core.pipeline.transport import AioHttpTransport

import bgrefresh_policy
from tests.emulator.server import Emulator
from tests.integration.conftest import arm_client, background_policy, make_due, secret_credential
from tests.reliability.conftest import SOAK_FIGURES

pytestmark = [pytest.mark.integration, pytest.mark.soak]

SECONDS = float(os.environ.get("BGREFRESH_SOAK_SECONDS", "6"))
WORKERS = 24
OUR_CODE = str(Path(bgrefresh_policy.__file__).parent)


def _ours(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes allocated from this package's own code and still alive."""
    return sum(
        stat.size for stat in snapshot.filter_traces([tracemalloc.Filter(True, OUR_CODE + "/*")]).statistics("filename")
    )


def _outside_the_emulator(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes alive in the process, less the emulator's own records (it keeps every token it saw)."""
    emulator = str(Path(__file__).resolve().parents[1] / "emulator") + "/*"
    return sum(
        stat.size for stat in snapshot.filter_traces([tracemalloc.Filter(False, emulator)]).statistics("filename")
    )


def _client_tasks() -> int:
    """Live tasks, not counting the emulator's per-connection server tasks."""
    return sum(1 for task in asyncio.all_tasks() if "RequestHandler.start" not in repr(task.get_coro()))


async def test_soak(emulator: Emulator, wall_clock: time_machine.Traveller) -> None:
    failures: list[str] = []
    done = 0
    # One TLS context and session for the client and the credential: with connection_verify=<path>,
    # azure-core builds a new context per request and aiohttp opens a new connection for each,
    # which would measure connection churn instead of the policy.
    tls = ssl.create_default_context(cafile=emulator.ca_path)
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session,
        secret_credential(emulator, transport=AioHttpTransport(session=session, session_owner=False)) as credential,
        background_policy(credential) as policy,
        arm_client(
            emulator, credential, policy, transport=AioHttpTransport(session=session, session_owner=False)
        ) as client,
    ):

        async def worker(stop: asyncio.Event) -> None:
            nonlocal done
            while not stop.is_set():
                try:
                    group = await client.resource_groups.get("rg-alpha")
                    assert group.name == "rg-alpha"
                    done += 1
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    failures.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.01)

        async def clock(stop: asyncio.Event) -> None:
            while not stop.is_set():
                await asyncio.sleep(0.25)
                wall_clock.shift(100)

        async def run(seconds: float) -> tuple[int, int, int]:
            """Load for ``seconds``, stop, settle; then (live tasks, this package's bytes, all bytes)."""
            stop = asyncio.Event()
            running = [asyncio.create_task(worker(stop)) for _ in range(WORKERS)]
            running.append(asyncio.create_task(clock(stop)))
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*running)
            await policy.wait_for_refreshes()
            gc.collect()
            snapshot = tracemalloc.take_snapshot()
            return _client_tasks(), _ours(snapshot), _outside_the_emulator(snapshot)

        # Warm: the first token, and one connection per worker (with the server's task for each).
        await asyncio.gather(*(client.resource_groups.get("rg-alpha") for _ in range(WORKERS)))
        make_due(wall_clock, emulator, left=600)  # the first refresh comes about a second in
        tokens_at_start = emulator.tokens.requests
        started = time.monotonic()
        tracemalloc.start()
        # Two halves: the first reaches a steady state, the second must not grow past it.
        tasks_mid, ours_mid, total_mid = await run(SECONDS / 2)
        tasks_end, ours_end, total_end = await run(SECONDS / 2)
        tracemalloc.stop()
        elapsed = time.monotonic() - started
        refreshes = emulator.tokens.requests - tokens_at_start
    SOAK_FIGURES.append(
        f"{elapsed:.0f} s, {WORKERS} concurrent workers: {done} requests, {len(failures)} failed, "
        f"{refreshes} token refreshes, {emulator.arm.unauthorized} rejected by ARM; at half time and at the end: "
        f"live tasks {tasks_mid} -> {tasks_end}, this package's live memory {ours_mid / 1024:.1f} -> "
        f"{ours_end / 1024:.1f} KiB, all traced memory but the emulator's {total_mid / 1024:.0f} -> "
        f"{total_end / 1024:.0f} KiB"
    )
    assert failures == []
    assert emulator.arm.unauthorized == 0
    assert refreshes >= max(1, int(SECONDS / 9) - 1)  # the run crossed token lifetimes
    assert tasks_end == tasks_mid
    # A leak of even one small object per request would be tens of KiB by the end of the short run;
    # what moves by a few KiB is the interpreter's free lists, whose blocks stay traced to us.
    assert ours_end - ours_mid < 16 * 1024
    assert total_end - total_mid < 256 * 1024
