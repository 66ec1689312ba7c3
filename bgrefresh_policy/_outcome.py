"""How a refresh ends: the errors it can end with, the outcome it is reported with, and the verdict
the requests waiting on it act on."""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, NamedTuple, NoReturn

from ._key_state import CachedToken

__all__ = [
    "RETRY",
    "Fetch",
    "Finish",
    "Recorded",
    "RefreshAbandoned",
    "RefreshCancelled",
    "RefreshOutcome",
    "RefreshTimedOut",
    "RefreshTimeoutError",
    "SyncFetch",
    "Verdict",
    "described",
    "record_outcome",
]


class RefreshOutcome(str, enum.Enum):
    """How one credential call the policy made ended."""

    NEW_TOKEN = "new_token"
    """The credential returned a token that expires later: it is now the cached one."""
    NOT_NEWER = "not_newer"
    """The credential returned a token that expires no later (its own cache): backing off."""
    FAILED = "failed"
    """The credential raised (``error``): backing off."""
    TIMED_OUT = "timed_out"
    """A background refresh ran past ``refresh_timeout``: counted as failed, backing off."""
    STALE = "stale"
    """The key was invalidated while the call ran (a 401, a claims challenge): result discarded."""
    EXPIRED_ON_ARRIVAL = "expired_on_arrival"
    """The credential returned a token already expired by this machine's clock (usually a clock
    ahead of the real time): attached as it is, since the service judges it by its own clock, and
    the credential asked again only after ``retry_delay``."""
    CANCELLED = "cancelled"
    """The policy's ``close()`` cancelled the call (or its event loop ended first): nothing recorded."""


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


class Recorded(NamedTuple):
    """What recording a refresh's end hands its runner.

    The observers (``on_refresh``, telemetry) are told only once the runner has released the
    waiters and let go of the flight: a callback that closes the policy, waits for its refreshes
    or sends a request for the same key then meets a settled flight, never itself.
    """

    verdict: Verdict
    tell: Callable[[], None] | None = None

    def told(self) -> Verdict:
        """Tell the observers, if any; the verdict.

        :return: the waiters' verdict.
        """
        if self.tell is not None:
            self.tell()
        return self.verdict


# Ask the credential; return what it returned, checked.
Fetch = Callable[[], Awaitable[Any]]
SyncFetch = Callable[[], Any]
# Called once, in the flight's task, with the credential's result or the error; records the
# outcome in the key state and says what waiters do, and what observers are told after.
Finish = Callable[[Any | None, BaseException | None], Recorded]


def record_outcome(finish: Finish, result: Any, error: BaseException | None) -> tuple[Recorded, Exception | None]:
    """Call ``finish``, and survive it failing (a logging filter that raises, say).

    Waiters must be released whatever happens while the outcome is recorded, or they would wait
    forever: they get the recording error instead of a verdict.

    :param finish: records the outcome.
    :param result: the credential's result, or None.
    :param error: why the refresh failed, or None.
    :return: what was recorded, and the error ``finish`` raised if it did.
    """
    try:
        return finish(result, error), None
    except Exception as exc:  # noqa: BLE001 - handed to the waiters, and to the runner to report
        return Recorded(Verdict(None, exc, exc.__traceback__)), exc


# A run of token characters (base64url, JWT dots) long enough to be a token or a part of one; a
# GUID (a correlation or trace id, which support asks for) is left as it is.
_TOKENISH = re.compile(
    r"(?<![\w.-])(?![0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)"
    r"[\w-]{24,}(?:\.[\w-]+)*"
)


def described(error: BaseException) -> str:
    """``error``'s type and message for a log line, with anything token-like in it cut out.

    A credential's error may quote the token endpoint's answer: azure-core's ``DecodeError``
    carries the body of a response it could not parse, which for one cut off in the middle holds
    part of a token.

    :param error: the refresh's error.
    :return: ``Type: message``, each token-like run replaced with ``<redacted>``.
    """
    return f"{type(error).__name__}: {_TOKENISH.sub('<redacted>', str(error))}"
