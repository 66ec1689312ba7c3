"""The policy's refresh tasks on one asyncio event loop."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import weakref
from collections.abc import Callable, Coroutine, Hashable
from typing import TYPE_CHECKING, Any

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

__all__ = ["AsyncioFlight", "AsyncioRunner"]

if sys.version_info >= (3, 11):

    def _cancel_requested(task: asyncio.Task[Any] | None) -> bool:
        return task is None or task.cancelling() > 0

    if sys.version_info >= (3, 12):

        def _create_task(
            loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Verdict], name: str
        ) -> asyncio.Task[Verdict]:
            # Eager: the credential call has begun when this returns, without the request that
            # started the refresh yielding to the loop (a whole pass of its ready queue) for it.
            return asyncio.Task(coro, loop=loop, name=name, eager_start=True)

    else:  # no eager tasks: the credential call begins on the loop's next pass

        def _create_task(
            loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Verdict], name: str
        ) -> asyncio.Task[Verdict]:
            return loop.create_task(coro, name=name)

else:  # pragma: no cover - Python 3.10 has no Task.cancelling()

    class _Task(asyncio.Task):  # type: ignore[type-arg]
        """Remembers that someone called :meth:`cancel`, which 3.10's tasks forget once it is delivered."""

        cancel_requested = False

        def cancel(self, msg: Any = None) -> bool:
            self.cancel_requested = True
            return super().cancel(msg)

    def _create_task(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Verdict], name: str
    ) -> asyncio.Task[Verdict]:
        return _Task(coro, loop=loop, name=name)

    def _cancel_requested(task: asyncio.Task[Any] | None) -> bool:
        return getattr(task, "cancel_requested", True)


class AsyncioFlight:
    """A refresh on an asyncio loop that requests can wait on without owning it.

    :param loop: the loop the refresh runs on.
    """

    __slots__ = ("closing", "concluded", "done", "handle", "owner", "timed_out", "verdict")

    def __init__(self, loop: asyncio.AbstractEventLoop, owner: Owner) -> None:
        self.owner = owner  # the policy that started it, whose close() cancels it
        self.verdict: Verdict = RETRY
        # Waiters wait on this future, which only the refresh resolves: a CancelledError they
        # see is then always their own, never the refresh's.
        self.done: asyncio.Future[Verdict] = loop.create_future()
        self.handle: asyncio.Task[Verdict] | None = None
        self.timed_out = False
        # Set by its owner's close(): a cancellation from then on is the policy's, not the loop's end.
        self.closing = False
        self.concluded = False  # its outcome is being, or has been, recorded; set once


class AsyncioRunner:
    """Runs the refresh tasks that the policies sharing a credential start on one event loop.

    Each task belongs to the policy (:class:`~bgrefresh_policy._runners._protocols.Owner`) that started it.
    Used only from that loop's thread, so its dicts need no lock.

    :param loop: the running event loop.
    """

    __slots__ = ("_lock", "_tasks", "_timers", "flights", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock: asyncio.Lock | None = None
        # Refreshes requests can join, by flight key; a flight leaves when it ends.
        self.flights: dict[Hashable, AsyncioFlight] = {}
        # Refresh tasks not yet settled, in start order so that close() cancels reproducibly:
        # strong references (the loop keeps only weak ones), and what concluding each one takes.
        self._tasks: dict[asyncio.Task[Verdict], tuple[Hashable, AsyncioFlight, Finish]] = {}
        # Idle-refresh timers (refresh_when_idle), one per owner and key, and their owner.
        # The owner is held weakly: a policy dropped without close() is not kept alive by its timer.
        self._timers: dict[tuple[int, Hashable], tuple[weakref.ref[Owner], asyncio.TimerHandle]] = {}

    @property
    def lock(self) -> asyncio.Lock:
        """Guards nothing of ours: azure-core's policy exposes a per-loop lock as ``_lock``, and
        subclasses written for it take it around their own token handling. Made on first use."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def alive(self) -> bool:
        return not self.loop.is_closed()

    def start(
        self, flight_key: Hashable, fetch: Fetch, finish: Finish, *, timeout: float | None, name: str, owner: Owner
    ) -> AsyncioFlight:
        """Start a refresh task and make it joinable under ``flight_key``.

        The arguments are :meth:`Runner.start <bgrefresh_policy._runners._protocols.Runner.start>`'s.
        """
        flight = AsyncioFlight(self.loop, owner)
        # Joinable before the task exists: under an eager task factory (Python 3.12+) a
        # credential answering from its cache finishes inside create_task.
        self.flights[flight_key] = flight
        task = _create_task(self.loop, self._run(flight_key, flight, fetch, finish, timeout), name)
        flight.handle = task
        self._tasks[task] = (flight_key, flight, finish)
        if task.done():  # an eager task (3.12+) that finished inside create_task: settle it now, not
            self._settle(task)  # on the loop's next pass, so nothing holds it (or the policy) till then
        else:
            task.add_done_callback(self._settle)
        return flight

    def _conclude(self, flight_key: Hashable, flight: AsyncioFlight, finish: Finish, result: Any, error: Any) -> None:
        """Record the outcome once, and release the waiters."""
        if flight.concluded:
            return
        flight.concluded = True
        self.flights = without(self.flights, flight_key, flight)
        recorded, failure = record_outcome(finish, result, error)
        flight.verdict = recorded.verdict
        if failure is not None:
            self.loop.call_exception_handler(
                {"message": "bgrefresh_policy could not record how a token refresh ended", "exception": failure}
            )
        if not flight.done.done():
            with contextlib.suppress(RuntimeError):  # abandon(): the loop is closed, no waiter is left
                flight.done.set_result(flight.verdict)
        recorded.told()  # the flight is settled: a callback may close, wait or request again

    @staticmethod
    def _cancellation(flight: AsyncioFlight) -> BaseException:
        if flight.closing:
            return RefreshCancelled()
        return RefreshAbandoned("the event loop shut down with the token refresh running")

    def _settle(self, task: asyncio.Task[Verdict]) -> None:
        entry = self._tasks.pop(task, None)
        if not self._tasks:
            self._tasks = {}  # see without()
        if entry is None:  # abandon() concluded it already
            return
        flight_key, flight, finish = entry
        # Cancelled before its first step, _run never ran to record the outcome.
        self._conclude(flight_key, flight, finish, None, self._cancellation(flight))

    async def _run(
        self, flight_key: Hashable, flight: AsyncioFlight, fetch: Fetch, finish: Finish, limit: float | None
    ) -> Verdict:
        timer = None
        if limit is not None:
            timer = self.loop.call_later(limit, self._time_out, flight)
        result: Any = None
        error: BaseException | None = None
        try:
            result = await fetch()
        except asyncio.CancelledError as exc:
            # Swallowed on purpose: the waiters get a verdict instead, and whoever cancelled
            # (close(), the timeout, or the loop shutting down) awaits this task and expects it
            # to end. A CancelledError nobody asked for is the credential's own error.
            if flight.timed_out:
                error = RefreshTimeoutError(f"token refresh did not finish within refresh_timeout={limit}s")
            elif _cancel_requested(asyncio.current_task()):
                error = self._cancellation(flight)
            else:
                error = exc
        except BaseException as exc:  # noqa: BLE001 - whatever the credential raises (KeyboardInterrupt
            # too) is the refresh's outcome: the waiters re-raise it, as azure-core's policy would, and
            # the task itself ends cleanly, leaving no exception for nobody to retrieve.
            error = exc
        finally:
            if timer is not None:
                timer.cancel()
            self._conclude(flight_key, flight, finish, result, error)
        return flight.verdict

    @staticmethod
    def _time_out(flight: AsyncioFlight) -> None:
        flight.timed_out = True
        if flight.handle is not None:
            flight.handle.cancel()

    async def wait(self, flight: AsyncioFlight) -> Verdict:
        """Wait for the refresh; cancelling the waiter leaves the refresh running.

        :param flight: the flight.
        :return: its verdict.
        :rtype: Verdict
        """
        return await asyncio.shield(flight.done)

    async def drain(self) -> None:
        """Wait until no refresh task is running; the caller's cancellation leaves them running."""
        me = asyncio.current_task()  # a refresh waiting (its credential, say) never waits for itself
        while others := [task for task in self._tasks if task is not me]:
            await asyncio.wait(others)

    def schedule(self, owner: Owner, key: Hashable, delay: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` on this loop in ``delay`` seconds, replacing ``owner``'s timer for ``key``.

        :param owner: the policy; its ``close()`` cancels the timer.
        :param key: what the timer is for: one timer per owner and key.
        :param float delay: seconds from now (0 if negative).
        :param callback: what to call.
        """
        slot = (id(owner), key)
        old = self._timers.pop(slot, None)
        if old is not None:
            old[1].cancel()
        # In an empty context: not the context of whichever task armed it (a request's span, say).
        handle = self.loop.call_later(max(0.0, delay), self._fire, slot, callback, context=contextvars.Context())
        self._timers[slot] = (weakref.ref(owner), handle)

    def _fire(self, slot: tuple[int, Hashable], callback: Callable[[], None]) -> None:
        self._timers.pop(slot, None)
        callback()

    async def aclose(self, owner: Owner) -> None:
        """Cancel every refresh task and timer ``owner`` started and wait for the tasks to end."""
        tasks = self._cancel_owned(owner)
        await asyncio.gather(*tasks, return_exceptions=True)

    def cancel_threadsafe(self, owner: Owner) -> None:
        """Ask the loop, possibly running in another thread, to cancel the refresh tasks ``owner`` started."""
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed between the check and the call
                self.loop.call_soon_threadsafe(self._cancel_owned, owner)

    def _cancel_owned(self, owner: Owner) -> list[asyncio.Task[Verdict]]:
        for slot, (timer_owner, handle) in list(self._timers.items()):
            if timer_owner() is owner:
                handle.cancel()
                del self._timers[slot]
        me = asyncio.current_task()  # closing from inside its own refresh: that one ends on its own
        owned = [
            (task, flight) for task, (_, flight, _) in self._tasks.items() if flight.owner is owner and task is not me
        ]
        for task, flight in owned:
            flight.closing = True
            task.cancel()
        return [task for task, _ in owned]

    def abandon(self) -> None:
        """Conclude the refreshes of a loop that closed without running them to the end.

        Their tasks will never run again; concluding them clears the running mark they hold.
        Nothing was learned about the token endpoint, so this sets no back-off either.
        """
        self._timers = {}  # they will never fire
        for task, (flight_key, flight, finish) in list(self._tasks.items()):
            del self._tasks[task]
            self._conclude(flight_key, flight, finish, None, RefreshCancelled())
