"""What runs the policies' refreshes: one runner per event loop (asyncio, trio), and threads for the sync policy.

The runtime modules load when first used, so that ``import bgrefresh_policy`` costs neither
asyncio nor trio, and the sync policy never loads them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from ._asyncio import AsyncioRunner
    from ._protocols import Owner, Runner


__all__ = ["RunnerRegistry", "current_library"]


def current_library() -> str:
    """The async library running the caller: ``"asyncio"`` or ``"trio"``.

    :return: the library's name.
    :raises RuntimeError: no event loop runs, or another library runs it.
    """
    import sniffio

    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError as exc:
        raise RuntimeError("An asyncio or trio event loop is required.") from exc
    if library not in ("asyncio", "trio"):
        raise RuntimeError(f"bgrefresh_policy supports asyncio and trio, not {library}")
    return library


class RunnerRegistry:
    """One runner per event loop (asyncio) or per ``trio.run``.

    Locks, tasks and joinable refreshes are per loop, so a policy shared by sequential
    ``asyncio.run`` calls, or by threads that each run a loop, never touches another
    loop's objects.
    """

    __slots__ = ("_asyncio", "_lock", "_trio_var")

    def __init__(self) -> None:
        # Protects _asyncio and the creation of _trio_var against threads that each run their
        # own loop. Reads on the hot path go without it: a dict lookup is atomic, and only this
        # thread's loop can add the entry it looks for.
        self._lock = threading.Lock()
        self._asyncio: dict[asyncio.AbstractEventLoop, AsyncioRunner] = {}
        # trio.lowlevel.RunVar: per-run storage, dropped by trio when the run ends.
        self._trio_var: Any = None

    def after_fork(self) -> None:
        """In a forked child: forget every loop's runner. A loop the child goes on running gets a new one;
        the parent's tasks, if that loop still holds them, end on the old one, which nothing joins."""
        self.__init__()  # type: ignore[misc]

    def current(self) -> Runner:
        """The runner for the running loop, created on first use.

        :return: the runner.
        :raises RuntimeError: not called from asyncio or trio.
        """
        if self._library() == "trio":
            created = self._trio_runner(create=True)
            assert created is not None
            return created
        import asyncio

        from ._asyncio import AsyncioRunner

        loop = asyncio.get_running_loop()
        runner = self._asyncio.get(loop)
        if runner is None:
            with self._lock:
                dead = self._drop_dead()
                runner = self._asyncio.setdefault(loop, AsyncioRunner(loop))
            for gone in dead:
                gone.abandon()
        return runner

    def _drop_dead(self) -> list[AsyncioRunner]:
        """Forget the runners of closed loops (caller holds _lock); the caller abandons them.

        Sequential ``asyncio.run`` calls would otherwise pile up runners, and a loop closed
        with refreshes still pending would keep their running marks set for good.
        """
        dead = [runner for runner in self._asyncio.values() if not runner.alive()]
        self._asyncio = {loop: runner for loop, runner in self._asyncio.items() if runner not in dead}
        return dead

    @staticmethod
    def _library() -> str:
        return current_library()

    def _trio_runner(self, *, create: bool) -> Runner | None:
        import trio

        from ._trio import TrioRunner

        with self._lock:
            if self._trio_var is None:
                self._trio_var = trio.lowlevel.RunVar(f"bgrefresh_policy.runner.{id(self)}")
        runner: TrioRunner | None = self._trio_var.get(None)
        if runner is None and create:
            runner = TrioRunner()
            self._trio_var.set(runner)
        return runner

    def existing(self) -> Runner | None:
        """The running loop's runner if it has one; never creates one."""
        if self._library() == "trio":
            return self._trio_runner(create=False)
        import asyncio

        return self._asyncio.get(asyncio.get_running_loop())

    async def aclose(self, owner: Owner) -> None:
        """Cancel and await the refreshes ``owner`` started on this loop; ask other live loops to cancel theirs.

        A task of another loop cannot be awaited from this one, and one of a closed loop
        has nothing left to cancel.
        """
        here = self.existing()
        with self._lock:
            dead = self._drop_dead()
            others = [runner for runner in self._asyncio.values() if runner is not here]
        for runner in dead:
            runner.abandon()
        for runner in others:
            runner.cancel_threadsafe(owner)
        if here is not None:
            await here.aclose(owner)
