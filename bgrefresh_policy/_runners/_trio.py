"""The policy's refreshes under trio: one system task per refresh, owned by this runner."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import trio

from .._outcome import (
    RETRY,
    Fetch,
    Finish,
    RefreshAbandoned,
    RefreshCancelled,
    RefreshTimeoutError,
    Verdict,
    record_outcome,
)
from ._flights import without

if TYPE_CHECKING:
    from ._protocols import Owner

__all__ = ["TrioFlight", "TrioRunner"]


class TrioFlight:
    """A refresh in a trio run that requests can wait on without owning it."""

    __slots__ = ("done", "handle", "owner", "task", "verdict")

    def __init__(self, owner: Owner) -> None:
        self.owner = owner  # the policy that started it, whose close() cancels it
        self.task: trio.lowlevel.Task | None = None  # its system task, once it runs
        self.verdict: Verdict = RETRY
        self.handle = trio.CancelScope()  # close() cancels it
        self.done = trio.Event()  # set once the verdict is


class TrioRunner:
    """Runs the refreshes that the policies sharing a credential start in one ``trio.run``.

    System tasks are not tied to any request's cancel scope, which is what a shared refresh
    needs; trio cancels them when the run ends, and :meth:`aclose` does so earlier. Used only
    from the run's thread, so its dicts and sets need no lock.
    """

    def __init__(self) -> None:
        # Guards nothing of ours: azure-core's policy exposes a per-run lock as _lock, and
        # subclasses written for it take it around their own token handling.
        self.lock = trio.Lock()
        # Refreshes requests can join, by flight key; a flight leaves when it ends.
        self.flights: dict[Hashable, TrioFlight] = {}
        # Flights not yet done, in start order; their handle is the cancel scope close() cancels.
        self._running: dict[TrioFlight, None] = {}
        # Idle-refresh timers (refresh_when_idle), one per owner and key: each a system task.
        # The owner is held weakly: a policy dropped without close() is not kept alive by its timer.
        self._timers: dict[tuple[int, Hashable], tuple[weakref.ref[Owner], trio.CancelScope, trio.Event]] = {}

    def alive(self) -> bool:
        return True

    def start(
        self, flight_key: Hashable, fetch: Fetch, finish: Finish, *, timeout: float | None, name: str, owner: Owner
    ) -> TrioFlight:
        """Start a refresh as a system task and make it joinable under ``flight_key``.

        The arguments are :meth:`Runner.start <bgrefresh_policy._runners._protocols.Runner.start>`'s.
        """
        flight = TrioFlight(owner)
        try:
            trio.lowlevel.spawn_system_task(self._run, flight_key, flight, fetch, finish, timeout, name=name)
        except RuntimeError:  # the run is ending: record it, so the running mark is cleared
            finish(None, RefreshAbandoned("the trio run is ending")).told()
            raise
        # The task runs only once the caller yields, so registering after the spawn is in time.
        self.flights[flight_key] = flight
        self._running[flight] = None
        return flight

    async def _run(
        self, flight_key: Hashable, flight: TrioFlight, fetch: Fetch, finish: Finish, limit: float | None
    ) -> None:
        result: Any = None
        # Stays so if trio.Cancelled from the run ending gets through.
        error: BaseException | None = RefreshAbandoned("the trio run ended with the token refresh running")
        flight.task = trio.lowlevel.current_task()
        try:
            with flight.handle:
                with trio.move_on_after(math.inf if limit is None else limit) as deadline:
                    result = await fetch()
                    error = None
                if deadline.cancelled_caught:
                    error = RefreshTimeoutError(f"token refresh did not finish within refresh_timeout={limit}s")
            if flight.handle.cancelled_caught:
                error = RefreshCancelled()  # close()
        except trio.Cancelled:  # the run is ending; trio needs its Cancelled back
            raise
        except BaseException as exc:  # noqa: BLE001 - whatever the credential raises (KeyboardInterrupt
            # too) is the refresh's outcome, re-raised by the waiters: anything escaping a system task
            # would crash the whole trio run with TrioInternalError.
            error = exc
        finally:
            self.flights = without(self.flights, flight_key, flight)
            self._running.pop(flight, None)
            recorded, _ = record_outcome(finish, result, error)  # the waiters get a recording error
            flight.verdict = recorded.verdict
            flight.done.set()
            recorded.told()  # the flight is settled: a callback may close, wait or request again

    async def wait(self, flight: TrioFlight) -> Verdict:
        """Wait for the refresh; cancelling the waiter leaves the refresh running.

        :param flight: the flight.
        :return: its verdict.
        :rtype: Verdict
        """
        await flight.done.wait()
        return flight.verdict

    async def drain(self) -> None:
        """Wait until no refresh is running; the caller's cancellation leaves them running."""
        me = trio.lowlevel.current_task()  # a refresh waiting (its credential, say) never waits for itself
        while others := [flight for flight in self._running if flight.task is not me]:
            await others[0].done.wait()

    def schedule(self, owner: Owner, key: Hashable, delay: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` in ``delay`` seconds, from a system task, replacing ``owner``'s timer for ``key``."""
        slot = (id(owner), key)
        old = self._timers.pop(slot, None)
        if old is not None:
            old[1].cancel()
        scope, ended = trio.CancelScope(), trio.Event()
        self._timers[slot] = (weakref.ref(owner), scope, ended)
        trio.lowlevel.spawn_system_task(self._wait_then, slot, scope, ended, max(0.0, delay), callback)

    async def _wait_then(
        self,
        slot: tuple[int, Hashable],
        scope: trio.CancelScope,
        ended: trio.Event,
        delay: float,
        callback: Callable[[], None],
    ) -> None:
        try:
            with scope:
                await trio.sleep(delay)
                if self._timers.get(slot, (None, None))[1] is scope:
                    del self._timers[slot]
                callback()
        finally:
            ended.set()

    async def aclose(self, owner: Owner) -> None:
        """Cancel every refresh and timer ``owner`` started and wait for all of them to end."""
        timers = [(slot, entry) for slot, entry in self._timers.items() if entry[0]() is owner]
        for slot, (_, scope, _) in timers:
            scope.cancel()
            del self._timers[slot]
        for _, (_, _, ended) in timers:
            await ended.wait()
        me = trio.lowlevel.current_task()  # closing from inside its own refresh: that one ends on its own
        flights = [flight for flight in self._running if flight.owner is owner and flight.task is not me]
        for flight in flights:
            flight.handle.cancel()
        for flight in flights:
            await flight.done.wait()

    def cancel_threadsafe(self, owner: Owner) -> None:
        """Nothing to do from outside the run: trio cancels system tasks when its run ends."""

    def abandon(self) -> None:
        """Nothing to do: a finished run has concluded every refresh it cancelled."""
