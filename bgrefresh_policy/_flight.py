"""One refresh in flight, as the event-loop runners and the policy share it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from ._decision import CachedToken

__all__ = ["RETRY", "Fetch", "Finish", "Flight", "RefreshCancelled", "Verdict"]


class RefreshCancelled(Exception):
    """The refresh was cancelled (the policy closed, or its event loop is shutting down)."""


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


class Flight:
    """A refresh that requests can wait on without owning it.

    The runner that started it owns the task (or trio system task) behind ``handle``,
    and is the only one that cancels it.
    """

    __slots__ = ("done", "handle", "started", "timed_out", "verdict")

    def __init__(self) -> None:
        self.verdict: Verdict = RETRY
        self.handle: Any = None
        self.timed_out = False
        # trio only: events for "the credential call has begun" and "the verdict is set".
        self.started: Any = None
        self.done: Any = None
