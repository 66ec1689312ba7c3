"""Per-key refresh bookkeeping: the cached token, its generation and the back-off.

Pure state transitions with the time passed in. The policy serialises every call
with its state lock; nothing here locks, sleeps or awaits.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ._decision import Action, CachedToken, decide
from ._options import RefreshOptions

__all__ = ["Completion", "KeyState", "TokenKey"]


class TokenKey(NamedTuple):
    """Which token a request needs: the scopes (sorted, so order does not matter) and the tenant."""

    scopes: tuple[str, ...]
    tenant_id: str | None

    @classmethod
    def of(cls, scopes: Sequence[str], tenant_id: str | None = None) -> TokenKey:
        return cls(tuple(sorted(scopes)), tenant_id)


class Completion(enum.Enum):
    """What became of a finished refresh."""

    STORED = "stored"
    """The result is now the key's token."""
    NOT_NEWER = "not_newer"
    """The credential answered with a token that does not expire later (its own cache): back off."""
    FAILED = "failed"
    """The credential raised, or the refresh timed out: back off."""
    STALE = "stale"
    """The key was invalidated (401, claims challenge, explicit token) after the refresh began:
    its result must not be used."""


class BackgroundMark:
    """A background refresh is running for the key: since when, and whether it can still end.

    :param float since: Unix time it began.
    :param alive: tells whether the event loop running it is still open; a refresh on a loop
        that closed without ending it will never clear its own mark.
    """

    __slots__ = ("alive", "since")

    def __init__(self, since: float, alive: Callable[[], bool] | None = None) -> None:
        self.since = since
        self.alive = alive


class KeyState:
    """Everything the policy remembers about one token key."""

    __slots__ = ("background", "current", "generation", "retry_not_before")

    def __init__(self) -> None:
        self.current: CachedToken | None = None
        # Bumped by every invalidation and explicit store; a refresh remembers the
        # generation it began in and may write back only if it is still current.
        self.generation = 0
        self.retry_not_before = float("-inf")
        # The running background refresh, or None.
        self.background: BackgroundMark | None = None

    @property
    def background_since(self) -> float | None:
        """Unix time the running background refresh began, or None."""
        return self.background.since if self.background is not None else None

    def decide(self, now: float, options: RefreshOptions, *, background_allowed: bool) -> Action:
        """Apply :func:`decide` to this key.

        :param float now: Unix time.
        :param options: the policy's options.
        :keyword bool background_allowed: a background refresh may start.
        :return: the action.
        :rtype: Action
        """
        return self._decide(self.current, now, options, background_allowed)

    def attachable(self, now: float, options: RefreshOptions, *, background_allowed: bool) -> CachedToken | None:
        """The token to attach as it is, or None when the request has more to do.

        Safe without the owner's lock: it reads the token once, and a stale read can only
        attach a token that was valid a moment ago or send the request to the locked path.

        :param float now: Unix time.
        :param options: the policy's options.
        :keyword bool background_allowed: a background refresh may start.
        :return: the cached token, or None.
        """
        current = self.current
        if current is None:
            return None
        if not current.is_due(now):  # the common case, checked first: one comparison or two
            return current
        return current if self._decide(current, now, options, background_allowed) is Action.ATTACH else None

    def _decide(
        self, current: CachedToken | None, now: float, options: RefreshOptions, background_allowed: bool
    ) -> Action:
        return decide(
            current,
            now,
            min_validity=options.min_validity,
            retry_not_before=self.retry_not_before,
            background_busy=self._background_busy(),
            background_allowed=background_allowed,
        )

    def _background_busy(self) -> bool:
        # Cleared by whatever ends the refresh: its result, its refresh_timeout, close(), or
        # its event loop ending. Only a loop closed with the refresh still pending leaves the
        # mark behind; it stops counting once that loop is gone.
        mark = self.background
        return mark is not None and (mark.alive is None or mark.alive())

    def begin_background(self, now: float, alive: Callable[[], bool] | None = None) -> int:
        """Mark a background refresh as running.

        :param float now: Unix time.
        :param alive: whether the loop running the refresh is still open (see :class:`BackgroundMark`).
        :return: the generation the refresh belongs to.
        :rtype: int
        """
        self.background = BackgroundMark(now, alive)
        return self.generation

    def end_background(self, mark: BackgroundMark | None = None) -> None:
        """Clear the running mark, whatever became of the refresh.

        :param mark: the mark the ending refresh set; a later refresh's mark is left alone.
            None clears any mark.
        """
        if mark is None or self.background is mark:
            self.background = None

    def complete(
        self,
        generation: int,
        token: CachedToken | None,
        now: float,
        *,
        retry_delay: float,
        explicit: bool = False,
    ) -> Completion:
        """Record the end of a refresh that began in ``generation``.

        :param int generation: the generation the refresh began in.
        :param token: the new token, or None when the refresh failed.
        :param float now: Unix time.
        :keyword float retry_delay: the back-off after a failed or fruitless attempt.
        :keyword bool explicit: the caller asked for this token (``authorize_request``); it
            replaces the cached one even if it expires sooner, and makes refreshes begun
            earlier stale.
        :return: what became of it.
        :rtype: Completion
        """
        if generation != self.generation:
            return Completion.STALE
        if token is None:
            self.retry_not_before = now + retry_delay
            return Completion.FAILED
        if explicit:
            self.store_explicit(token)
            return Completion.STORED
        if self.current is None or token.expires_on > self.current.expires_on:
            self.current = token
            self.retry_not_before = float("-inf")
            return Completion.STORED
        self.retry_not_before = now + retry_delay
        return Completion.NOT_NEWER

    def store_explicit(self, token: CachedToken | None) -> None:
        """Replace the cached token (or drop it, with None); refreshes begun earlier become stale.

        :param token: the new token, or None.
        """
        self.current = token
        self.generation += 1
        self.retry_not_before = float("-inf")

    def invalidate(self, serial: int | None = None) -> bool:
        """Drop the cached token after a 401 or a claims challenge.

        :param serial: the serial of the token the rejected request carried; None drops
            whatever is cached. A 401 for a token already replaced leaves the new one alone,
            so a burst of 401s for one revoked token causes one refresh, not one each.
        :return: whether anything was invalidated.
        :rtype: bool
        """
        if serial is not None and (self.current is None or self.current.serial != serial):
            return False
        self.store_explicit(None)
        return True
