"""One token key's state, pure: the cached token, the refresh decision, the generation and the back-off.

Nothing here does I/O, takes a lock or touches an event loop: the store serialises every call
with its lock, and the whole rule set is tested with plain numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from azure.core.credentials import AccessToken, AccessTokenInfo

from ._azure_core import DEFAULT_REFRESH_WINDOW, is_due
from ._options import RefreshOptions

__all__ = [
    "Action",
    "BackgroundMark",
    "CachedToken",
    "Completion",
    "KeyState",
    "TokenKey",
    "checked_token",
    "decide",
]

TokenLike = AccessToken | AccessTokenInfo

# A token is surely not due before its due moment less this margin, whatever the rounding of the
# comparisons azure-core's rule makes: requests before it need one comparison, not the whole rule.
_MARGIN = 1e-3


class TokenKey(NamedTuple):
    """Which token a request needs: the scopes (sorted, so order does not matter), the tenant, and
    whether it is a CAE token (a CAE-enabled and a plain token for the same scopes are two tokens)."""

    scopes: tuple[str, ...]
    tenant_id: str | None
    cae: bool = False

    @classmethod
    def of(cls, scopes: Sequence[str], tenant_id: str | None = None, *, cae: bool = False) -> TokenKey:
        return cls(tuple(sorted(scopes)), tenant_id, cae)


class Action(enum.Enum):
    """What a request does with the token it finds."""

    ATTACH = "attach"
    """Attach the cached token; nothing else to do."""
    BACKGROUND = "background"
    """Attach the cached token and start a background refresh."""
    INLINE = "inline"
    """Wait for a refresh (start one, or join the one in flight)."""


class CachedToken:
    """A token the policy holds, with the numbers the decision needs.

    What the credential returned is read once, here, as the expiry is: a token object the
    credential changes in place afterwards is not followed (azure-identity returns a new one each
    time). The token string stays inside ``token``, ``value`` and ``header`` (the
    ``Authorization`` value); ``repr`` shows none of them, because ``AccessTokenInfo.__repr__`` does.

    :param token: what the credential returned.
    :param int jitter: seconds (0-60) added to ``refresh_on`` or taken off the refresh window, drawn per token.
    :param int serial: identifies this token for a later 401 on a request that carried it.
    """

    __slots__ = (
        "_access",
        "_info",
        "_jitter",
        "expires_on",
        "fresh_until",
        "header",
        "refresh_on",
        "serial",
        "token",
        "value",
    )

    def __init__(self, token: Any, *, jitter: int, serial: int) -> None:
        self.token = token
        self.value: str = token.token
        # Built once per token, not per request: for a 2 KB token the copy is a tenth of a request's cost.
        self.header = "Bearer " + self.value
        self.expires_on: float = token.expires_on
        # AccessToken has no refresh_on; AccessTokenInfo has an optional one.
        self.refresh_on: float | None = getattr(token, "refresh_on", None)
        self.serial = serial
        self.jitter = jitter
        # What a credential wrapper hands out, made from the values read here on first use.
        self._info: AccessTokenInfo | None = None
        self._access: AccessToken | None = None

    def as_info(self) -> AccessTokenInfo:
        """The token as an ``AccessTokenInfo``, as it was read (``expires_on``, ``refresh_on``, type)."""
        if self._info is None:
            refresh_on = int(self.refresh_on) if self.refresh_on else None
            token_type = getattr(self.token, "token_type", "Bearer")
            self._info = AccessTokenInfo(self.value, int(self.expires_on), token_type=token_type, refresh_on=refresh_on)
        return self._info

    def as_access_token(self) -> AccessToken:
        """The token as an ``AccessToken`` instance, as it was read (kiota accepts nothing else)."""
        if self._access is None:
            self._access = AccessToken(self.value, int(self.expires_on))
        return self._access

    @property
    def jitter(self) -> int:
        """The token's refresh jitter; setting it moves the moment the token falls due."""
        return self._jitter

    @jitter.setter
    def jitter(self, value: int) -> None:
        self._jitter = value
        due = (
            min(self.refresh_on + value, self.expires_on)
            if self.refresh_on
            else self.expires_on - (DEFAULT_REFRESH_WINDOW - value)
        )
        # Before this, is_due() is False: requests check one number on the hot path. Never past
        # expiry, whatever jitter a subclass assigns.
        self.fresh_until: float = min(due, self.expires_on) - _MARGIN

    def __repr__(self) -> str:
        return (
            f"CachedToken(expires_on={self.expires_on}, refresh_on={self.refresh_on}, "
            f"jitter={self.jitter}, serial={self.serial})"
        )

    def is_due(self, now: float) -> bool:
        """Whether azure-core's policy would ask the credential for a new token at ``now``.

        :param float now: Unix time.
        :rtype: bool
        :return: True when a refresh is due.
        """
        return now >= self.fresh_until and is_due(self.expires_on, self.refresh_on, self._jitter, now)


def decide(
    current: CachedToken | None,
    now: float,
    *,
    min_validity: float,
    retry_not_before: float,
    background_busy: bool,
    background_allowed: bool,
    holding_expired: bool = False,
) -> Action:
    """Choose what a request does.

    :param current: the cached token for the request's key, if any.
    :param float now: Unix time.
    :keyword float min_validity: below this remaining lifetime the request waits for a new token.
    :keyword float retry_not_before: the back-off after a failed or fruitless attempt ends here.
    :keyword bool background_busy: a background refresh for this key is already running.
    :keyword bool background_allowed: a background refresh may start (the policy is open).
    :keyword bool holding_expired: ``current`` arrived already expired by this clock; it is attached
        as it is until ``retry_not_before`` (the service, whose clock may be right, decides).
    :return: the action.
    :rtype: Action
    """
    if current is None or current.expires_on <= now:
        held = holding_expired and current is not None and now < retry_not_before
        return Action.ATTACH if held else Action.INLINE
    if not current.is_due(now):
        return Action.ATTACH
    if current.expires_on - now < min_validity:
        # Still valid but nearly spent. Right after a failed or fruitless attempt, keep
        # using it rather than making every request wait on a token endpoint that just failed.
        return Action.ATTACH if now < retry_not_before else Action.INLINE
    if background_busy or now < retry_not_before:
        return Action.ATTACH
    return Action.BACKGROUND if background_allowed else Action.INLINE


def checked_token(result: Any, method: str) -> TokenLike:
    """Return ``result`` if it looks like an access token, else raise a clear error.

    The message names types only: ``result`` may hold a token string.

    :param result: what the credential returned.
    :param str method: the credential method that returned it, for the message.
    :return: ``result``.
    :rtype: ~azure.core.credentials.AccessToken or ~azure.core.credentials.AccessTokenInfo
    :raises TypeError: ``result`` has no ``str`` token or no numeric ``expires_on``.
    """
    token = getattr(result, "token", None)
    expires_on = getattr(result, "expires_on", None)
    if not isinstance(token, str) or isinstance(expires_on, bool) or not isinstance(expires_on, (int, float)):
        raise TypeError(
            f"credential.{method} returned {type(result).__name__}; expected an AccessTokenInfo or "
            "AccessToken with a str 'token' and a numeric 'expires_on'"
        )
    refresh_on = getattr(result, "refresh_on", None)
    if refresh_on is not None and (isinstance(refresh_on, bool) or not isinstance(refresh_on, (int, float))):
        raise TypeError(f"credential.{method} returned a token whose refresh_on is {type(refresh_on).__name__}")
    return result  # type: ignore[no-any-return]


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

    # __weakref__: the store holds the states that policies pin weakly (see TokenStore).
    __slots__ = (
        "__weakref__",
        "background",
        "current",
        "generation",
        "holding_expired",
        "key",
        "last_outcome",
        "last_outcome_at",
        "last_used",
        "lifetime",
        "retry_not_before",
    )

    def __init__(self, key: TokenKey | None = None) -> None:
        self.key = key  # the store's own key object, which the policies pinning this state share
        # How the last credential call for the key ended (a RefreshOutcome), and when: the health view.
        self.last_outcome: Any = None
        self.last_outcome_at: float | None = None
        self.current: CachedToken | None = None
        # Unix time a request last went past the hot path for this key (and so, with the token's
        # expiry, when the key was last of use), and how long its last token lived: the store
        # forgets a key whose token expired and that no request needed for that long.
        self.last_used = float("-inf")
        self.lifetime = 0.0
        # Bumped by every invalidation and explicit store; a refresh remembers the
        # generation it began in and may write back only if it is still current.
        self.generation = 0
        self.retry_not_before = float("-inf")
        # The cached token arrived already expired by this machine's clock (a clock ahead): it is
        # attached as it is until retry_not_before, and the credential asked again only then.
        self.holding_expired = False
        # The running background refresh, or None.
        self.background: BackgroundMark | None = None

    def forgettable(self, now: float) -> bool:
        """Whether nothing would be lost by dropping this key: no token of use, no refresh, long unused.

        :param float now: Unix time.
        :rtype: bool
        :return: True when the key's token has expired (or is gone), no background refresh runs,
            and no request has needed the key for a token lifetime (5 minutes at least) since.
        """
        current = self.current
        if self.background is not None or (current is not None and current.expires_on > now):
            return False
        # Requests attach a valid token without touching last_used, so it may have been of use
        # until it expired.
        idle_since = max(self.last_used, current.expires_on) if current is not None else self.last_used
        return now - idle_since > max(self.lifetime, DEFAULT_REFRESH_WINDOW)

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
            holding_expired=self.holding_expired,
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
            self.holding_expired = False
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
        self.holding_expired = False

    def invalidate(self, serial: int | None = None, now: float | None = None) -> bool:
        """Drop the cached token after a 401 or a claims challenge.

        :param serial: the serial of the token the rejected request carried; None drops
            whatever is cached. A 401 for a token already replaced leaves the new one alone,
            so a burst of 401s for one revoked token causes one refresh, not one each.
        :param now: Unix time, for a 401 (``serial`` given): one for a token held because it
            arrived expired leaves it held until ``retry_not_before``, or every refused request
            would call the credential again, the storm the hold bounds.
        :return: whether anything was invalidated.
        :rtype: bool
        """
        if serial is not None and (self.current is None or self.current.serial != serial):
            return False
        if serial is not None and self.holding_expired and now is not None and now < self.retry_not_before:
            return False
        self.store_explicit(None)
        return True
