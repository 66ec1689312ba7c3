"""The refresh decision: a pure function of the cached token, the clock and the options.

Nothing here does I/O, takes a lock or touches an event loop, so the whole rule set
is tested with plain numbers (see ``tests/unit/test_decision.py``).
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["DEFAULT_REFRESH_WINDOW", "MAX_REFRESH_JITTER", "Action", "CachedToken", "decide"]

# azure-core's constants (azure.core.pipeline.policies._authentication); repeated here
# because they are private there and absent from older azure-core releases.
DEFAULT_REFRESH_WINDOW = 300
MAX_REFRESH_JITTER = 60


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

    The token string stays inside ``token``; ``repr`` never shows it, because
    ``AccessTokenInfo.__repr__`` does.

    :param token: what the credential returned.
    :param int jitter: seconds (0-60) added to ``refresh_on`` or taken off the refresh window, drawn per token.
    :param int serial: identifies this token for a later 401 on a request that carried it.
    """

    __slots__ = ("expires_on", "jitter", "refresh_on", "serial", "token")

    def __init__(self, token: Any, *, jitter: int, serial: int) -> None:
        self.token = token
        self.expires_on: float = token.expires_on
        # AccessToken has no refresh_on; AccessTokenInfo has an optional one.
        self.refresh_on: float | None = getattr(token, "refresh_on", None)
        self.jitter = jitter
        self.serial = serial

    def __repr__(self) -> str:
        return (
            f"CachedToken(expires_on={self.expires_on}, refresh_on={self.refresh_on}, "
            f"jitter={self.jitter}, serial={self.serial})"
        )

    def is_due(self, now: float) -> bool:
        """Whether azure-core's policy would ask the credential for a new token at ``now``.

        Same comparisons as azure-core 1.38.3+: ``refresh_on`` plus jitter (never past
        expiry) when the token has one, else less than 300 s minus jitter left.

        :param float now: Unix time.
        :rtype: bool
        :return: True when a refresh is due.
        """
        if self.expires_on <= now:
            return True
        if self.refresh_on:
            return min(self.refresh_on + self.jitter, self.expires_on) <= now
        return self.expires_on - now < DEFAULT_REFRESH_WINDOW - self.jitter


def decide(
    current: CachedToken | None,
    now: float,
    *,
    min_validity: float,
    retry_not_before: float,
    background_busy: bool,
    background_allowed: bool,
) -> Action:
    """Choose what a request does.

    :param current: the cached token for the request's key, if any.
    :param float now: Unix time.
    :keyword float min_validity: below this remaining lifetime the request waits for a new token.
    :keyword float retry_not_before: the back-off after a failed or fruitless attempt ends here.
    :keyword bool background_busy: a background refresh for this key is already running.
    :keyword bool background_allowed: a background refresh may start (the policy is open).
    :return: the action.
    :rtype: Action
    """
    if current is None or current.expires_on <= now:
        return Action.INLINE
    if not current.is_due(now):
        return Action.ATTACH
    if current.expires_on - now < min_validity:
        # Still valid but nearly spent. Right after a failed or fruitless attempt, keep
        # using it rather than making every request wait on a token endpoint that just failed.
        return Action.ATTACH if now < retry_not_before else Action.INLINE
    if background_busy or now < retry_not_before:
        return Action.ATTACH
    return Action.BACKGROUND if background_allowed else Action.INLINE
