"""How a refresh ends: the errors it can end with, and the verdict the requests waiting on it act on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, NamedTuple, NoReturn

from ._key_state import CachedToken

__all__ = [
    "RETRY",
    "Fetch",
    "Finish",
    "RefreshAbandoned",
    "RefreshCancelled",
    "RefreshTimedOut",
    "RefreshTimeoutError",
    "SyncFetch",
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


class RefreshTimeoutError(TimeoutError):
    """A refresh on an event loop ran past ``refresh_timeout`` and was cancelled: failed."""


class RefreshTimedOut(TimeoutError):
    """A background refresh on a thread ran past ``refresh_timeout``: failed, for its waiters.

    A thread cannot be stopped, so unlike a cancelled task it keeps the key's running mark
    until it ends; its late result is then recorded as any other.
    """


class Verdict(NamedTuple):
    """What the requests waiting on a refresh do once it ends.

    Exactly one of: a token to attach, an error to raise, or neither (:data:`RETRY`: the
    result is stale or the refresh was cancelled; decide again). Every waiter raises the one
    error object, each from ``origin``, the traceback it had when the refresh ended: else each
    raise would add that waiter's frames to the last, and a shared failure would carry (and keep
    alive) the stacks of all the requests that waited on it.
    """

    token: CachedToken | None
    error: BaseException | None
    origin: TracebackType | None = None

    def raise_error(self) -> NoReturn:
        """Raise the error, from its traceback as the refresh ended.

        :raises BaseException: the refresh's error.
        """
        assert self.error is not None
        raise self.error.with_traceback(self.origin)


RETRY = Verdict(None, None)

# Ask the credential; return what it returned, checked.
Fetch = Callable[[], Awaitable[Any]]
SyncFetch = Callable[[], Any]
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
        return Verdict(None, exc, exc.__traceback__), exc
