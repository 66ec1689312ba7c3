"""What an operator sees of each refresh: the event handed to ``on_refresh``, and the health view.

Plain, immutable data with no token in it: scopes, tenant, times, the outcome and the error.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["RefreshEvent", "RefreshOutcome", "TokenStatus", "retry_after"]


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
    CANCELLED = "cancelled"
    """The policy's ``close()`` cancelled the call (or its event loop ended first): nothing recorded."""


@dataclass(frozen=True)
class RefreshEvent:
    """One credential call a policy made, once it ended. Never holds the token.

    :ivar scopes: the scopes asked for.
    :ivar tenant_id: the tenant asked for, or None for the credential's own.
    :ivar bool background: whether requests went on without waiting for it.
    :ivar float started_at: Unix time the call began.
    :ivar float ended_at: Unix time it ended.
    :ivar outcome: how it ended.
    :ivar error: what the credential raised (or the timeout), for ``FAILED`` and ``TIMED_OUT``.
    :ivar validity_left: seconds the token in use had left when the call began; None if there
        was none.
    :ivar next_attempt_at: Unix time of the earliest next refresh of this key: when the new token
        falls due, or the end of the back-off; None if the call was cancelled or discarded.
    """

    scopes: tuple[str, ...]
    tenant_id: str | None
    background: bool
    started_at: float
    ended_at: float
    outcome: RefreshOutcome
    error: BaseException | None
    validity_left: float | None
    next_attempt_at: float | None

    @property
    def duration(self) -> float:
        """Seconds the call took."""
        return self.ended_at - self.started_at


@dataclass(frozen=True)
class TokenStatus:
    """The health of one token key, as the policies' ``token_status()`` reports it. Never holds the token.

    :ivar scopes: the key's scopes.
    :ivar tenant_id: the key's tenant, or None.
    :ivar bool cached: whether a token is cached.
    :ivar expires_in: seconds until the cached token expires (negative once it has); None if none.
    :ivar due_in: seconds until it falls due for refresh (negative once it has); None if none.
    :ivar bool refreshing: whether a background refresh is running.
    :ivar last_outcome: how the last credential call for the key ended, or None.
    :ivar last_outcome_at: Unix time it ended, or None.
    :ivar backoff_until: Unix time before which no background refresh starts, or None.
    """

    scopes: tuple[str, ...]
    tenant_id: str | None
    cached: bool
    expires_in: float | None
    due_in: float | None
    refreshing: bool
    last_outcome: RefreshOutcome | None
    last_outcome_at: float | None
    backoff_until: float | None

    @property
    def healthy(self) -> bool:
        """Whether a valid token is cached for this key.

        Requests attach it without waiting unless it has less than ``min_validity`` left; a probe
        that wants more margin reads ``expires_in`` itself.
        """
        return self.expires_in is not None and self.expires_in > 0


def retry_after(error: BaseException | None, now: float) -> float | None:
    """Seconds an HTTP ``Retry-After`` carried by ``error`` asks to wait, or None.

    azure-core's ``HttpResponseError`` (and ``ClientAuthenticationError``) carry the response;
    a credential may also raise its own error from one (``__cause__``). Both the delay-seconds and
    the HTTP-date forms are read.

    :param error: the refresh's error.
    :param float now: Unix time, for the HTTP-date form.
    :return: the seconds, at least 0; None without a readable ``Retry-After``.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        value = _header(getattr(error, "response", None))
        if value is not None:
            return _seconds(value, now)
        error = error.__cause__ or error.__context__
    return None


def _header(response: Any) -> str | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("Retry-After")
    except Exception:  # noqa: BLE001 - a response object of some other shape: no header
        return None
    return value if isinstance(value, str) else None


def _seconds(value: str, now: float) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        import email.utils  # only for the rare HTTP-date form: not on import

        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
