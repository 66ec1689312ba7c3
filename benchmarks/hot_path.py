"""The cost of a request with a valid token: ours against azure-core's unmodified policies, as ratios.

Every measurement runs azure-core's plain ``AsyncBearerTokenCredentialPolicy`` /
``BearerTokenCredentialPolicy`` and ours on the same ~2 KB token, in batches interleaved round by
round (ABAB, then BABA), and reports the minimum, median and maximum of the per-round ratios
ours / azure-core's: a machine busy with other work slows both sides of a round alike.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from azure.core.credentials import AccessTokenInfo, TokenRequestOptions
from azure.core.pipeline import AsyncPipeline, Pipeline, PipelineContext, PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import (
    AsyncBearerTokenCredentialPolicy,
    AsyncHTTPPolicy,
    BearerTokenCredentialPolicy,
    HTTPPolicy,
)
from azure.core.rest import HttpRequest

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy

from .harness import SCOPE, NoopTransport, ok_response
from .sync_scenarios import SyncNoopTransport

# A realistic Entra ID access token is a JWT of 1.5-2.5 KB.
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + "x" * 2000


class TokenCredential:
    """Answers at once with the 2 KB token, valid an hour; ``get_token_info`` sync or async."""

    def __init__(self) -> None:
        self.calls = 0

    def _token(self) -> AccessTokenInfo:
        self.calls += 1
        return AccessTokenInfo(TOKEN, int(time.time() + 3600))


class AsyncTokenCredential(TokenCredential):
    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return self._token()

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> AsyncTokenCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


class SyncTokenCredential(TokenCredential):
    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return self._token()

    def close(self) -> None:
        pass

    def __enter__(self) -> SyncTokenCredential:
        return self

    def __exit__(self, *args: object) -> None:
        pass


ASYNC: dict[str, Callable[[], Any]] = {
    "azure-core": lambda: AsyncBearerTokenCredentialPolicy(AsyncTokenCredential(), SCOPE),
    "bgrefresh": lambda: AsyncBackgroundRefreshTokenPolicy(AsyncTokenCredential(), SCOPE),
}
SYNC: dict[str, Callable[[], Any]] = {
    "azure-core": lambda: BearerTokenCredentialPolicy(SyncTokenCredential(), SCOPE),
    "bgrefresh": lambda: BackgroundRefreshTokenPolicy(SyncTokenCredential(), SCOPE),
}


class _Answer(AsyncHTTPPolicy):  # type: ignore[type-arg]
    """The end of a policy's ``send()``: a response at once, no transport."""

    def __init__(self, response: Any) -> None:
        super().__init__()
        self.response = response

    async def send(self, request: Any) -> Any:
        return self.response


class _SyncAnswer(HTTPPolicy):  # type: ignore[type-arg]
    def __init__(self, response: Any) -> None:
        super().__init__()
        self.response = response

    def send(self, request: Any) -> Any:
        return self.response


def _http_request() -> HttpRequest:
    return HttpRequest("GET", "https://bench.invalid/resource")


def _request() -> PipelineRequest[HttpRequest]:
    return PipelineRequest(HttpRequest("GET", "https://bench.invalid/resource"), PipelineContext(None))


def ratios(samples: dict[str, list[float]]) -> dict[str, Any]:
    """Per-round ratios bgrefresh / azure-core (and bgrefresh / floor when there is one), summarised."""
    per_round = [ours / theirs for ours, theirs in zip(samples["bgrefresh"], samples["azure-core"], strict=True)]
    summary: dict[str, Any] = {
        "ns": {name: statistics.median(values) for name, values in samples.items()},
        "ratio": {"min": min(per_round), "median": statistics.median(per_round), "max": max(per_round)},
    }
    return summary


async def _interleave_async(timers: dict[str, Callable[[], Awaitable[float]]], rounds: int) -> dict[str, list[float]]:
    names = list(timers)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            samples[name].append(await timers[name]())
    return samples


def _interleave_sync(timers: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    names = list(timers)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            samples[name].append(timers[name]())
    return samples


async def _run_async(pipeline: AsyncPipeline[Any, Any]) -> Any:
    return await pipeline.run(_http_request())


def _run_sync(pipeline: Pipeline[Any, Any]) -> Any:
    return pipeline.run(_http_request())


async def async_hot_path(*, rounds: int, batch: int) -> dict[str, Any]:
    """``on_request``, ``send()`` and ``AsyncPipeline.run`` with a valid token, ns per request."""
    policies: dict[str, Any] = {name: make() for name, make in ASYNC.items()}
    request = _request()
    response: Any = PipelineResponse(request.http_request, ok_response(request.http_request), request.context)
    for policy in policies.values():
        policy.next = _Answer(response)
        await policy.send(request)  # the first token
    in_pipelines: dict[str, Any] = {name: make() for name, make in ASYNC.items()}
    pipelines: dict[str, AsyncPipeline[Any, Any]] = {
        name: AsyncPipeline(NoopTransport(), policies=[policy]) for name, policy in in_pipelines.items()
    }
    pipelines["floor"] = AsyncPipeline(NoopTransport(), policies=[])
    for pipeline in pipelines.values():
        await pipeline.run(HttpRequest("GET", "https://bench.invalid/resource"))

    def per_request(call: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[float]]:
        async def timed() -> float:
            start = time.perf_counter()
            for _ in range(batch):
                await call()
            return (time.perf_counter() - start) / batch * 1e9

        return timed

    results: dict[str, Any] = {}
    for what in ("on_request", "send"):
        timers = {name: per_request(partial(getattr(p, what), request)) for name, p in policies.items()}
        results[what] = ratios(await _interleave_async(timers, rounds))
    run_timers = {name: per_request(partial(_run_async, p)) for name, p in pipelines.items()}
    results["pipeline"] = ratios(await _interleave_async(run_timers, rounds))
    for policy in [*policies.values(), *in_pipelines.values()]:
        if hasattr(policy, "close"):
            await policy.close()
    return results


def sync_hot_path(*, rounds: int, batch: int, threads: int) -> dict[str, Any]:
    """The same for the sync policies, and ``Pipeline.run`` from ``threads`` threads at once."""
    policies: dict[str, Any] = {name: make() for name, make in SYNC.items()}
    request = _request()
    response: Any = PipelineResponse(request.http_request, ok_response(request.http_request), request.context)
    for policy in policies.values():
        policy.next = _SyncAnswer(response)
        policy.send(request)
    in_pipelines: dict[str, Any] = {name: make() for name, make in SYNC.items()}
    pipelines: dict[str, Pipeline[Any, Any]] = {
        name: Pipeline(SyncNoopTransport(), policies=[policy]) for name, policy in in_pipelines.items()
    }
    pipelines["floor"] = Pipeline(SyncNoopTransport(), policies=[])
    for pipeline in pipelines.values():
        pipeline.run(HttpRequest("GET", "https://bench.invalid/resource"))

    def per_request(call: Callable[[], Any]) -> Callable[[], float]:
        def timed() -> float:
            start = time.perf_counter()
            for _ in range(batch):
                call()
            return (time.perf_counter() - start) / batch * 1e9

        return timed

    def threaded(pipeline: Pipeline[Any, Any]) -> Callable[[], float]:
        per_thread = max(1, batch // threads)
        pool = ThreadPoolExecutor(threads)

        def timed() -> float:
            barrier = threading.Barrier(threads + 1)

            def work() -> None:
                barrier.wait()
                for _ in range(per_thread):
                    _run_sync(pipeline)

            futures = [pool.submit(work) for _ in range(threads)]
            barrier.wait()
            start = time.perf_counter()
            for future in futures:
                future.result()
            return (time.perf_counter() - start) / (per_thread * threads) * 1e9

        return timed

    results: dict[str, Any] = {}
    for what in ("on_request", "send"):
        sync_timers = {name: per_request(partial(getattr(p, what), request)) for name, p in policies.items()}
        results[what] = ratios(_interleave_sync(sync_timers, rounds))
    run_timers = {name: per_request(partial(_run_sync, p)) for name, p in pipelines.items()}
    results["pipeline"] = ratios(_interleave_sync(run_timers, rounds))
    results[f"pipeline, {threads} threads"] = ratios(
        _interleave_sync({name: threaded(p) for name, p in pipelines.items()}, max(4, rounds // 4))
    )
    for policy in [*policies.values(), *in_pipelines.values()]:
        if hasattr(policy, "close"):
            policy.close()
    return results


def memory_per_policy(*, count: int) -> dict[str, Any]:
    """Bytes per policy: built, and then holding one token (the credential's token object not counted)."""
    results: dict[str, dict[str, float]] = {}
    token = AccessTokenInfo(TOKEN, int(time.time() + 3600))  # one object for all: its bytes are not theirs
    for kind, makers in (("async", ASYNC), ("sync", SYNC)):
        for name, make in makers.items():
            gc.collect()
            tracemalloc.start()
            policies = [make() for _ in range(count)]
            built = tracemalloc.get_traced_memory()[0]
            for policy in policies:
                policy._token = token  # what a first request leaves behind, as each policy keeps it
            holding = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            results[f"{kind}/{name}"] = {"built": built / count, "with_token": holding / count}
            del policies
    ratio = {
        f"{kind}/{state}": results[f"{kind}/bgrefresh"][state] / results[f"{kind}/azure-core"][state]
        for kind in ("async", "sync")
        for state in ("built", "with_token")
    }
    return {"bytes": results, "ratio": ratio}
