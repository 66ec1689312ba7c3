"""A real pre-fork server: gunicorn --preload with sync workers, the master holding a policy with a
background refresh in flight (held open by the token endpoint) and an idle timer armed.

Every worker serves requests with a token, and makes its own refresh: none waits for the master's,
which is still held when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import HANG_GUARD, eventually

pytest.importorskip("gunicorn", reason="gunicorn is in the test extra")
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="a pre-fork server needs os.fork")

_ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4


class TokenEndpoint(ThreadingHTTPServer):
    """Issues ``tok-<n>-<pid>``; the master's first token is due at once, and its second call is held."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()  # protects asked
        self.asked: list[int] = []  # the pid of each call, in order
        self.release = threading.Event()  # lets the master's held call answer
        self.master: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/token"

    def callers(self) -> set[int]:
        with self.lock:
            return set(self.asked)


class _Handler(BaseHTTPRequestHandler):
    server: TokenEndpoint

    def do_GET(self) -> None:
        pid = int(self.headers["X-Pid"])
        endpoint = self.server
        with endpoint.lock:
            endpoint.asked.append(pid)
            number = len(endpoint.asked)
            from_master = pid == endpoint.master
            first_of_master = endpoint.asked.count(pid) == 1
        if from_master and not first_of_master:
            endpoint.release.wait(HANG_GUARD * 4)  # the master's refresh, in flight while it forks
        now = time.time()
        # A worker's token lives longer than the master's, so that it is newer within the same second.
        answer: dict[str, object] = {"token": f"tok-{number}-{pid}", "expires_on": int(now + 7200)}
        if from_master:
            answer["expires_on"] = int(now + 3600)
            answer["refresh_on"] = int(now - 120)  # due at once (a jitter adds at most 60 s)
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[TokenEndpoint]:
    server = TokenEndpoint()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(HANG_GUARD)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=HANG_GUARD) as response:
        answer: dict[str, object] = json.load(response)
        return answer


def test_every_worker_serves_with_a_token_and_makes_its_own_refresh(endpoint: TokenEndpoint, tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--preload", "--workers", str(WORKERS), "--worker-class", "sync"),
            *("--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", "tests.processes.wsgi_app:app"),
        ],
        cwd=_ROOT,
        env={**os.environ, "BGREFRESH_TOKEN_URL": endpoint.url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint.master = server.pid  # python -m gunicorn: the process is the master
    try:
        # Each worker's idle timer (armed in the master, armed again in the worker) refreshes the due
        # token it inherited: a call from each worker, while the master's call is still held.
        eventually(lambda: len(endpoint.callers() - {server.pid}) >= WORKERS, timeout=HANG_GUARD * 2)
        workers = endpoint.callers() - {server.pid}
        own_token: dict[int, str] = {}

        def ask(_: int) -> dict[str, object]:
            return _get(f"http://127.0.0.1:{port}/")

        deadline = time.monotonic() + HANG_GUARD * 2
        with ThreadPoolExecutor(WORKERS * 2) as pool:
            while set(own_token) != workers:
                assert time.monotonic() < deadline, f"not every worker answered with its own token: {own_token}"
                for answer in pool.map(ask, range(WORKERS * 4)):
                    pid, header = int(str(answer["pid"])), str(answer["authorization"])
                    assert header.startswith("Bearer tok-")  # every request got a token
                    if header.endswith(f"-{pid}"):  # the token this worker's own refresh got
                        own_token[pid] = header
        assert not endpoint.release.is_set()  # the master's refresh is still held: nobody waited for it
        assert endpoint.asked.count(server.pid) == 2  # its first token, and the held refresh
    finally:
        server.send_signal(signal.SIGTERM)
        endpoint.release.set()
        try:
            server.wait(HANG_GUARD)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            log.close()
    print((tmp_path / "gunicorn.log").read_text())
