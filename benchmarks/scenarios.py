"""The four measurements of issue 4, each run for azure-core's policy and ours in one process."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import tracemalloc
from collections.abc import Iterable
from typing import Any

import aiohttp
import time_machine
from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import HttpRequest

from bgrefresh_policy._demo.report import percentile

from .harness import POLICIES, LoopbackService, NoopTransport, SlowCredential


def latency_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"p50": percentile(ms, 0.5), "p99": percentile(ms, 0.99), "max": max(ms)}


async def _burst(pipeline: AsyncPipeline[Any, Any], url: str, size: int) -> list[float]:
    async def one() -> float:
        start = time.perf_counter()
        response = await pipeline.run(HttpRequest("GET", url), enforce_https=False)
        assert response.http_response.status_code == 200
        return time.perf_counter() - start

    return list(await asyncio.gather(*(one() for _ in range(size))))


async def refresh_burst(*, transport_kind: str, refresh_latency: float, burst: int, repeats: int) -> dict[str, Any]:
    """Scenarios 1 and 2: a burst of concurrent requests when the token is due, and the floor when it is not.

    The token is 200 s from expiry (due under azure-core's rule whatever its jitter) for the
    refresh case, 3600 s for the floor. The credential takes ``refresh_latency`` to answer. Each
    case runs ``repeats`` times, floor and refresh alternating; the medians are reported, since
    on a shared two-core machine one aiohttp burst's p99 moves by several milliseconds.
    """
    runs: dict[str, list[dict[str, float]]] = {}
    async with LoopbackService() as service, aiohttp.ClientSession() as session:
        url = service.url if transport_kind == "aiohttp" else "http://bench.invalid/resource"
        for _ in range(repeats):
            for name, make in POLICIES.items():
                for case, lifetime in (("floor", 3600.0), ("refresh", 200.0)):
                    credential = SlowCredential(lifetime=lifetime)
                    policy = make(credential)
                    transport: Any = (
                        AioHttpTransport(session=session, session_owner=False)
                        if transport_kind == "aiohttp"
                        else NoopTransport()
                    )
                    pipeline: AsyncPipeline[Any, Any] = AsyncPipeline(transport, policies=[policy])
                    await _burst(pipeline, url, 10)  # the first token, connections warmed up
                    credential.latency, credential.lifetime = refresh_latency, 3600.0
                    calls_before = credential.calls
                    latencies = await _burst(pipeline, url, burst)
                    await asyncio.sleep(refresh_latency + 0.05)  # let a background refresh land before counting
                    row = {**latency_ms(latencies), "credential_calls": float(credential.calls - calls_before)}
                    runs.setdefault(f"{name}/{case}", []).append(row)
                    if hasattr(policy, "close"):
                        await policy.close()
    return summarise_bursts(runs, POLICIES)


def summarise_bursts(runs: dict[str, list[dict[str, float]]], names: Iterable[str]) -> dict[str, Any]:
    """Medians of repeated burst runs keyed ``policy/case``; the most credential calls in one run; the
    p99 the refresh added over the floor, and how much the floor's p99 moved between runs (noise)."""
    results: dict[str, Any] = {
        key: {field: statistics.median(run[field] for run in rows) for field in rows[0]} for key, rows in runs.items()
    }
    for key in runs:
        results[key]["credential_calls"] = int(max(run["credential_calls"] for run in runs[key]))
    for name in names:
        results[f"{name}/added_p99_ms"] = results[f"{name}/refresh"]["p99"] - results[f"{name}/floor"]["p99"]
        floors = [run["p99"] for run in runs[f"{name}/floor"]]
        results[f"{name}/floor_p99_spread_ms"] = max(floors) - min(floors)
    return results


async def many_cycles(*, requests: int, cycles: int) -> dict[str, Any]:
    """Scenario 4: ``requests`` across ``cycles`` compressed refresh cycles, the wall clock moved by time-machine.

    Tokens live 400 s and each cycle moves the clock 201 s on, so the token issued in the previous
    cycle has 199 s left: due under azure-core's rule whatever its jitter, and above ``min_validity``.
    Each cycle therefore needs exactly one credential call. Memory is traced across the whole run, and
    its growth is taken between the tenth and the last cycle, after warm-up.
    """
    per_cycle = requests // cycles
    warm = max(1, cycles // 10)  # fewer than ten cycles (a smoke run): growth from the first
    results: dict[str, Any] = {}
    for name, make in POLICIES.items():
        with time_machine.travel(time.time(), tick=False) as traveller:  # asyncio's monotonic clock runs on
            credential = SlowCredential(lifetime=400.0)
            policy = make(credential)
            pipeline: AsyncPipeline[Any, Any] = AsyncPipeline(NoopTransport(), policies=[policy])
            url = "https://bench.invalid/resource"
            await _burst(pipeline, url, 1)
            gc.collect()
            tracemalloc.start()
            memory_at: dict[int, int] = {}
            for cycle in range(1, cycles + 1):
                traveller.shift(201.0)
                await _burst(pipeline, url, per_cycle)
                await asyncio.sleep(0)  # a background refresh finishes here
                if cycle in (warm, cycles):
                    gc.collect()
                    memory_at[cycle] = tracemalloc.get_traced_memory()[0]
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            live_tasks = len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])
            results[name] = {
                "requests": per_cycle * cycles,
                "cycles": cycles,
                "credential_calls": credential.calls - 1,
                "peak_memory_kib": peak / 1024,
                "memory_growth_kib": (memory_at[cycles] - memory_at[warm]) / 1024,
                "live_tasks_at_end": live_tasks,
            }
            if hasattr(policy, "close"):
                await policy.close()
    return results


async def clients_on_one_credential(*, clients: int, cycles: int) -> dict[str, Any]:
    """Token requests per refresh cycle when ``clients`` pipelines (one per SDK client) share one credential.

    Each client has its own policy, as SDK clients do; every cycle moves the wall clock until the
    token is due (as in :func:`many_cycles`) and sends one request through every client at once.
    azure-core's policies each refresh their own copy of the same token; ours share it.
    """
    results: dict[str, Any] = {}
    url = "https://bench.invalid/resource"
    for name, make in POLICIES.items():
        with time_machine.travel(time.time(), tick=False) as traveller:
            credential = SlowCredential(lifetime=400.0, latency=0.01)
            policies = [make(credential) for _ in range(clients)]
            pipelines = [AsyncPipeline(NoopTransport(), policies=[policy]) for policy in policies]
            per_cycle = []
            for _ in range(cycles + 1):  # the first cycle gets the first tokens
                before = credential.calls
                await asyncio.gather(*(_burst(pipeline, url, 1) for pipeline in pipelines))
                for policy in policies:
                    if hasattr(policy, "wait_for_refreshes"):  # ours: the background refresh ends in the cycle
                        await policy.wait_for_refreshes()
                per_cycle.append(credential.calls - before)
                traveller.shift(201.0)
            results[name] = {"first": per_cycle[0], "per_cycle": statistics.median(per_cycle[1:])}
    return results
