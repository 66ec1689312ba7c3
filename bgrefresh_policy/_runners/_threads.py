"""The sync policy's refreshes: background ones on daemon threads, inline ones on the caller's thread."""

from __future__ import annotations

import heapq
import logging
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from .._outcome import (
    RETRY,
    Finish,
    Recorded,
    RefreshAbandoned,
    RefreshCancelled,
    RefreshTimedOut,
    SyncFetch,
    Verdict,
)
from ._flights import without

if TYPE_CHECKING:
    from ._protocols import Owner

__all__ = ["IdleTimer", "ThreadFlight", "ThreadRunner"]

_LOGGER = logging.getLogger(__name__)


class ThreadFlight:
    """A refresh that threads can wait on: on its own daemon thread, or on the first waiter's.

    :param flight_key: what requests that may share it look it up by.
    """

    __slots__ = (
        "concluded",
        "deadline",
        "done",
        "finish",
        "handle",
        "key",
        "owner",
        "pending",
        "timed_out",
        "verdict",
    )

    def __init__(self, flight_key: Hashable, owner: Owner | None = None) -> None:
        self.key = flight_key
        self.owner = owner  # a background refresh's: the policy that started it, whose close() joins it
        self.verdict: Verdict = RETRY
        self.done = threading.Event()  # set once the verdict is
        self.handle: threading.Thread | None = None  # a background refresh's thread
        # A background refresh's: when waiters stop waiting for it (time.monotonic()), and what
        # records it as failed then.
        self.deadline: float | None = None
        self.finish: Finish | None = None
        # An inline refresh's work, taken by the first waiter, who runs it on its own thread.
        self.pending: tuple[SyncFetch, Finish] | None = None
        self.timed_out = False
        self.concluded = False  # its outcome is being, or has been, recorded; set once


class IdleTimer:
    """One idle timer (``refresh_when_idle``) of a :class:`ThreadRunner`, fired by the runner's one
    scheduler thread: thousands of policies cost one thread, not one each.

    :param owner: the policy, held weakly: a policy dropped without ``close()`` is not kept alive.
    :param float interval: seconds from now.
    :param function: what to call, with ``args``.
    :param tuple args: its arguments.
    """

    __slots__ = ("_wake", "args", "due", "finished", "function", "interval", "owner")

    def __init__(
        self,
        owner: Owner,
        interval: float,
        function: Callable[..., None],
        args: tuple[Any, ...],
        wake: threading.Condition,
    ) -> None:
        self.owner = weakref.ref(owner)
        self.interval = interval
        self.due = time.monotonic() + interval
        self.function = function
        self.args = args
        self.finished = threading.Event()  # set once it has fired or was cancelled
        self._wake = wake  # the runner's: its scheduler waits on it

    def cancel(self) -> None:
        """Stop it from firing, if it has not yet (not with the runner's lock held: see :meth:`cancelled`)."""
        with self._wake:
            self.cancelled()
            self._wake.notify_all()

    def cancelled(self) -> None:
        """Stop it from firing; the caller holds the runner's lock, and notifies its scheduler."""
        self.finished.set()


class ThreadRunner:
    """Runs the background threads of the sync policies sharing a credential, and the refreshes threads join.

    A background refresh runs on its own daemon thread, started when a request finds its
    token due; the policy's running mark in the token store keeps it to one per key at a
    time, until that thread has ended. An inline refresh runs on the thread of the first
    request that needs it; requests on other threads wait for it.

    A thread cannot be cancelled: a background refresh that outlives ``refresh_timeout`` is
    given up by the requests waiting on it, and its thread runs on until the credential returns.
    """

    __slots__ = (
        "_armed",
        "_due",
        "_ended",
        "_firing",
        "_lock",
        "_scheduler",
        "_threads",
        "_timers",
        "_wake",
        "flights",
    )

    # Threads outlive no event loop: a background mark of theirs never goes stale that way.
    alive: None = None

    def __init__(self) -> None:
        # Protects flights, _threads, _ended, each owner's closed flag, and each flight's pending
        # work and its concluded and timed_out flags: held for bookkeeping only, never across a
        # credential call, a wait, a join or a log call.
        self._lock = threading.Lock()
        # Notified, under _lock, whenever a background thread ends: join() waits on it. Made by
        # the first join(), since most policies never wait for their refreshes.
        self._ended: threading.Condition | None = None
        # Refreshes requests can join, by flight key; a flight leaves when it ends.
        self.flights: dict[Hashable, ThreadFlight] = {}
        # Background threads not yet ended, in start order; from before they start.
        self._threads: dict[threading.Thread, ThreadFlight] = {}
        # Idle-refresh timers (refresh_when_idle), one per owner and key, and their owner (held
        # weakly, as in the timer). Also under _lock: the heap the scheduler thread fires them from,
        # cancelled ones included until it pops them, the timer it is firing, and the thread.
        self._timers: dict[tuple[int, Hashable], tuple[weakref.ref[Owner], IdleTimer]] = {}
        self._due: list[tuple[float, int, IdleTimer]] = []
        self._armed = 0  # timers armed so far: ties in _due fire in arming order
        self._firing: IdleTimer | None = None
        self._scheduler: threading.Thread | None = None  # runs while _due holds a timer
        # Notified, under _lock, when _due or _firing changes: the scheduler and close() wait on it.
        # Made by the first schedule(), since most policies never arm a timer.
        self._wake: threading.Condition | None = None

    def after_fork(self) -> None:
        """In a forked child: none of the parent's threads, flights, timers or locks.

        The idle timers are armed anew by the policies' store (see ``Shared.after_fork``).
        """
        self.__init__()  # type: ignore[misc]

    @property
    def threads(self) -> list[threading.Thread]:
        """The background threads that have not ended yet."""
        return self.threads_of(None)

    def threads_of(self, owner: Owner | None) -> list[threading.Thread]:
        """The background threads that ``owner`` started (all, for None) and that have not ended yet."""
        with self._lock:
            return [thread for thread, flight in self._threads.items() if owner in (None, flight.owner)]

    def start(
        self, flight_key: Hashable, fetch: SyncFetch, finish: Finish, *, timeout: float, name: str, owner: Owner
    ) -> ThreadFlight:
        """Start a background refresh on a new daemon thread and make it joinable under ``flight_key``.

        :param flight_key: what requests that may share this refresh look it up by.
        :param fetch: asks the credential.
        :param finish: records the outcome and returns the verdict; called on that thread, and once
            more by the first waiter giving up if the refresh runs past ``timeout``.
        :keyword float timeout: seconds after which requests waiting on it stop waiting.
        :keyword str name: the thread's name.
        :keyword owner: the policy starting it; once it is closed, no thread starts for it.
        :return: the flight.
        :rtype: ThreadFlight
        """
        flight = ThreadFlight(flight_key, owner)
        flight.deadline = time.monotonic() + timeout
        flight.finish = finish
        # Daemon: a refresh stuck in a credential call must not keep the interpreter alive.
        thread = threading.Thread(target=self._run_background, args=(flight, fetch, finish), name=name, daemon=True)
        flight.handle = thread
        with self._lock:
            refused = owner.closed
            if not refused:
                self.flights[flight_key] = flight
                self._threads[thread] = flight
        if refused:  # close() ran after this refresh was decided: the request keeps its token
            self._conclude(flight, finish, None, RefreshCancelled())
            return flight
        try:
            thread.start()
        except RuntimeError as exc:  # the interpreter is shutting down, or out of threads
            with self._lock:
                del self._threads[thread]
                self._threads = self._threads or {}  # see without()
                self._notify_ended()
            self._conclude(flight, finish, None, RefreshAbandoned(f"no thread for the refresh: {exc}"))
        return flight

    def join_or_start(
        self, flight_key: Hashable, fetch: SyncFetch, finish: Finish, *, needed: Callable[[], bool] | None = None
    ) -> ThreadFlight:
        """The refresh joinable under ``flight_key``; if there is none, one that the first waiter runs.

        :param flight_key: what requests that may share this refresh look it up by.
        :param fetch: asks the credential, if a refresh starts.
        :param finish: records its outcome, if a refresh starts.
        :keyword needed: asked, under this runner's lock, before a refresh starts: whether the
            caller's decision still holds. A refresh may have ended between the decision and
            this call; then the flight returned is already settled with :data:`RETRY`.
        :return: the flight.
        :rtype: ThreadFlight
        """
        with self._lock:
            flight = self.flights.get(flight_key)
            if flight is not None:
                return flight
            flight = ThreadFlight(flight_key)
            if needed is not None and not needed():
                flight.done.set()  # verdict RETRY: decide again
                return flight
            flight.pending = (fetch, finish)
            self.flights[flight_key] = flight
        return flight

    def wait(self, flight: ThreadFlight) -> Verdict:
        """Run the refresh on this thread if nobody has, else wait for it.

        :param flight: the flight.
        :return: its verdict; a :class:`TimeoutError` once a background refresh has run past
            its deadline.
        :rtype: Verdict
        """
        work: tuple[SyncFetch, Finish] | None = None
        try:
            with self._lock:
                work, flight.pending = flight.pending, None
            if work is not None:
                self._run_inline(flight, *work)
                return flight.verdict
        except BaseException:  # KeyboardInterrupt and the like, before the outcome was recorded
            if work is not None and not flight.concluded:  # the others decide again
                self._conclude(flight, work[1], None, RefreshCancelled())
            raise
        if flight.deadline is None:
            flight.done.wait()
            return flight.verdict
        if flight.done.wait(max(0.0, flight.deadline - time.monotonic())):
            return flight.verdict
        return self._give_up(flight)

    def _run_background(self, flight: ThreadFlight, fetch: SyncFetch, finish: Finish) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = fetch()
        except BaseException as exc:  # noqa: BLE001 - on its own thread, the outcome is all there is to report
            error = exc
        finally:
            try:
                self._conclude(flight, finish, result, error)
            finally:
                with self._lock:
                    if flight.handle is not None:
                        self._threads.pop(flight.handle, None)
                        self._threads = self._threads or {}  # see without()
                    self._notify_ended()

    def _run_inline(self, flight: ThreadFlight, fetch: SyncFetch, finish: Finish) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = fetch()
        except Exception as exc:  # noqa: BLE001 - any credential error is the refresh's outcome
            error = exc
        # Anything else (KeyboardInterrupt) goes up to wait(), which concludes the flight.
        self._conclude(flight, finish, result, error)

    def _conclude(self, flight: ThreadFlight, finish: Finish, result: Any, error: BaseException | None) -> None:
        """Record the outcome, then release the waiters, whatever happens while recording.

        The flight stays joinable until its outcome is in the token store: a request deciding
        meanwhile either joins it or finds the new token, never starts a second call.
        """
        with self._lock:
            flight.concluded = True  # from now on, a waiter giving up waits for this outcome instead
        recorded = Recorded(RETRY)  # if recording fails (a log filter raising, an interrupt), waiters decide again
        try:
            recorded = finish(result, error)  # outside the lock: it logs
        finally:
            with self._lock:
                self.flights = without(self.flights, flight.key, flight)
                flight.verdict = recorded.verdict
            flight.done.set()
        recorded.told()  # the flight is settled: a callback may close, wait or request again

    def _give_up(self, flight: ThreadFlight) -> Verdict:
        """Stop waiting for a background refresh past its deadline: it counts as failed, once.

        Later requests do not join it. Its thread runs on, and its late result is recorded too.
        """
        name = flight.handle.name if flight.handle is not None else "the token refresh"
        error = RefreshTimedOut(
            f"{name} did not finish within refresh_timeout; its thread runs on until the credential returns"
        )
        with self._lock:
            ending = flight.concluded
            first = not ending and not flight.timed_out
            flight.timed_out = True
            if first:  # requests deciding from now on start their own refresh
                self.flights = without(self.flights, flight.key, flight)
        if ending:  # it ended right at the deadline: its outcome is being recorded
            flight.done.wait()
            return flight.verdict
        if not first:  # the first waiter to give up records the failed attempt
            return Verdict(None, error)
        assert flight.finish is not None
        # Outside the lock: it logs. The store ignores it if the thread has recorded its outcome meanwhile.
        return flight.finish(None, error).told()

    def schedule(self, owner: Owner, key: Hashable, delay: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the scheduler thread in ``delay`` seconds, replacing ``owner``'s timer for ``key``.

        Nothing is scheduled once ``owner`` is closed.
        """
        slot = (id(owner), key)
        with self._lock:
            if owner.closed:
                return
            if self._wake is None:
                self._wake = threading.Condition(self._lock)
            timer = IdleTimer(owner, max(0.0, delay), self._fire, (slot, callback), self._wake)
            old = self._timers.pop(slot, None)
            if old is not None:
                old[1].cancelled()
            self._timers[slot] = (timer.owner, timer)
            self._armed += 1
            heapq.heappush(self._due, (timer.due, self._armed, timer))
            self._wake.notify_all()
            if self._scheduler is None:
                self._scheduler = threading.Thread(target=self._run_timers, name="bgrefresh idle timers", daemon=True)
                self._scheduler.start()

    def _run_timers(self) -> None:
        """The scheduler thread: fire each timer when due, until none is left."""
        wake = self._wake
        assert wake is not None  # made by the schedule() that started this thread
        while True:
            with self._lock:
                timer = self._next_due(wake)
                if timer is None:
                    self._scheduler = None
                    wake.notify_all()
                    return
                self._firing = timer
            try:
                timer.function(*timer.args)
            except Exception:  # one timer's failure must not stop the others; a bug of ours, no token in it
                _LOGGER.exception("an idle refresh timer failed")
            finally:
                with self._lock:
                    self._firing = None
                    timer.finished.set()
                    wake.notify_all()

    def _next_due(self, wake: threading.Condition) -> IdleTimer | None:
        """Wait for the next timer to fall due, and take it; None once none is left (caller holds _lock)."""
        while self._due:
            due, _, timer = self._due[0]
            if timer.finished.is_set():  # cancelled
                heapq.heappop(self._due)
                continue
            wait = due - time.monotonic()
            if wait <= 0:
                heapq.heappop(self._due)
                return timer
            wake.wait(wait)
        self._due = []  # see without()
        return None

    def _fire(self, slot: tuple[int, Hashable], callback: Callable[[], None]) -> None:
        # The timer stays listed while its callback runs, so that a close() meanwhile waits for it.
        try:
            callback()
        finally:
            with self._lock:
                entry = self._timers.get(slot)
                if entry is not None and entry[1].args[1] is callback:
                    del self._timers[slot]

    def join(self, timeout: float | None = None, owner: Owner | None = None) -> bool:
        """Wait until no background thread is running, including ones that start meanwhile.

        :param timeout: seconds to wait at most; None waits as long as it takes.
        :param owner: wait only for the threads this policy started; None waits for all.
        :return: whether none is running.
        :rtype: bool
        """
        with self._lock:
            if self._ended is None:
                self._ended = threading.Condition(self._lock)
            return self._ended.wait_for(lambda: not self._running(owner), timeout)

    def _running(self, owner: Owner | None) -> bool:
        # Caller holds _lock. A refresh thread waiting (an on_refresh callback closing its policy)
        # never waits for itself.
        me = threading.current_thread()
        return any(owner in (None, flight.owner) and thread is not me for thread, flight in self._threads.items())

    def _notify_ended(self) -> None:
        # Caller holds _lock.
        if self._ended is not None:
            self._ended.notify_all()

    def close(self, owner: Owner, timeout: float | None = None) -> bool:
        """Start no background thread for ``owner`` from now on, and wait for those it started (see :meth:`join`).

        :param owner: the policy closing.
        :param timeout: seconds to wait at most; None waits as long as it takes.
        :return: whether none of its threads is running.
        :rtype: bool
        """
        me = threading.current_thread()
        with self._lock:
            owner.closed = True
            for _, timer in self._timers.values():
                if timer.owner() is owner:
                    timer.cancelled()
            self._timers = {slot: entry for slot, entry in self._timers.items() if entry[0]() is not owner}
            wake, scheduler = self._wake, self._scheduler
            if wake is None or scheduler is None or scheduler is me:  # no timer running, or one closing its own
                scheduler = None
            else:
                wake.notify_all()
                wake.wait_for(lambda: self._firing is None or self._firing.owner() is not owner)
                # With no timer left the scheduler ends: wait for it, so that no thread outlives close().
                wake.wait_for(lambda: self._scheduler is not scheduler or bool(self._timers))
                if self._scheduler is scheduler:  # it runs on, for other policies' timers
                    scheduler = None
        if scheduler is not None:
            scheduler.join()
        return self.join(timeout, owner)
