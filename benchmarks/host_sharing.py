"""Section 14: worker processes on one host, with and without ``share_across_processes``.

Token requests per start-up and per refresh cycle, for 8 and 32 spawned processes that each
wrap their own credential (a sync credential asking a loopback HTTP token endpoint, which
counts the requests); and what a token call costs with the option on.

Run alone: ``python -m benchmarks.host_sharing``.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from azure.core.credentials import AccessTokenInfo, TokenRequestOptions

import bgrefresh_policy
from bgrefresh_policy._demo.processes import private_runtime

from .harness import SCOPE, TOKEN

__all__ = ["host_sharing", "print_host_sharing"]

# Seconds the token endpoint takes: the start-up requests of every process overlap, as on a real host.
_LATENCY = 0.2
_DUE_AT_ONCE = 200  # a token living this long is due at once: the next call starts a refresh


class _Endpoint(ThreadingHTTPServer):
    """Counts token requests; answers after ``_LATENCY`` with a token living ``lifetime`` seconds."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests = 0
        self.lifetime = _DUE_AT_ONCE
        self._lock = threading.Lock()

    def count(self) -> int:
        with self._lock:
            self.requests += 1
            return self.requests


class _Handler(BaseHTTPRequestHandler):
    server: _Endpoint

    def do_GET(self) -> None:
        number = self.server.count()
        time.sleep(_LATENCY)
        body = json.dumps({"token": f"{TOKEN}-{number}", "expires_on": int(time.time() + self.server.lifetime)})
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


_Self = TypeVar("_Self", bound="_Credential")


class _Credential:
    """What a sync credential has besides ``get_token_info``."""

    def close(self) -> None:
        pass

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


class _LoopbackCredential(_Credential):
    """A sync credential asking the benchmark's token endpoint."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        with urllib.request.urlopen(self.url, timeout=60) as response:
            answer = json.load(response)
        return AccessTokenInfo(answer["token"], answer["expires_on"])


def _worker(url: str, name: str | None, start: Any, cycle: Any, done: Any) -> None:
    """One process: its first token when every process is ready, then, once told, its refresh."""
    with bgrefresh_policy.BackgroundRefreshCredential(_LoopbackCredential(url), share_across_processes=name) as wrapper:
        start.wait()
        first = wrapper.get_token(SCOPE).token
        done.put(None)
        cycle.wait()
        while wrapper.get_token(SCOPE).token == first:  # due: the first call starts the background refresh
            time.sleep(0.01)
        done.put(None)


def _requests(endpoint: _Endpoint, processes: int, name: str | None) -> tuple[int, int]:
    """Token requests of ``processes`` workers: at start-up, and for one refresh of the due token."""
    context = multiprocessing.get_context("spawn")
    start, cycle, done = context.Barrier(processes + 1), context.Event(), context.Queue()
    url = f"http://127.0.0.1:{endpoint.server_address[1]}/token"
    endpoint.requests, endpoint.lifetime = 0, _DUE_AT_ONCE
    workers = [context.Process(target=_worker, args=(url, name, start, cycle, done)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    start.wait()
    for _ in workers:
        done.get(timeout=120)
    at_start = endpoint.requests
    endpoint.lifetime = 3600
    cycle.set()
    for _ in workers:
        done.get(timeout=120)
    for worker in workers:
        worker.join(60)
    return at_start, endpoint.requests - at_start


def _per_call_us(cases: dict[str, tuple[Callable[[], object], int]], rounds: int) -> dict[str, float]:
    """Per case, the median over ``rounds`` interleaved rounds of microseconds per call."""
    timings: dict[str, list[float]] = {what: [] for what in cases}
    for _ in range(rounds):
        for what, (call, calls) in cases.items():
            began = time.perf_counter()
            for _ in range(calls):
                call()
            timings[what].append((time.perf_counter() - began) / calls * 1e6)
    return {what: statistics.median(values) for what, values in timings.items()}


class _Instant(_Credential):
    """A credential that answers at once with a token newer than the last: every call is a refresh."""

    def __init__(self) -> None:
        self.expires_on = int(time.time()) + 3600

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        self.expires_on += 1
        return AccessTokenInfo(TOKEN, self.expires_on)


def _call_costs(rounds: int) -> dict[str, float]:
    """Microseconds: a cached token with the option off and on (the same path), and what the
    engine's credential call costs with the option on when another process stored a newer token
    (a read), and when this process refreshes for the host (lock, two reads, write)."""
    plain = bgrefresh_policy.BackgroundRefreshCredential(_Instant())
    shared = bgrefresh_policy.BackgroundRefreshCredential(_Instant(), share_across_processes="benchmark")
    plain.get_token(SCOPE)
    shared.get_token(SCOPE)
    host = shared._credential  # what the engine calls
    other = bgrefresh_policy.BackgroundRefreshCredential(_Instant(), share_across_processes="benchmark")._credential

    def served_from_store() -> None:
        other._held.clear()  # another process's token is newer than the one this one holds
        other.get_token_info(SCOPE)

    cases: dict[str, tuple[Callable[[], object], int]] = {
        "get_token, option off": (lambda: plain.get_token(SCOPE), 20_000),
        "get_token, option on": (lambda: shared.get_token(SCOPE), 20_000),
        "credential call served from the store": (served_from_store, 500),
        "credential call refreshing for the host, less the credential": (lambda: host.get_token_info(SCOPE), 500),
    }
    return _per_call_us(cases, rounds)


def host_sharing(*, process_counts: tuple[int, ...] = (8, 32), rounds: int = 9) -> dict[str, Any]:
    """The section's figures: token requests per start-up and per refresh, and the costs of a call."""
    report: dict[str, Any] = {"requests": {}}
    endpoint = _Endpoint()
    server = threading.Thread(target=endpoint.serve_forever, daemon=True)
    server.start()
    try:
        with private_runtime():
            for processes in process_counts:
                for option, name in (("off", None), ("on", f"benchmark-{processes}")):
                    at_start, per_refresh = _requests(endpoint, processes, name)
                    report["requests"][f"{processes}/{option}"] = {"start_up": at_start, "refresh": per_refresh}
            report["call_us"] = _call_costs(rounds)
    finally:
        endpoint.shutdown()
        endpoint.server_close()
    return report


def print_host_sharing(report: dict[str, Any]) -> None:
    print(
        "\n14. worker processes on one host, each with its own credential: token requests per start-up and per "
        f"refresh cycle (token endpoint answering in {_LATENCY} s), and the cost of a token call"
    )
    print(f"{'processes':>10}{'share_across_processes':>24}{'start-up':>10}{'refresh':>9}")
    for key, row in report["requests"].items():
        processes, option = key.split("/")
        print(f"{processes:>10}{option:>24}{row['start_up']:>10}{row['refresh']:>9}")
    for what, us in report["call_us"].items():
        print(f"{what:<64}{us:>8.2f} us")


if __name__ == "__main__":
    print_host_sharing(host_sharing())
