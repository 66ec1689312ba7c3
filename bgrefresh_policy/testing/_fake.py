"""What the sync and the async fake credential share: the tokens they issue, their records, their gate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import AccessTokenInfo

__all__ = ["DUE", "EXPIRING", "FRESH", "FakeCall", "FakeCredentialBase", "Gate"]

#: Seconds of life for a token that is not due: the default.
FRESH = 3600.0
#: Seconds of life for a token that is due as soon as it arrives, whatever the 0-60 s jitter
#: (under azure-core's 300 s window minus the largest jitter), yet with more than the default
#: ``min_validity`` (60 s) left: the next call gets it at once and starts one background refresh.
DUE = 200.0
#: Seconds of life for a token under the default ``min_validity`` (60 s): a call that finds it
#: waits for a new one.
EXPIRING = 30.0


@dataclass(frozen=True)
class FakeCall:
    """One call of a fake credential: what it was asked for.

    :ivar scopes: the scopes.
    :ivar claims: the claims, or None.
    :ivar tenant_id: the tenant, or None.
    :ivar bool enable_cae: whether a CAE token was asked for.
    """

    scopes: tuple[str, ...]
    claims: str | None = None
    tenant_id: str | None = None
    enable_cae: bool = False


class Gate:
    """One :meth:`~FakeCredentialBase.hold` (or :meth:`~FakeCredentialBase.hang`): calls wait until it opens.

    :keyword bool hung: whether the calls that waited raise when it opens instead of answering.
    """

    def __init__(self, *, hung: bool) -> None:
        self.hung = hung
        self.opened = False


class FakeCredentialBase:
    """The state of a fake credential, sync or async; see :class:`~bgrefresh_policy.testing.FakeCredential`.

    Every method may be called from any thread.

    :keyword float lifetime: seconds each token is valid from its issue (see :data:`FRESH`,
        :data:`DUE`, :data:`EXPIRING`).
    :keyword refresh_in: seconds from its issue to each token's ``refresh_on``; None: no ``refresh_on``.
    :paramtype refresh_in: float or None
    :keyword clock: the Unix time tokens are issued at; ``time.time`` (which time-machine moves) by default.
    :paramtype clock: ~collections.abc.Callable[[], float]
    """

    def __init__(
        self, *, lifetime: float = FRESH, refresh_in: float | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._lock = threading.Lock()
        self._lifetime = lifetime
        self._refresh_in = refresh_in
        self._clock = clock
        self._error: BaseException | None = None
        self._gate: Gate | None = None
        self._calls: list[FakeCall] = []
        self._issued: list[AccessTokenInfo] = []
        self._issued_lifetime: float | None = None
        self._waiting = 0
        self.cancelled = 0
        self.closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(calls={len(self._calls)}, issued={len(self._issued)}, waiting={self._waiting})"

    # --- what the test reads -------------------------------------------------------------

    @property
    def calls(self) -> list[FakeCall]:
        """Every call so far, in order, answered or not."""
        with self._lock:
            return list(self._calls)

    @property
    def call_count(self) -> int:
        """How many calls were made (answered, failed, held, hung or cancelled)."""
        return len(self._calls)

    @property
    def issued(self) -> list[AccessTokenInfo]:
        """Every token handed out, in order: the N-th has the value ``fake-token-N``."""
        with self._lock:
            return list(self._issued)

    @property
    def waiting(self) -> int:
        """How many calls wait at the gate now."""
        return self._waiting

    # --- what the test sets --------------------------------------------------------------

    def issue(self, *, lifetime: float, refresh_in: float | None = None) -> None:
        """Give the tokens of calls answered from now on (held ones included) this lifetime.

        :keyword float lifetime: seconds each token is valid (:data:`FRESH`, :data:`DUE`, :data:`EXPIRING`).
        :keyword refresh_in: seconds to its ``refresh_on``; None: no ``refresh_on``.
        :paramtype refresh_in: float or None
        """
        with self._lock:
            self._lifetime, self._refresh_in = lifetime, refresh_in

    def fail(self, error: BaseException) -> None:
        """Make every call answered from now on (held ones included) raise ``error``, until :meth:`succeed`.

        :param error: the exception to raise, e.g. ``ClientAuthenticationError("offline")``.
        """
        with self._lock:
            self._error = error

    def succeed(self) -> None:
        """Answer with tokens again after :meth:`fail`."""
        with self._lock:
            self._error = None

    def hold(self) -> None:
        """Make calls from now on wait until :meth:`release`, then answer (a token, or the error of :meth:`fail`)."""
        self._close_gate(hung=False)

    def hang(self) -> None:
        """Make calls from now on wait without answering: until cancelled (async), or until :meth:`release`,
        which makes each raise ``TimeoutError`` (a thread cannot be cancelled)."""
        self._close_gate(hung=True)

    def release(self) -> None:
        """Let the calls waiting at the gate go on, and later calls answer at once."""
        with self._lock:
            gate, self._gate = self._gate, None
            if gate is not None:
                gate.opened = True
                self._wake()

    # --- for the sync and async classes ----------------------------------------------------

    def _close_gate(self, *, hung: bool) -> None:
        with self._lock:
            if self._gate is not None:
                raise RuntimeError("the fake credential is held already: release() it first")
            self._gate = Gate(hung=hung)

    def _wake(self) -> None:
        """Tell whoever waits on this credential that something changed; called with the lock held."""
        raise NotImplementedError

    def _arrive(self, scopes: tuple[str, ...], options: Mapping[str, Any]) -> Gate | None:
        """Record a call; the gate it must wait at, if the credential is held."""
        call = FakeCall(
            scopes,
            claims=options.get("claims"),
            tenant_id=options.get("tenant_id"),
            enable_cae=bool(options.get("enable_cae")),
        )
        with self._lock:
            self._calls.append(call)
            self._wake()
            if self._gate is not None:
                self._waiting += 1
            return self._gate

    def _left(self, gate: Gate | None) -> None:
        """A call stopped waiting at ``gate``."""
        if gate is not None:
            with self._lock:
                self._waiting -= 1

    def _answer(self, gate: Gate | None) -> AccessTokenInfo:
        """The token a call gets once through its gate.

        :raises TimeoutError: the call hung, and was released.
        :raises BaseException: the error of :meth:`fail`.
        """
        with self._lock:
            if gate is not None and gate.hung:
                raise TimeoutError("the fake credential hung, and release() ended the call")
            if self._error is not None:
                raise self._error
            token = self._next_token()
            self._issued.append(token)
            self._issued_lifetime = self._lifetime
            return token

    def _next_token(self) -> AccessTokenInfo:
        """The next token (caller holds the lock): valid ``lifetime`` from now, to the second.

        A token endpoint's next token expires later than the last; one with the same expiry reads
        as a credential answering from its own cache, which this library keeps the old token for.
        So a token issued with the same lifetime within the second of the one before expires (and
        is due) a second after it.
        """
        issued_at = self._clock()
        expires_on = int(issued_at + self._lifetime)
        if self._issued and self._issued_lifetime == self._lifetime and expires_on <= self._issued[-1].expires_on:
            expires_on = self._issued[-1].expires_on + 1
            issued_at = expires_on - self._lifetime
        refresh_on = int(issued_at + self._refresh_in) if self._refresh_in is not None else None
        return AccessTokenInfo(f"fake-token-{len(self._issued) + 1}", expires_on, refresh_on=refresh_on)

    @staticmethod
    def _options(claims: str | None, tenant_id: str | None, enable_cae: bool) -> dict[str, Any]:
        return {"claims": claims, "tenant_id": tenant_id, "enable_cae": enable_cae}
