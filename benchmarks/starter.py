"""What starting a background refresh costs the request that starts it, with thousands of requests in flight.

A burst of requests goes through an ``AsyncPipeline`` whose transport holds every request until
the whole burst has reached it, so that they are all in flight together. The token is due and
the credential takes ``refresh_latency``. Policies on each side of the authentication policy
stamp each request as it enters and leaves it; the figure is the time the first request to find
the token due (the one that starts the refresh) spends inside the authentication policy, and
the median of the others for scale. Each burst runs ``repeats`` times: with 10,000 tasks alive, a
garbage collection can land inside any one request, the starter's included, so the median of the
starter's times is its cost and the max shows such a pause.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from azure.core.pipeline import AsyncPipeline, PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.rest import HttpRequest

from .harness import POLICIES, NoopTransport, SlowCredential


class _Stamp(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Records, per request, when it passed this point of the pipeline."""

    def __init__(self, field: str) -> None:
        self.field = field

    def on_request(self, request: PipelineRequest[Any]) -> None:
        request.context[self.field] = time.perf_counter()


class _HoldUntilAll(NoopTransport):
    """Answers 200 once ``size`` requests have arrived: the whole burst is in flight at once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.arrived = 0
        self.everyone: asyncio.Event = asyncio.Event()

    async def send(self, request: Any, **kwargs: Any) -> Any:
        self.arrived += 1
        if self.arrived >= self.size:
            self.everyone.set()
        await self.everyone.wait()
        return await super().send(request, **kwargs)


async def starter_cost(*, in_flight: int, refresh_latency: float, repeats: int) -> dict[str, Any]:
    """The starter's (median and max over ``repeats`` bursts) and the others' time inside the
    authentication policy, in ms, per policy."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in POLICIES}
    for _ in range(repeats):
        for name, row in (await _one_burst(in_flight=in_flight, refresh_latency=refresh_latency)).items():
            runs[name].append(row)
    return {
        name: {
            "starter_ms": statistics.median(starter for starter, _ in rows),
            "starter_max_ms": max(starter for starter, _ in rows),
            "others_median_ms": statistics.median(others for _, others in rows),
        }
        for name, rows in runs.items()
    }


async def _one_burst(*, in_flight: int, refresh_latency: float) -> dict[str, tuple[float, float]]:
    results: dict[str, tuple[float, float]] = {}
    for name, make in POLICIES.items():
        credential = SlowCredential(lifetime=200.0)  # due under azure-core's rule, whatever the jitter
        policy = make(credential)
        transport = _HoldUntilAll(1)
        pipeline: AsyncPipeline[Any, Any] = AsyncPipeline(
            transport, policies=[_Stamp("entered"), policy, _Stamp("left")]
        )
        await pipeline.run(HttpRequest("GET", "https://bench.invalid/resource"))  # the first token
        credential.latency, credential.lifetime = refresh_latency, 3600.0
        transport.size, transport.arrived, transport.everyone = in_flight, 0, asyncio.Event()
        responses = await asyncio.gather(
            *(pipeline.run(HttpRequest("GET", "https://bench.invalid/resource")) for _ in range(in_flight))
        )
        inside = sorted((r.context["entered"], (r.context["left"] - r.context["entered"]) * 1000) for r in responses)
        starter, others = inside[0][1], [ms for _, ms in inside[1:]]
        results[name] = (starter, statistics.median(others))
        if hasattr(policy, "close"):
            await policy.close()
    return results
