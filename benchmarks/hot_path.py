"""The cost of a request with a valid token: ours against azure-core's unmodified policies, as ratios.

Every measurement runs azure-core's plain ``AsyncBearerTokenCredentialPolicy`` /
``BearerTokenCredentialPolicy`` and ours on the same ~2 KB token, in batches interleaved round by
round (ABAB, then BABA), and reports the minimum, median and maximum of the per-round ratios
ours / azure-core's: a machine busy with other work slows both sides of a round alike. Each timed
batch starts after a full garbage collection and runs with the cyclic collector off.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
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

from .harness import SCOPE, TOKEN, NoopTransport, ok_response
from .sync_scenarios import SyncNoopTransport


class TokenCredential:
    """Answers at once with the 2 KB token, valid an hour; ``get_token_info`` sync or async.

    Always the same token object: a policy's memory is then what it keeps, not the token's bytes.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.token = AccessTokenInfo(TOKEN, int(time.time() + 3600))

    def _token(self) -> AccessTokenInfo:
        self.calls += 1
        return self.token


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


# The same, on one credential each run shares.
ASYNC_ON: dict[str, Callable[[Any], Any]] = {
    "azure-core": lambda credential: AsyncBearerTokenCredentialPolicy(credential, SCOPE),
    "bgrefresh": lambda credential: AsyncBackgroundRefreshTokenPolicy(credential, SCOPE),
}
SYNC_ON: dict[str, Callable[[Any], Any]] = {
    "azure-core": lambda credential: BearerTokenCredentialPolicy(credential, SCOPE),
    "bgrefresh": lambda credential: BackgroundRefreshTokenPolicy(credential, SCOPE),
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


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """A timed batch with the cyclic collector off, after a full collection: a collection's pause,
    set off by whichever side allocated last, then falls on neither. Left out with it: each side's
    share of the collector's work."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def ratios(
    samples: dict[str, list[float]], *, subject: str = "bgrefresh", baseline: str = "azure-core"
) -> dict[str, Any]:
    """Per-round ratios ``subject`` / ``baseline`` (bgrefresh / azure-core unless told), summarised with
    each side's median ns (and the floor's, when there is one)."""
    per_round = [ours / theirs for ours, theirs in zip(samples[subject], samples[baseline], strict=True)]
    summary: dict[str, Any] = {
        "ns": {name: statistics.median(values) for name, values in samples.items()},
        "ratio": {"min": min(per_round), "median": statistics.median(per_round), "max": max(per_round)},
    }
    return summary


def timed_async(call: Callable[[], Awaitable[Any]], batch: int) -> Callable[[], Awaitable[float]]:
    """A timer of ``batch`` awaited calls: ns per call, the collector off (see :func:`_no_collection`)."""

    async def timed() -> float:
        with _no_collection():
            start = time.perf_counter()
            for _ in range(batch):
                await call()
            return (time.perf_counter() - start) / batch * 1e9

    return timed


def timed_sync(call: Callable[[], Any], batch: int) -> Callable[[], float]:
    """A timer of ``batch`` calls: ns per call, the collector off (see :func:`_no_collection`)."""

    def timed() -> float:
        with _no_collection():
            start = time.perf_counter()
            for _ in range(batch):
                call()
            return (time.perf_counter() - start) / batch * 1e9

    return timed


async def interleave_async(timers: dict[str, Callable[[], Awaitable[float]]], rounds: int) -> dict[str, list[float]]:
    names = list(timers)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            samples[name].append(await timers[name]())
    return samples


def interleave_sync(timers: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    names = list(timers)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            samples[name].append(timers[name]())
    return samples


async def run_async(pipeline: AsyncPipeline[Any, Any]) -> Any:
    return await pipeline.run(_http_request())


def run_sync(pipeline: Pipeline[Any, Any]) -> Any:
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

    results: dict[str, Any] = {}
    for what in ("on_request", "send"):
        timers = {name: timed_async(partial(getattr(p, what), request), batch) for name, p in policies.items()}
        results[what] = ratios(await interleave_async(timers, rounds))
    run_timers = {name: timed_async(partial(run_async, p), batch) for name, p in pipelines.items()}
    results["pipeline"] = ratios(await interleave_async(run_timers, rounds))
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

    def threaded(pipeline: Pipeline[Any, Any]) -> Callable[[], float]:
        per_thread = max(1, batch // threads)
        pool = ThreadPoolExecutor(threads)

        def timed() -> float:
            barrier = threading.Barrier(threads + 1)

            def work() -> None:
                barrier.wait()
                for _ in range(per_thread):
                    run_sync(pipeline)

            with _no_collection():
                futures = [pool.submit(work) for _ in range(threads)]
                # Timed from before the release: once released, this thread may not run again until
                # the workers are done with the GIL.
                start = time.perf_counter()
                barrier.wait()
                for future in futures:
                    future.result()
                return (time.perf_counter() - start) / (per_thread * threads) * 1e9

        return timed

    results: dict[str, Any] = {}
    for what in ("on_request", "send"):
        sync_timers = {name: timed_sync(partial(getattr(p, what), request), batch) for name, p in policies.items()}
        results[what] = ratios(interleave_sync(sync_timers, rounds))
    run_timers = {name: timed_sync(partial(run_sync, p), batch) for name, p in pipelines.items()}
    results["pipeline"] = ratios(interleave_sync(run_timers, rounds))
    results[f"pipeline, {threads} threads"] = ratios(
        interleave_sync({name: threaded(p) for name, p in pipelines.items()}, max(4, rounds // 4))
    )
    for policy in [*policies.values(), *in_pipelines.values()]:
        if hasattr(policy, "close"):
            policy.close()
    return results


async def memory_per_policy(*, count: int) -> dict[str, Any]:
    """Bytes per policy once a first request has fetched and cached its token, as in real use.

    The credential's token objects are made once and shared, so their bytes count for no policy.
    Two cases: every policy on one credential (many clients of one application; ours then share
    one token), and each on a credential of its own (the credentials made beforehand, so that
    their own bytes count for neither side). What is left is what each policy keeps: its own
    fields, its cached token's bookkeeping, and whatever its first refresh left behind.
    """
    results: dict[str, float] = {}
    for kind, makers, credential_class in (
        ("async", ASYNC_ON, AsyncTokenCredential),
        ("sync", SYNC_ON, SyncTokenCredential),
    ):
        for case, name, make in ((case, name, make) for case in ("", "own ") for name, make in makers.items()):
            request = _request()
            shared = credential_class()
            credentials = [credential_class() for _ in range(count)] if case else [shared] * count
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            policies = [make(credential) for credential in credentials]
            if kind == "async":
                await _first_requests(policies, request)
            else:
                for policy in policies:
                    policy.on_request(request)
            gc.collect()
            results[f"{case}{kind}/{name}"] = (tracemalloc.get_traced_memory()[0] - before) / count
            tracemalloc.stop()
            del policies, credentials
    kinds = ("async", "sync", "own async", "own sync")
    return {
        "bytes": results,
        "ratio": {kind: results[f"{kind}/bgrefresh"] / results[f"{kind}/azure-core"] for kind in kinds},
    }


async def _first_requests(policies: list[Any], request: PipelineRequest[HttpRequest]) -> None:
    for policy in policies:
        await policy.on_request(request)
