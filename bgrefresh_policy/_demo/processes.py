"""``python -m bgrefresh_policy --processes N``: N worker processes, without and with ``share_across_processes``.

Each worker is a process of its own (multiprocessing's spawn, as uvicorn starts its workers),
with its own ``bgrefresh_policy.aio.BackgroundRefreshCredential`` on its own credential, asking
for a token at a steady rate; the token endpoint counts the requests. The workers share a
private store made for the run, in a temporary directory, not the user's runtime directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Counts", "private_runtime", "run_processes"]

# How long a worker waits for the others before giving up: a hang, not slowness.
_WAIT = 120.0


@dataclass(frozen=True)
class Counts:
    """Token requests the workers made: at start-up, and in all."""

    start_up: int
    total: int


@dataclass(frozen=True)
class _Plan:
    token_url: str
    scope: str
    name: str | None
    duration: float
    interval: float


def _worker(plan: _Plan, ready: Any, started: Any) -> None:
    asyncio.run(_work(plan, ready, started))


async def _work(plan: _Plan, ready: Any, started: Any) -> None:
    from .. import aio
    from .credential import TokenEndpointCredential

    inner = TokenEndpointCredential(plan.token_url)
    async with aio.BackgroundRefreshCredential(inner, share_across_processes=plan.name) as credential:
        credential._store.draw_jitter = lambda: 0  # the demo's compressed lifetimes (see cli._ours)
        await asyncio.to_thread(ready.wait, _WAIT)  # every worker starts at once
        await credential.get_token(plan.scope)
        started.put(os.getpid())
        end = asyncio.get_running_loop().time() + plan.duration
        while asyncio.get_running_loop().time() < end:
            await credential.get_token(plan.scope)
            await asyncio.sleep(plan.interval)


async def _run_workers(servers: Any, plan: _Plan, processes: int) -> Counts:
    context = multiprocessing.get_context("spawn")
    ready, started = context.Barrier(processes + 1), context.Queue()
    workers = [context.Process(target=_worker, args=(plan, ready, started)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    before = servers.token_requests
    await asyncio.to_thread(ready.wait, _WAIT)
    for _ in workers:
        await asyncio.to_thread(started.get, True, _WAIT)
    start_up = servers.token_requests - before
    for worker in workers:
        await asyncio.to_thread(worker.join, plan.duration + _WAIT)
    return Counts(start_up, servers.token_requests - before)


async def run_processes(
    servers: Any, token_url: str, scope: str, *, processes: int, duration: float, rate: float
) -> dict[str, Counts]:
    """Run ``processes`` workers without the option, then with it; the token requests of each run.

    :param servers: the demo's servers (``token_requests`` counts the token endpoint's requests).
    :param str token_url: the token endpoint.
    :param str scope: the scope the workers ask for.
    :keyword int processes: how many workers.
    :keyword float duration: seconds each worker asks for tokens.
    :keyword float rate: tokens asked for per second, by all workers together.
    :return: the counts, by ``"off"`` and ``"on"``.
    """
    results: dict[str, Counts] = {}
    with private_runtime():
        for option, name in (("off", None), ("on", f"bgrefresh-demo-{os.getpid()}")):
            plan = _Plan(token_url, scope, name, duration, processes / rate)
            results[option] = await _run_workers(servers, plan, processes)
    return results


@contextlib.contextmanager
def private_runtime() -> Iterator[None]:
    """A host store of the run's own: ``XDG_RUNTIME_DIR`` set to a private temporary directory, which
    the processes spawned meanwhile inherit; the user's runtime directory is left alone."""
    before = os.environ.get("XDG_RUNTIME_DIR")
    with tempfile.TemporaryDirectory() as runtime:
        os.environ["XDG_RUNTIME_DIR"] = runtime
        try:
            yield
        finally:
            if before is None:
                del os.environ["XDG_RUNTIME_DIR"]
            else:
                os.environ["XDG_RUNTIME_DIR"] = before
