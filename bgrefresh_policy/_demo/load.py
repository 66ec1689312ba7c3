"""Open-loop request load through an azure-core pipeline, timed per request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.pipeline import AsyncPipeline
from azure.core.rest import HttpRequest

__all__ = ["Run", "Sample", "drive"]


@dataclass(frozen=True)
class Sample:
    """One request: when it was issued (seconds since the run began), how long it took, its status."""

    start: float
    latency: float
    status: int  # 0: raised


@dataclass(frozen=True)
class Run:
    """What one policy's run gave: its requests, its token requests, and when each token arrived.

    :ivar samples: one per request.
    :ivar int token_requests: token requests the endpoint served during the run.
    :ivar arrivals: seconds since the run began at which a credential call returned a token
        (negative: before the run, the first token).
    """

    samples: list[Sample]
    token_requests: int
    arrivals: list[float]


async def _one(pipeline: AsyncPipeline[Any, Any], url: str, gate: asyncio.Semaphore, t0: float) -> Sample:
    loop = asyncio.get_running_loop()
    issued = loop.time()
    async with gate:
        try:
            response = await pipeline.run(HttpRequest("GET", url), enforce_https=False)
            status = int(response.http_response.status_code)
        except Exception:  # noqa: BLE001 - the demo counts failures, whatever they are
            status = 0
    return Sample(issued - t0, loop.time() - issued, status)


async def drive(
    pipeline: AsyncPipeline[Any, Any],
    url: str,
    *,
    rate: float,
    concurrency: int,
    duration: float,
    progress: Callable[[float, list[Sample]], None],
    t0: float | None = None,
) -> list[Sample]:
    """Issue ``rate`` requests a second for ``duration`` seconds, at most ``concurrency`` at once.

    Requests are issued on schedule whether or not earlier ones have finished (open loop), so a
    stall shows up as latency, the way a service's callers would see it.

    :keyword t0: the loop time the run counts from; now, if None.
    :return: one sample per request, in order of completion.
    """
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    samples: list[Sample] = []
    tasks: set[asyncio.Task[Sample]] = set()
    t0 = loop.time() if t0 is None else t0
    next_progress = 0.0
    for n in range(int(rate * duration)):
        delay = t0 + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_one(pipeline, url, gate, t0))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(lambda done: samples.append(done.result()))
        if loop.time() - t0 >= next_progress:
            progress(loop.time() - t0, samples)
            next_progress += 0.25
    await asyncio.gather(*tasks)
    progress(duration, samples)
    return samples
