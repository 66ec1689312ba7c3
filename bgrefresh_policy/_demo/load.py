"""Open-loop request load through an azure-core pipeline, timed per request."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.pipeline import AsyncPipeline
from azure.core.rest import HttpRequest

__all__ = ["MOST_LATE", "Pace", "Run", "Sample", "drive"]

# Seconds after its scheduled time past which a request is skipped rather than issued: a
# generator that cannot keep up then ends on time instead of issuing its backlog for ever.
MOST_LATE = 1.0
# Seconds of lateness past which the generator counts as having fallen behind: its requests then
# queued behind a saturated event loop, which the latencies measure along with the policy.
_BEHIND = 0.05


@dataclass(frozen=True)
class Sample:
    """One request: when it was issued (seconds since the run began), how long it took, its status."""

    start: float
    latency: float
    status: int  # 0: raised


@dataclass(frozen=True)
class Pace:
    """How closely the load generator kept to its schedule.

    :ivar int planned: requests the rate and the duration asked for.
    :ivar int issued: requests issued; the others were skipped, more than :data:`MOST_LATE` late.
    :ivar float worst_lag: seconds the latest request was issued after its scheduled time.
    """

    planned: int
    issued: int
    worst_lag: float

    @property
    def skipped(self) -> int:
        """Requests not issued: their time had passed by more than :data:`MOST_LATE`."""
        return self.planned - self.issued

    @property
    def fell_behind(self) -> bool:
        """Whether requests were skipped, or issued more than 50 ms late."""
        return self.skipped > 0 or self.worst_lag > _BEHIND


@dataclass(frozen=True)
class Run:
    """What one policy's run gave: its requests, its token requests, and when each token arrived.

    :ivar samples: one per request.
    :ivar int token_requests: token requests the endpoint served during the run.
    :ivar arrivals: seconds since the run began at which a credential call returned a token
        (negative: before the run, the first token).
    :ivar pace: how closely the load kept to its schedule.
    """

    samples: list[Sample]
    token_requests: int
    arrivals: list[float]
    pace: Pace | None = None


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
) -> tuple[list[Sample], Pace]:
    """Issue ``rate`` requests a second for ``duration`` seconds, at most ``concurrency`` at once.

    Requests are issued on schedule whether or not earlier ones have finished (open loop), so a
    stall shows up as latency, the way a service's callers would see it. A generator that falls
    behind yields to the requests in flight before each one it issues late, and skips those more
    than :data:`MOST_LATE` late, so that the load ends on time at any rate.

    :keyword t0: the loop time the run counts from; now, if None.
    :return: one sample per request issued, in order of completion, and the generator's pace.
    """
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    samples: list[Sample] = []
    tasks: set[asyncio.Task[Sample]] = set()
    t0 = loop.time() if t0 is None else t0
    planned, issued, worst_lag = int(rate * duration), 0, 0.0
    next_progress, n = 0.0, 0
    while n < planned:
        scheduled = t0 + n / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        lag = loop.time() - scheduled
        if lag > MOST_LATE:
            n = min(planned, math.ceil((loop.time() - MOST_LATE - t0) * rate))
            continue
        task = asyncio.create_task(_one(pipeline, url, gate, t0))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(lambda done: samples.append(done.result()))
        issued, worst_lag, n = issued + 1, max(worst_lag, lag), n + 1
        if loop.time() - t0 >= next_progress:
            progress(loop.time() - t0, samples)
            next_progress += 0.25
    await asyncio.gather(*tasks)
    progress(duration, samples)
    return samples, Pace(planned, issued, worst_lag)
