"""Serves one of the service examples in ``docs/examples`` for ``test_service_examples``, in a process of its own.

``python -m tests.integration.service_runner {aiohttp|fastapi} FD`` serves on the listening socket
``FD`` (bound by the test) with aiohttp's ``web.run_app`` or a real uvicorn server, which both
shut down on SIGTERM. The wall clock starts at the real time and moves only when the test says.
Lines on stdin, each answered with one line on stdout:

- ``shift SECONDS``: move the wall clock (time-machine; the monotonic clock, and so the event
  loop's timers, is untouched); answers ``shifted``.
- ``snapshot``: hold on to every aiohttp ``ClientSession`` alive now (the credential's and the
  clients'); answers ``sessions N``.

Once the server has returned, prints ``report {json}``: whether the wrapper and the OpenAI client
are closed, and how many of the snapshot's sessions are still open.
"""

from __future__ import annotations

import gc
import importlib
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import time_machine

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def serve_aiohttp(fd: int) -> Any:
    """Serve the aiohttp example until SIGTERM; its ``AzureServices``."""
    from aiohttp import web

    example = importlib.import_module("service_aiohttp")
    app = example.create_app()
    web.run_app(app, sock=socket.socket(fileno=fd), print=None, access_log=None, shutdown_timeout=5)
    return app[example.AZURE]


def serve_fastapi(fd: int) -> Any:
    """Serve the FastAPI example with uvicorn until SIGTERM; its ``AzureServices``."""
    import uvicorn

    example = importlib.import_module("service_fastapi")

    # uvicorn raises the signal it shut down for again once done, for the default action (the
    # process dies of it): a handler that does nothing lets this process report first.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.Server(uvicorn.Config(example.app, fd=fd, log_level="warning", lifespan="on")).run()
    return example.app.state.azure


SERVERS: dict[str, Callable[[int], Any]] = {"aiohttp": serve_aiohttp, "fastapi": serve_fastapi}


def follow_commands(clock: time_machine.Traveller, held: list[aiohttp.ClientSession]) -> None:
    """Carry out the test's commands from stdin, until it closes."""
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "shift":
            clock.shift(float(argument))
            say("shifted")
        elif command == "snapshot":
            held.extend(o for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession))
            say(f"sessions {len(held)}")


def main() -> None:
    example, fd = sys.argv[1], int(sys.argv[2])
    sys.path.insert(0, str(EXAMPLES))
    held: list[aiohttp.ClientSession] = []
    with time_machine.travel(time.time(), tick=True) as clock:
        threading.Thread(target=follow_commands, args=(clock, held), daemon=True).start()
        services = SERVERS[example](fd)
    report = {
        "credential_closed": services.credential.closed,
        "openai_closed": services.openai.is_closed(),
        "sessions": len(held),
        "open_sessions": sum(not session.closed for session in held),
    }
    say(f"report {json.dumps(report)}")


if __name__ == "__main__":
    main()
