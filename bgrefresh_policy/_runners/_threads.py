"""The sync policy's refreshes: background ones on daemon threads, inline ones on the caller's thread."""

from __future__ import annotations

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

__all__ = ["ThreadFlight", "ThreadRunner"]


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


class ThreadRunner:
    """Runs the background threads of the sync policies sharing a credential, and the refreshes threads join.

    A background refresh runs on its own daemon thread, started when a request finds its
    token due; the policy's running mark in the token store keeps it to one per key at a
    time, until that thread has ended. An inline refresh runs on the thread of the first
    request that needs it; requests on other threads wait for it.

    A thread cannot be cancelled: a background refresh that outlives ``refresh_timeout`` is
    given up by the requests waiting on it, and its thread runs on until the credential returns.
    """

    __slots__ = ("_ended", "_lock", "_started_timers", "_threads", "_timers", "flights")

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
        # Idle-refresh timers (refresh_when_idle), one per owner and key, and their owner.
        # The owner is held weakly: a policy dropped without close() is not kept alive by its timer.
        self._timers: dict[tuple[int, Hashable], tuple[weakref.ref[Owner], threading.Timer]] = {}
        # Every timer thread started and maybe not ended yet (a fired one leaves _timers before its
        # thread ends): what close() joins. Pruned of ended ones as new ones start.
        self._started_timers: list[tuple[weakref.ref[Owner], threading.Timer]] = []

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
        """Call ``callback`` on a daemon timer thread in ``delay`` seconds, replacing ``owner``'s timer for ``key``.

        Nothing is scheduled once ``owner`` is closed.
        """
        slot = (id(owner), key)
        timer = threading.Timer(max(0.0, delay), self._fire, args=(slot, callback))
        timer.name, timer.daemon = "bgrefresh idle timer", True
        with self._lock:
            if owner.closed:
                return
            old = self._timers.pop(slot, None)
            self._timers[slot] = (weakref.ref(owner), timer)
            started = [(ref, thread) for ref, thread in self._started_timers if thread.is_alive()]
            self._started_timers = [*started, (weakref.ref(owner), timer)]
        if old is not None:
            old[1].cancel()
        timer.start()

    def _fire(self, slot: tuple[int, Hashable], callback: Callable[[], None]) -> None:
        # The timer stays listed while its callback runs, so that a close() meanwhile joins it.
        try:
            callback()
        finally:
            with self._lock:
                entry = self._timers.get(slot)
                if entry is not None and entry[1] is threading.current_thread():
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
        with self._lock:
            owner.closed = True
            timers = [timer for timer_owner, timer in self._started_timers if timer_owner() is owner]
            self._timers = {slot: entry for slot, entry in self._timers.items() if entry[0]() is not owner}
        for timer in timers:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join()
        return self.join(timeout, owner)
