"""The emulator on an event loop of its own thread, for tests of sync clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .server import Emulator

__all__ = ["EmulatorThread", "ServicesThread"]

T = TypeVar("T")


async def _cancel_the_rest() -> None:
    """Cancel and await what still runs (a handler left hanging by a fault, a connection being
    accepted), as asyncio.run does."""
    rest = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


class EmulatorThread:
    """Serves an :class:`Emulator` from a background thread while the test's threads block on it.

    ``emulator`` is the same object the async tests use; its counters and fault switches are
    plain attributes, and :meth:`call` runs its coroutines (going offline, say) on its loop.
    """

    def __init__(self, workdir: Path) -> None:
        self.emulator = Emulator(workdir)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="emulator", daemon=True)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coroutine`` on the emulator's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def __enter__(self) -> Emulator:
        self._thread.start()
        self.call(self.emulator.start())
        return self.emulator

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            self.call(self.emulator.stop(abort=True))
            self.call(_cancel_the_rest())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()


class ServicesThread:
    """Serves the twelve loopback services (:class:`~tests.emulator.services.Services`) from a
    background thread, for the sync clients of those families."""

    def __init__(self, workdir: Path) -> None:
        from .services import Services

        self.services = Services(workdir)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="services", daemon=True)

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def __enter__(self) -> Any:
        self._thread.start()
        self._call(self.services.start())
        return self.services

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._call(self.services.stop(abort=True))
            self._call(_cancel_the_rest())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()
