"""share_across_processes with real processes: one token request per host, whoever asks.

Every worker is a real process (multiprocessing spawn, or fork from a parent that built the
wrapper) with azure-identity's real ClientSecretCredential, against the loopback Entra ID
emulator over HTTPS, which counts token requests and holds them open on demand. Order, never
timing: "shared one call" is eight workers that have all arrived at ``get_token`` while the one
request is held; "kept answering" is every worker answering while the refresh is held.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.server import Emulator
from tests.emulator.threaded import EmulatorThread
from tests.processes.host_worker import WorkerConfig, fork_parent, serve
from tests.support import HANG_GUARD, eventually

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the host store is for POSIX hosts")

WORKERS = 8
DUE_AT_ONCE = 200  # seconds: a token living this long is due at once (300 s window less at most 60 s of jitter)


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    # The store goes where every process of the test looks: a private directory of its own.
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    with EmulatorThread(tmp_path) as running:
        yield running
        running.tokens.release()


class Workers:
    """Worker processes, each driven over its own pipe."""

    def __init__(self) -> None:
        self.pipes: list[Any] = []
        self.processes: list[Any] = []

    def spawn(self, config: WorkerConfig, count: int) -> list[Any]:
        context = multiprocessing.get_context("spawn")
        pipes = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=serve, args=(config, theirs), daemon=True)
            process.start()
            self.processes.append(process)
            pipes.append(ours)
        return self._ready(pipes)

    def fork(self, config: WorkerConfig, count: int, *, control: Any = None) -> list[Any]:
        """``count`` workers forked by one spawned parent, from the wrapper it built; with ``control``
        (a pipe's other end), the parent answers on it until told to ``fork``."""
        context = multiprocessing.get_context("spawn")
        ends = [context.Pipe() for _ in range(count)]
        # Not a daemon: a daemon may not have children.
        parent = context.Process(target=fork_parent, args=(config, [theirs for _, theirs in ends], control))
        parent.start()
        self.processes.append(parent)
        return ends

    def forked(self, config: WorkerConfig, count: int) -> list[Any]:
        return self._ready([ours for ours, _ in self.fork(config, count)])

    def _ready(self, pipes: list[Any]) -> list[Any]:
        for pipe in pipes:
            assert pipe.poll(HANG_GUARD * 2), "a worker did not start"
            kind, _ = pipe.recv()
            assert kind == "ready"
        self.pipes.extend(pipes)
        return pipes

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):  # a worker the test killed
                pipe.send("stop")
        for process in self.processes:
            process.join(HANG_GUARD)
            if process.is_alive():
                process.kill()
                process.join()


@pytest.fixture
def workers() -> Iterator[Workers]:
    running = Workers()
    yield running
    running.close()


def _receive(pipe: Any) -> Any:
    assert pipe.poll(HANG_GUARD * 2), "a worker did not answer"
    return pipe.recv()


def _all_arrive_then_answer(emulator: Emulator, pipes: list[Any], *, held: int) -> list[str]:
    """Send ``go`` to every worker with token requests held; once all have arrived at ``get_token``
    and ``held`` requests wait at the endpoint, let the endpoint answer; the tokens they return."""
    emulator.tokens.hold()
    for pipe in pipes:
        pipe.send("go")
    arrivals = {_receive(pipe) for pipe in pipes}
    assert len(arrivals) == len(pipes)
    eventually(lambda: emulator.tokens.held == held, timeout=HANG_GUARD * 2)
    emulator.tokens.release()
    return [_receive(pipe) for pipe in pipes]


def _config(emulator: Emulator, name: str | None, **options: Any) -> WorkerConfig:
    return WorkerConfig(emulator.authority, emulator.ca_path, name, **options)


@pytest.mark.parametrize("start", ["spawn", "spawn, asyncio", "fork"])
def test_eight_processes_starting_together_make_one_token_request(
    emulator: Emulator, workers: Workers, start: str
) -> None:
    config = _config(emulator, "payments", asynchronous=start.endswith("asyncio"))
    pipes = (workers.forked if start == "fork" else workers.spawn)(config, WORKERS)
    tokens = _all_arrive_then_answer(emulator, pipes, held=1)
    assert len(set(tokens)) == 1
    assert emulator.tokens.requests == 1


@pytest.mark.parametrize("names", ["one name each", "no name"])
def test_processes_with_different_names_or_none_share_nothing(emulator: Emulator, workers: Workers, names: str) -> None:
    pipes = [
        workers.spawn(_config(emulator, f"service-{index}" if names == "one name each" else None), 1)[0]
        for index in range(WORKERS)
    ]
    # All eight requests at the endpoint at once: none waited for another's.
    tokens = _all_arrive_then_answer(emulator, pipes, held=WORKERS)
    assert len(set(tokens)) == WORKERS
    assert emulator.tokens.requests == WORKERS


def test_a_due_token_is_refreshed_once_for_the_host_while_every_process_keeps_answering(
    emulator: Emulator, workers: Workers
) -> None:
    emulator.tokens.lifetime = DUE_AT_ONCE
    pipes = workers.spawn(_config(emulator, "payments", refresh_timeout=HANG_GUARD * 4), WORKERS)
    (first,) = set(_all_arrive_then_answer(emulator, pipes, held=1))
    emulator.tokens.lifetime = 3600  # the refreshed token is not due
    emulator.tokens.hold()
    # Each worker finds its token due, answers with it, and starts a background refresh; one of
    # them reaches the endpoint, which holds it, and the others wait for it on the host lock.
    for pipe in pipes:
        pipe.send("token")
    assert [_receive(pipe) for pipe in pipes] == [first] * WORKERS
    eventually(lambda: emulator.tokens.held == 1)
    for pipe in pipes:  # still answering, the refresh still held
        pipe.send("token")
    assert [_receive(pipe) for pipe in pipes] == [first] * WORKERS
    assert emulator.tokens.held == 1
    emulator.tokens.release()
    refreshed: set[str] = set()
    for pipe in pipes:
        token = first
        while token == first:  # the worker's background refresh ends on its own
            pipe.send("token")
            token = _receive(pipe)
        refreshed.add(token)
    assert len(refreshed) == 1
    assert emulator.tokens.requests == 2  # one at start-up, one refresh for the host


def test_another_process_takes_over_a_refresh_whose_process_was_killed(emulator: Emulator, workers: Workers) -> None:
    emulator.tokens.lifetime = DUE_AT_ONCE
    short = 10.0  # a lock left held by the dead process would time B's refresh out
    (killed,) = workers.spawn(_config(emulator, "payments"), 1)
    killed.send("go")
    _receive(killed)
    first = _receive(killed)
    emulator.tokens.lifetime = 3600
    emulator.tokens.hold()
    killed.send("token")  # due: its background refresh takes the host lock, and the endpoint holds it
    assert _receive(killed) == first
    eventually(lambda: emulator.tokens.held == 1)
    (taker,) = workers.spawn(_config(emulator, "payments", refresh_timeout=short), 1)
    taker.send("go")
    _receive(taker)
    assert _receive(taker) == first  # from the host store: no request of its own
    taker.send("token")  # due: its background refresh waits on the host lock
    assert _receive(taker) == first
    os.kill(workers.processes[0].pid, signal.SIGKILL)
    workers.processes[0].join(HANG_GUARD)
    emulator.tokens.release()
    token = first
    while token == first:
        taker.send("token")
        token = _receive(taker)
    taker.send("events")
    assert _receive(taker) == ["inline:new_token", "background:new_token"]  # not timed out
    assert emulator.tokens.requests == 3  # start-up, the killed refresh, the one taken over


def test_forked_workers_answer_at_once_and_take_the_refresh_their_parent_had_in_flight(
    emulator: Emulator, workers: Workers
) -> None:
    emulator.tokens.lifetime = DUE_AT_ONCE
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    ends = workers.fork(_config(emulator, "payments", refresh_timeout=HANG_GUARD * 4), WORKERS, control=theirs)
    (parent,) = workers._ready([ours])
    parent.send("token")
    first = _receive(parent)
    emulator.tokens.lifetime = 3600
    emulator.tokens.hold()
    parent.send("token")  # due: its background refresh takes the host lock, and the endpoint holds it
    assert _receive(parent) == first
    eventually(lambda: emulator.tokens.held == 1)
    parent.send("fork")  # with the refresh in flight, on another thread of the parent
    pipes = workers._ready([pipe for pipe, _ in ends])
    for pipe in pipes:  # the token they inherited, at once: none waits for the parent's refresh
        pipe.send("token")
    assert [_receive(pipe) for pipe in pipes] == [first] * WORKERS
    assert emulator.tokens.held == 1
    emulator.tokens.release()
    refreshed: set[str] = set()
    for pipe in pipes:
        token = first
        while token == first:  # each child's own refresh waited on the host lock, and took the parent's token
            pipe.send("token")
            token = _receive(pipe)
        refreshed.add(token)
    assert len(refreshed) == 1
    assert emulator.tokens.requests == 2


def test_the_benchmark_counts_one_request_per_start_up_and_per_refresh_with_the_option() -> None:
    from benchmarks.host_sharing import host_sharing

    report = host_sharing(process_counts=(3,), rounds=1)
    assert report["requests"] == {
        "3/off": {"start_up": 3, "refresh": 3},
        "3/on": {"start_up": 1, "refresh": 1},
    }
    assert set(report["call_us"]) >= {"get_token, option off", "get_token, option on"}
