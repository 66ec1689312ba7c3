"""What an operator sees of each refresh: the event handed to ``on_refresh``, and the health view.

Plain, immutable data with no token in it: scopes, tenant, times, the outcome and the error.
Loaded with the first event or health report, not on import: building the two dataclasses
costs a few milliseconds that a program with neither never pays.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._outcome import RefreshOutcome

__all__ = ["RefreshEvent", "TokenStatus"]


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
    :ivar bool cae: whether the key's token is a CAE-enabled one (``enable_cae``).
    :ivar bool cached: whether a token is cached.
    :ivar expires_in: seconds until the cached token expires (negative once it has); None if none.
    :ivar due_in: seconds until it falls due for refresh (negative once it has); None if none.
        Due means azure-core's rule (1.38.3+), with a jitter of 0-60 s drawn per token so that
        processes that got their tokens together do not refresh together: the credential's
        ``refresh_on`` plus the jitter, never past expiry; without ``refresh_on``, when under
        300 s less the jitter is left. A token whose ``refresh_on`` is 5 s away shows a
        ``due_in`` of 5 to 65 s.
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
    cae: bool = False

    @property
    def healthy(self) -> bool:
        """Whether a valid token is cached for this key.

        Requests attach it without waiting unless it has less than ``min_validity`` left; a probe
        that wants more margin reads ``expires_in`` itself.
        """
        return self.expires_in is not None and self.expires_in > 0
