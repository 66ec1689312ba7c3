"""One refresh in flight, as the event-loop runners and the policy share it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, NamedTuple

from ._decision import CachedToken

__all__ = [
    "RETRY",
    "Fetch",
    "Finish",
    "Flight",
    "LoopRunnerBase",
    "RefreshAbandoned",
    "RefreshCancelled",
    "RefreshTimedOut",
    "Verdict",
    "record_outcome",
]


class RefreshCancelled(Exception):
    """The policy's ``close()`` cancelled the refresh: nothing to record, waiters decide again."""


class RefreshAbandoned(Exception):
    """The refresh's event loop (or trio run) ended, or vanished, before the refresh did.

    Counted as a failed attempt, so that a program that runs a short event loop per job does not
    start, and lose, a token request in every one of them.
    """


class RefreshTimedOut(TimeoutError):
    """A background refresh on a thread ran past ``refresh_timeout``: failed, for its waiters.

    A thread cannot be stopped, so unlike a cancelled task it keeps the key's running mark
    until it ends; its late result is then recorded as any other.
    """


class Verdict(NamedTuple):
    """What the requests waiting on a refresh do once it ends.

    Exactly one of: a token to attach, an error to raise, or neither (:data:`RETRY`: the
    result is stale or the refresh was cancelled; decide again).
    """

    token: CachedToken | None
    error: BaseException | None


RETRY = Verdict(None, None)

# Asks the credential; returns what it returned, checked.
Fetch = Callable[[], Awaitable[Any]]
# Called once, in the flight's task, with the credential's result or the error; records the
# outcome in the key state and says what waiters do.
Finish = Callable[[Any | None, BaseException | None], Verdict]


def record_outcome(finish: Finish, result: Any, error: BaseException | None) -> tuple[Verdict, Exception | None]:
    """Call ``finish``, and survive it failing (a logging filter that raises, say).

    Waiters must be released whatever happens while the outcome is recorded, or they would wait
    forever: they get the recording error instead of a verdict.

    :param finish: records the outcome.
    :param result: the credential's result, or None.
    :param error: why the refresh failed, or None.
    :return: the verdict, and the error ``finish`` raised if it did.
    """
    try:
        return finish(result, error), None
    except Exception as exc:  # noqa: BLE001 - handed to the waiters, and to the runner to report
        return Verdict(None, exc), exc


class Flight:
    """A refresh that requests can wait on without owning it.

    The runner that started it owns the task (or trio system task) behind ``handle``,
    and is the only one that cancels it.
    """

    __slots__ = (
        "concluded",
        "deadline",
        "done",
        "finish",
        "handle",
        "key",
        "pending",
        "started",
        "timed_out",
        "verdict",
    )

    def __init__(self, key: Hashable = None) -> None:
        self.key = key
        self.verdict: Verdict = RETRY
        self.handle: Any = None
        self.timed_out = False
        self.concluded = False  # its outcome is being, or has been, recorded; set once
        # trio only: events for "the credential call has begun" and "the verdict is set".
        self.started: Any = None
        self.done: Any = None
        # threads only: when waiters stop waiting for a background refresh (time.monotonic()),
        # and the (fetch, finish) of an inline refresh that the first waiter runs itself.
        self.deadline: float | None = None
        self.pending: tuple[Any, Finish] | None = None
        self.finish: Finish | None = None  # threads only: of a background refresh, for its timeout


class LoopRunnerBase:
    """What the event-loop runners share: joining a refresh in flight, or starting one.

    Used only from the loop's thread, so ``flights`` needs no lock.
    """

    # Refreshes requests can join, by flight key; a flight leaves when it ends.
    flights: dict[Hashable, Flight]

    def start(self, flight_key: Hashable, fetch: Fetch, finish: Finish, *, timeout: float | None) -> Flight:
        raise NotImplementedError

    def join_or_start(self, flight_key: Hashable, fetch: Fetch, finish: Finish) -> Flight:
        """The refresh joinable under ``flight_key``, started (with no timeout) if there is none.

        :param flight_key: what requests that may share this refresh look it up by.
        :param fetch: asks the credential, if a refresh starts.
        :param finish: records its outcome, if a refresh starts.
        :return: the flight.
        :rtype: Flight
        """
        return self.flights.get(flight_key) or self.start(flight_key, fetch, finish, timeout=None)
