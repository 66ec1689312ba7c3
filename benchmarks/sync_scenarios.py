"""The sync pair: azure-core's BearerTokenCredentialPolicy and BackgroundRefreshTokenPolicy, many threads."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any

from azure.core.credentials import AccessTokenInfo, TokenRequestOptions
from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.core.pipeline.transport import HttpResponse, HttpTransport, RequestsTransport
from azure.core.rest import HttpRequest

from bgrefresh_policy import BackgroundRefreshTokenPolicy

from .harness import SCOPE, OkResponse
from .scenarios import latency_ms, summarise_bursts

SYNC_POLICIES: dict[str, Callable[[Any], Any]] = {
    "azure-core": lambda credential: BearerTokenCredentialPolicy(credential, SCOPE),
    "bgrefresh": lambda credential: BackgroundRefreshTokenPolicy(credential, SCOPE),
}


@dataclass
class BlockingCredential:
    """A sync credential that blocks ``latency`` seconds, then gives a token valid ``lifetime`` seconds."""

    latency: float = 0.0
    lifetime: float = 3600.0
    calls: int = 0
    # Protects calls: threads call the credential at once.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        with self._lock:
            self.calls += 1
            number = self.calls
        time.sleep(self.latency)
        return AccessTokenInfo(f"bench-{number}", int(time.time() + self.lifetime))

    def close(self) -> None:
        pass

    def __enter__(self) -> BlockingCredential:
        return self

    def __exit__(self, *args: object) -> None:
        pass


class _Ok(OkResponse, HttpResponse):
    pass


class SyncNoopTransport(HttpTransport):  # type: ignore[type-arg]
    """Answers 200 at once, so only the pipeline and the policy are measured."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        return _Ok(request)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> SyncNoopTransport:
        return self

    def __exit__(self, *args: object) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real service
    # One buffered write per response and no Nagle: else each answer waits ~40 ms for a delayed ACK.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        body = b'{"value": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    # A backlog for every thread at once: with the default 5, connections wait for a 1 s SYN retry.
    request_queue_size = 128
    daemon_threads = True


def _serve(ready: Connection) -> None:
    server = _Server(("127.0.0.1", 0), _Handler)
    ready.send(server.server_address[1])
    server.serve_forever()


@contextmanager
def loopback_http() -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 answering every GET with 200; yields its URL.

    It runs in a process of its own, so its threads do not compete for this one's GIL.
    """
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child,), name="bench-http", daemon=True)
    process.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("the loopback HTTP server did not start")
        yield f"http://127.0.0.1:{parent.recv()}/resource"
    finally:
        process.terminate()
        process.join()


def _threads_burst(pipeline: Pipeline[Any, Any], url: str, threads: int, per_thread: int) -> list[float]:
    """``threads`` threads released at once, each sending ``per_thread`` requests; every request's latency."""
    barrier = threading.Barrier(threads)

    def worker(_: int) -> list[float]:
        barrier.wait()
        latencies = []
        for _ in range(per_thread):
            start = time.perf_counter()
            response = pipeline.run(HttpRequest("GET", url), enforce_https=False)
            assert response.http_response.status_code == 200
            latencies.append(time.perf_counter() - start)
        return latencies

    with ThreadPoolExecutor(threads) as pool:
        return [latency for rows in pool.map(worker, range(threads)) for latency in rows]


def sync_refresh_burst(
    *, transport_kind: str, refresh_latency: float, threads: int, per_thread: int, repeats: int
) -> dict[str, Any]:
    """Sync scenario 1: ``threads`` threads sending requests when the token is due, and the floor when it is not.

    Each policy gets its first token (valid an hour) during a warm-up burst. For the refresh case
    that token is then replaced by one with 200 s left (due whatever the jitter); the credential
    blocks ``refresh_latency`` seconds. Medians of ``repeats`` alternating runs.

    :raises RuntimeError: a refresh run made no credential call (it would have measured the floor).
    """
    runs: dict[str, list[dict[str, float]]] = {}
    with loopback_http() as loopback:
        url = loopback if transport_kind == "requests" else "http://bench.invalid/resource"
        for _ in range(repeats):
            for name, make in SYNC_POLICIES.items():
                for case in ("floor", "refresh"):
                    credential = BlockingCredential()
                    policy = make(credential)
                    transport: Any = RequestsTransport() if transport_kind == "requests" else SyncNoopTransport()
                    with Pipeline(transport, policies=[policy]) as pipeline:
                        _threads_burst(pipeline, url, threads, 1)  # the first token, connections warmed up
                        if case == "refresh":
                            # azure-core's attribute, and our view of it: the cached token, now due.
                            policy._token = AccessTokenInfo("bench-due", int(time.time() + 200))
                        credential.latency = refresh_latency
                        calls_before = credential.calls
                        latencies = _threads_burst(pipeline, url, threads, per_thread)
                        if hasattr(policy, "wait_for_refreshes"):
                            policy.wait_for_refreshes()  # a background refresh lands before counting
                            policy.close()
                    calls = credential.calls - calls_before
                    if case == "refresh" and calls == 0:
                        raise RuntimeError(f"{name}: the burst did not cross a refresh")
                    runs.setdefault(f"{name}/{case}", []).append({**latency_ms(latencies), "credential_calls": calls})
    return summarise_bursts(runs, SYNC_POLICIES)
