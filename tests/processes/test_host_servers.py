"""share_across_processes under real pre-fork and multi-process servers: gunicorn's sync workers and uvicorn's workers.

The workers start together, each with its own credential wrapper of the same name; the token
endpoint (the loopback Entra ID emulator) holds the first token request until every worker has
arrived at its start-up ``prefetch``: all of them are then waiting, and one request serves them all.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.emulator.server import Emulator
from tests.emulator.threaded import EmulatorThread
from tests.support import HANG_GUARD, eventually

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the host store is for POSIX hosts")

_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with EmulatorThread(tmp_path) as running:
        yield running
        running.tokens.release()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=HANG_GUARD) as response:
        answer: dict[str, object] = json.load(response)
        return answer


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _tokens_by_worker(port: int, workers: int) -> dict[int, str]:
    """Ask the server until every worker has answered; each worker's token."""
    eventually(lambda: _listening(port), timeout=HANG_GUARD * 2)  # uvicorn listens once its workers started
    seen: dict[int, str] = {}
    deadline = time.monotonic() + HANG_GUARD * 2
    with ThreadPoolExecutor(workers * 2) as pool:
        while len(seen) < workers:
            assert time.monotonic() < deadline, f"only {len(seen)} of {workers} workers answered"
            for answer in pool.map(lambda _: _get(f"http://127.0.0.1:{port}/"), range(workers * 4)):
                seen[int(str(answer["pid"]))] = str(answer["token"])
    return seen


def _serve(command: Callable[[int], list[str]], emulator: Emulator, tmp_path: Path, workers: int) -> dict[int, str]:
    """Start the server with token requests held; once every worker has arrived and one request is
    held, let it through; every worker's token."""
    arrivals = tmp_path / "arrivals"
    arrivals.mkdir()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    port = _free_port()
    emulator.tokens.hold()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", *command(port)],
            cwd=_ROOT,
            env={
                **os.environ,
                "BGREFRESH_AUTHORITY": emulator.authority,
                "BGREFRESH_CA": emulator.ca_path,
                "BGREFRESH_ARRIVALS": str(arrivals),
                "XDG_RUNTIME_DIR": str(runtime),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        eventually(lambda: len(list(arrivals.iterdir())) == workers, timeout=HANG_GUARD * 4)
        eventually(lambda: emulator.tokens.held == 1, timeout=HANG_GUARD * 2)
        emulator.tokens.release()
        return _tokens_by_worker(port, workers)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(HANG_GUARD)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            print(log_path.read_text())


def test_eight_gunicorn_sync_workers_make_one_token_request(emulator: Emulator, tmp_path: Path) -> None:
    pytest.importorskip("gunicorn", reason="gunicorn is in the test extra")
    workers = 8

    def command(port: int) -> list[str]:
        return [
            *("gunicorn", "--workers", str(workers), "--worker-class", "sync", "--timeout", "120"),
            *("--config", "tests/processes/host_gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"),
            "tests.processes.host_apps:wsgi",
        ]

    tokens = _serve(command, emulator, tmp_path, workers)
    assert len(tokens) == workers
    assert len(set(tokens.values())) == 1
    assert emulator.tokens.requests == 1


def test_four_uvicorn_workers_make_one_token_request(emulator: Emulator, tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn is in the test extra")
    workers = 4

    def command(port: int) -> list[str]:
        return [
            *("uvicorn", "--workers", str(workers), "--lifespan", "on", "--host", "127.0.0.1", "--port", str(port)),
            *("--log-level", "warning", "tests.processes.host_apps:asgi"),
        ]

    tokens = _serve(command, emulator, tmp_path, workers)
    assert len(tokens) == workers
    assert len(set(tokens.values())) == 1
    assert emulator.tokens.requests == 1
