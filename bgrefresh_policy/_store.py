"""The tokens a policy holds, per key, and the bookkeeping of their refreshes.

Thread-safe and loop-agnostic: every method is short, takes the store's lock when it
changes state, and does no I/O. The event-loop plumbing around it lives in the policy and
the runners.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from azure.core.credentials import AccessToken, AccessTokenInfo

from ._azure_core import draw_jitter
from ._backoff import backoff
from ._key_state import Action, BackgroundMark, CachedToken, Completion, KeyState, TokenKey
from ._options import RefreshOptions
from ._outcome import (
    RETRY,
    RefreshAbandoned,
    RefreshCancelled,
    RefreshOutcome,
    RefreshTimedOut,
    RefreshTimeoutError,
    Verdict,
    described,
)

__all__ = ["Finished", "TokenStore"]

_LOGGER = logging.getLogger(__name__)

TokenLike = AccessToken | AccessTokenInfo


class Finished(NamedTuple):
    """What :meth:`TokenStore.finish` recorded, for whoever observes refreshes."""

    outcome: RefreshOutcome
    at: float
    next_attempt_at: float | None
    # Why it failed: the credential's error, or what the store made of its answer (a token that
    # arrived expired); None when it did not.
    error: BaseException | None = None


_OUTCOMES = {
    Completion.STORED: RefreshOutcome.NEW_TOKEN,
    Completion.NOT_NEWER: RefreshOutcome.NOT_NEWER,
    Completion.FAILED: RefreshOutcome.FAILED,
    Completion.STALE: RefreshOutcome.STALE,
}


def _outcome(completion: Completion, error: BaseException | None) -> RefreshOutcome:
    if completion is Completion.FAILED and isinstance(error, (RefreshTimedOut, RefreshTimeoutError)):
        return RefreshOutcome.TIMED_OUT
    return _OUTCOMES[completion]


def _next_attempt(state: KeyState, completion: Completion) -> float | None:
    # Caller holds _lock.
    if completion in (Completion.FAILED, Completion.NOT_NEWER):
        return state.retry_not_before
    if completion is Completion.STORED and state.current is not None:
        return state.retry_not_before if state.holding_expired else state.current.fresh_until
    return None


# Token serials, unique across stores so that no two cached tokens ever share one.
_SERIALS = itertools.count(1)
# Seconds between looks for keys to forget: often enough that memory follows the live keys,
# seldom enough that the look costs nothing measurable with thousands of keys.
_SWEEP_EVERY = 60.0


class TokenStore:
    """Per-key tokens and refresh state, with the clock and jitter they are judged by.

    One store serves every policy that shares a credential (see :mod:`._sharing`). A policy pins
    the state of its own key (:meth:`pin`) and reads it on the hot path without hashing a key;
    a pinned state lives as long as a policy holds it. Other keys are forgotten once their token
    has expired and no request has needed them for a token lifetime, so memory follows the live
    keys.

    :param options: the refresh options.
    """

    __slots__ = ("_carriers", "_kept", "_lock", "_next_sweep", "_pinned", "clock", "draw_jitter", "hints", "options")

    def __init__(self, options: RefreshOptions) -> None:
        self.options = options
        # Seams for tests: wall clock (Unix time, as token expiry is) and the per-token jitter.
        self.clock: Callable[[], float] = time.time
        self.draw_jitter: Callable[[], int] = draw_jitter
        self._init_lock_and_states()

    def _init_lock_and_states(self) -> None:
        # Protects _kept, _pinned, _next_sweep and every KeyState in them, across threads that each
        # run a loop. Held only for bookkeeping, never across an await, a credential call or a log call.
        self._lock = threading.Lock()
        # The states the store keeps alive: every key used, until the sweep forgets it.
        self._kept: dict[TokenKey, KeyState] = {}
        # The states policies pin, which they keep alive, even once the sweep has forgotten them.
        self._pinned: dict[TokenKey, weakref.ref[KeyState]] = {}
        self._next_sweep = float("-inf")
        # Authorization value -> the keys a token with it was stored for: a 401 finds the token it
        # refused without a look at every key (thousands, in a multi-tenant service). Entries may
        # be stale (checked on use); the sweep drops those whose token is gone.
        self._carriers: dict[str, list[TokenKey]] = {}
        # What the families' challenges taught: (service origin, a policy's first key) -> the key
        # to use there instead. Read without the lock (one dict read); written under the GIL.
        self.hints: dict[tuple[str, TokenKey], TokenKey] = {}

    def _find(self, key: TokenKey) -> KeyState | None:
        # Reads two dicts, each read atomic: safe without the lock.
        state = self._kept.get(key)
        if state is None:
            ref = self._pinned.get(key)
            state = ref() if ref is not None else None
        return state

    def _state(self, key: TokenKey) -> KeyState:
        # Caller holds _lock.
        state = self._find(key)
        if state is None:
            state = KeyState(key)
        self._kept[key] = state
        return state

    def _sweep(self, now: float) -> None:
        # Caller holds _lock. A forgotten state that a policy pins is still found through _pinned.
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY
        for key in [key for key, state in self._kept.items() if state.forgettable(now)]:
            del self._kept[key]
        self._pinned = {key: ref for key, ref in self._pinned.items() if ref() is not None}
        self._carriers = {header: keys for header, keys in self._carriers.items() if self._carrying(header, keys)}

    def _carrying(self, header: str, keys: list[TokenKey]) -> list[tuple[TokenKey, int]]:
        """Which of ``keys`` still hold the token with ``header``, and its serial (caller holds _lock).

        An expired token counts: one that arrived expired is attached (see ``_hold_expired``).
        """
        carried = []
        for key in keys:
            state = self._find(key)
            current = state.current if state is not None else None
            if current is not None and current.header == header:
                carried.append((key, current.serial))
        return carried

    def _index(self, key: TokenKey, cached: CachedToken) -> None:
        # Caller holds _lock.
        keys = self._carriers.setdefault(cached.header, [])
        if key not in keys:
            keys.append(key)

    def _all(self) -> dict[TokenKey, KeyState]:
        # Caller holds _lock.
        pinned = {key: state for key, ref in self._pinned.items() if (state := ref()) is not None}
        return {**pinned, **self._kept}

    def after_fork(self) -> None:
        """In a forked child: a new lock, and no refresh running (the parent's threads and tasks are not here).

        The tokens stay: a valid one is used at once. A lock another parent thread held at the fork
        would never be released here.
        """
        self._lock = threading.Lock()
        for state in self._all().values():
            state.end_background()
            if state.current is not None:
                # A jitter of its own, or every worker would refresh at the same moment: a burst
                # against a token endpoint that throttles per host (IMDS).
                state.current.jitter = self.draw_jitter()

    def pin(self, key: TokenKey) -> KeyState:
        """The state of ``key``, which lives at least as long as the caller holds it.

        :param key: a policy's own key.
        :return: the key's state, shared with every other holder.
        """
        with self._lock:
            state = self._state(key)
            ref = self._pinned.get(key)
            if ref is None or ref() is not state:
                self._pinned[key] = weakref.ref(state)
            return state

    def states(self) -> dict[TokenKey, KeyState]:
        """Every key's state the store or a policy holds (for tests and inspection)."""
        with self._lock:
            return self._all()

    def peek(self, key: TokenKey) -> KeyState | None:
        """The key's state, for reading (tests, inspection); None for a key never used, or forgotten."""
        return self._find(key)

    def cache(self, token: TokenLike, jitter: int | None = None) -> CachedToken:
        """Wrap a credential's token with a serial and ``jitter``, or a fresh jitter if None."""
        return CachedToken(token, jitter=self.draw_jitter() if jitter is None else jitter, serial=next(_SERIALS))

    def current(self, key: TokenKey) -> CachedToken | None:
        state = self._find(key)
        return state.current if state is not None else None

    def attachable(self, state: KeyState, *, background_allowed: bool = True) -> CachedToken | None:
        """The token a request attaches as it is from ``state``, without the lock; None if it has more to do.

        :param state: a pinned key state.
        :keyword bool background_allowed: whether the caller may start a background refresh.
        """
        return state.attachable(self.clock(), self.options, background_allowed=background_allowed)

    def begin(
        self, key: TokenKey, alive: Callable[[], bool] | None = None, *, background_allowed: bool = True
    ) -> tuple[Action, CachedToken | None, int, BackgroundMark | None]:
        """Decide what a request for ``key`` does; mark a background refresh as running if it starts one.

        :param key: the request's token key.
        :param alive: whether the caller's event loop is still open, kept with a background mark.
        :keyword bool background_allowed: whether the caller may start a background refresh (not
            once its policy is closed).
        :return: the action, the cached token, the generation a refresh belongs to, and the
            background mark when the action is :attr:`Action.BACKGROUND`.
        """
        now = self.clock()
        with self._lock:
            self._sweep(now)
            state = self._state(key)
            state.last_used = now
            action = state.decide(now, self.options, background_allowed=background_allowed)
            if action is not Action.BACKGROUND:
                return action, state.current, state.generation, None
            generation = state.begin_background(now, alive)
            return action, state.current, generation, state.background

    def decision(self, key: TokenKey, *, background_allowed: bool = True) -> tuple[Action, int]:
        """What :meth:`begin` would decide for ``key`` now, and the generation; changes nothing."""
        now = self.clock()
        with self._lock:
            state = self._state(key)
            return state.decide(now, self.options, background_allowed=background_allowed), state.generation

    def generation(self, key: TokenKey) -> int:
        """The key's generation, for an explicit refresh about to start: the key is in use from now."""
        now = self.clock()
        with self._lock:
            state = self._state(key)
            state.last_used = now  # not forgotten while the caller's credential call runs
            return state.generation

    def still_valid(self, key: TokenKey) -> CachedToken | None:
        """The cached token if it has not expired."""
        current = self.current(key)
        return current if current is not None and current.expires_on > self.clock() else None

    def store(self, key: TokenKey, token: TokenLike, *, jitter: int | None = None) -> CachedToken:
        """Cache ``token`` for ``key`` as if the caller asked for it: refreshes begun earlier become stale.

        :param key: the token key.
        :param token: the token.
        :keyword jitter: the jitter to judge it by; None draws one.
        :return: the cached token.
        """
        cached = self.cache(token, jitter)
        now = self.clock()
        with self._lock:
            state = self._state(key)
            state.store_explicit(cached)
            state.last_used, state.lifetime = now, cached.expires_on - now
            self._index(key, cached)
        return cached

    def invalidate_carrying(self, authorization: str) -> None:
        """Drop the cached token that an ``Authorization`` header carried, for whichever key holds it.

        :param str authorization: the rejected request's header, ``"Bearer <token>"``.
        """
        with self._lock:
            keys = self._carriers.get(authorization)  # kept: a held token outlives a 401 (see invalidate)
            if keys is None:  # not a token of this store's (another credential's, or long gone)
                return
            carried = self._carrying(authorization, keys)
        for key, serial in carried:
            self.invalidate(key, serial)

    def invalidate(self, key: TokenKey, serial: int | None = None) -> bool:
        """Drop ``key``'s token (only if it is the one with ``serial``, when given: a 401 for it).

        A 401 for a token held because it arrived expired leaves it held (see ``KeyState.invalidate``).
        """
        now = self.clock()
        with self._lock:
            dropped = self._state(key).invalidate(serial, now)
        if dropped and serial is not None:
            _LOGGER.debug("token for %s rejected with 401; dropped", key.scopes)
        return dropped

    def finish(
        self,
        key: TokenKey,
        generation: int,
        result: TokenLike | None,
        error: BaseException | None,
        *,
        mark: BackgroundMark | None,
        explicit: bool,
        observe: Callable[[Finished], None] | None = None,
    ) -> Verdict:
        """Record how a refresh ended and tell the requests waiting on it what to do.

        :param key: the refresh's token key.
        :param int generation: the generation it began in.
        :param result: the credential's token, or None.
        :param error: why it failed, or None.
        :keyword mark: its background mark, for a background refresh; None for one a request waits on.
            The mark is cleared, except on :class:`RefreshTimedOut`: that thread still runs.
        :keyword bool explicit: the caller asked for this token (``authorize_request``).
        :keyword observe: called, outside the lock, with what was recorded (for events and telemetry).
        :return: what the waiting requests do.
        :rtype: Verdict
        """
        now = self.clock()
        cached = self.cache(result) if result is not None and error is None else None
        with self._lock:
            state = self._state(key)
            early = self._settle_mark(state, mark, error, now)
            if early is not None:
                if isinstance(error, RefreshCancelled):
                    finished: Finished | None = self._note(state, RefreshOutcome.CANCELLED, now, None, error)
                else:
                    finished = None  # a late timeout for an outcome already recorded
            else:
                completion, current, delay = self._record(key, generation, cached, now, explicit, error)
                outcome = _outcome(completion, error)
                if state.holding_expired and completion is Completion.STORED:
                    outcome = RefreshOutcome.EXPIRED_ON_ARRIVAL
                finished = self._note(state, outcome, now, _next_attempt(state, completion), error)
        if early is not None:
            if observe is not None and finished is not None:
                observe(finished)
            return early
        self._log(
            key,
            completion,
            error,
            background=mark is not None,
            explicit=explicit,
            current=current,
            now=now,
            delay=delay,
        )
        if observe is not None and finished is not None:
            observe(finished)
        return self._verdict(completion, cached, current, error, explicit=explicit, now=now)

    @staticmethod
    def _note(
        state: KeyState,
        outcome: RefreshOutcome,
        now: float,
        next_attempt_at: float | None,
        error: BaseException | None = None,
    ) -> Finished:
        # Caller holds _lock.
        state.last_outcome, state.last_outcome_at = outcome, now
        return Finished(outcome, now, next_attempt_at, error)

    @staticmethod
    def _settle_mark(
        state: KeyState, mark: BackgroundMark | None, error: BaseException | None, now: float
    ) -> Verdict | None:
        """Clear a background refresh's mark; the verdict, if the outcome needs no recording."""
        # Caller holds _lock.
        if isinstance(error, RefreshTimedOut):
            if state.background is not mark:
                # Its thread ended, and recorded its outcome, after the waiter gave up and before
                # this: nothing failed that is not already recorded.
                current = state.current
                return Verdict(current, None) if current is not None and current.expires_on > now else RETRY
            return None  # the thread runs on and keeps the mark
        if mark is not None:
            state.end_background(mark)
        return RETRY if isinstance(error, RefreshCancelled) else None

    def _record(
        self,
        key: TokenKey,
        generation: int,
        cached: CachedToken | None,
        now: float,
        explicit: bool,
        error: BaseException | None,
    ) -> tuple[Completion, CachedToken | None, float]:
        # Caller holds _lock.
        state = self._state(key)
        delay = backoff(error, state.current, now, self.options)
        if cached is not None and cached.expires_on <= now and not explicit:
            completion = self._hold_expired(state, generation, cached, now, delay)
        else:
            completion = state.complete(generation, cached, now, retry_delay=delay, explicit=explicit)
        if completion is Completion.STORED and cached is not None:
            state.lifetime = cached.expires_on - now
            self._index(key, cached)
        return completion, state.current, delay

    @staticmethod
    def _hold_expired(state: KeyState, generation: int, cached: CachedToken, now: float, delay: float) -> Completion:
        """Record a token that arrived already expired by this clock (a clock ahead, usually).

        With no valid token to keep, it is attached as it is, as azure-core attaches it (the service
        judges it by its own clock), and held until ``delay`` has passed: the credential is asked
        again then, not on every request (see :func:`~bgrefresh_policy._key_state.decide`).
        """
        # Caller holds _lock.
        current = state.current
        if generation != state.generation or (current is not None and current.expires_on > now):
            return state.complete(generation, cached, now, retry_delay=delay)  # stale, or not newer
        state.current = cached
        state.holding_expired = True
        state.retry_not_before = now + delay
        return Completion.STORED

    def _log(
        self,
        key: TokenKey,
        completion: Completion,
        error: BaseException | None,
        *,
        background: bool,
        explicit: bool,
        current: CachedToken | None,
        now: float,
        delay: float,
    ) -> None:
        """One line per outcome worth telling: a failure at WARNING when requests can go on, else DEBUG."""
        if completion is Completion.STORED and current is not None and current.expires_on <= now:
            _LOGGER.warning(
                "token for %s arrived expired (%.0f s before this machine's clock, which is likely ahead: check it); "
                "attached as it is, and asked for again in %.0f s",
                key.scopes,
                now - current.expires_on,
                delay,
            )
        elif completion is Completion.STALE:
            _LOGGER.debug("token for %s was invalidated during its refresh; result discarded", key.scopes)
        elif completion is Completion.NOT_NEWER:
            _LOGGER.debug(
                "credential returned no newer token for %s; next attempt in %.0f s at the earliest",
                key.scopes,
                delay,
            )
        elif completion is Completion.FAILED:
            assert error is not None
            if isinstance(error, RefreshAbandoned):
                _LOGGER.debug("token refresh for %s abandoned (%s)", key.scopes, described(error))
            elif explicit:  # the caller's own request (claims): it gets the error, not the current token
                _LOGGER.debug("token request for %s failed (%s); raised to its caller", key.scopes, described(error))
            elif background:
                _LOGGER.warning(
                    "background token refresh for %s failed (%s); next attempt in %.0f s at the earliest",
                    key.scopes,
                    described(error),
                    delay,
                )
            elif current is not None and current.expires_on > now:
                _LOGGER.warning(
                    "token refresh for %s failed (%s); using the current token, valid for %.0f s more",
                    key.scopes,
                    described(error),
                    current.expires_on - now,
                )

    @staticmethod
    def _verdict(
        completion: Completion,
        cached: CachedToken | None,
        current: CachedToken | None,
        error: BaseException | None,
        *,
        explicit: bool,
        now: float,
    ) -> Verdict:
        if completion is Completion.STALE:
            # The caller asked for exactly this token (authorize_request): it gets it, as from
            # azure-core, but it is not cached over what came since.
            return Verdict(cached, None) if explicit and cached is not None else RETRY
        if completion is Completion.FAILED:
            assert error is not None
            return Verdict(None, error, error.__traceback__)
        if completion is Completion.NOT_NEWER and current is not None and current.expires_on > now:
            return Verdict(current, None)
        return Verdict(cached, None)

    # --- pickling: the lock and the cached tokens stay behind ----------------------------

    def __getstate__(self) -> dict[str, Any]:
        # A copy is a new, empty store: no token, no lock.
        return {"options": self.options, "clock": self.clock, "draw_jitter": self.draw_jitter}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        self._init_lock_and_states()
