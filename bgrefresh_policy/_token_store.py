"""The tokens a policy holds, per key, and the bookkeeping of their refreshes.

Thread-safe and loop-agnostic: every method is short, takes the store's lock when it
changes state, and does no I/O. The event-loop plumbing around it lives in the policy and
the runners.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo

from ._decision import MAX_REFRESH_JITTER, Action, CachedToken
from ._flight import RETRY, RefreshAbandoned, RefreshCancelled, RefreshTimedOut, Verdict
from ._key_state import BackgroundMark, Completion, KeyState, TokenKey
from ._options import RefreshOptions

__all__ = ["TokenStore"]

_LOGGER = logging.getLogger(__name__)

TokenLike = AccessToken | AccessTokenInfo

# Token serials, unique across stores so that no two cached tokens ever share one.
_SERIALS = itertools.count(1)


def _draw_jitter() -> int:
    return random.randint(0, MAX_REFRESH_JITTER)


class TokenStore:
    """Per-key tokens and refresh state, with the clock and jitter they are judged by.

    :param options: the refresh options.
    """

    def __init__(self, options: RefreshOptions) -> None:
        self.options = options
        # Seams for tests: wall clock (Unix time, as token expiry is) and the per-token jitter.
        self.clock: Callable[[], float] = time.time
        self.draw_jitter: Callable[[], int] = _draw_jitter
        # Set by the policy's close(): no background refresh starts after it.
        self.closed = False
        self._init_lock_and_states()

    def _init_lock_and_states(self) -> None:
        # Protects _states and every KeyState in it, across threads that each run a loop.
        # Held only for bookkeeping, never across an await or a credential call.
        self._lock = threading.Lock()
        self._states: dict[TokenKey, KeyState] = {}

    def _state(self, key: TokenKey) -> KeyState:
        # Caller holds _lock.
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = KeyState()
        return state

    def peek(self, key: TokenKey) -> KeyState | None:
        """The key's state, for reading (tests, inspection); None before its first token."""
        return self._states.get(key)

    def cache(self, token: TokenLike, jitter: int | None = None) -> CachedToken:
        """Wrap a credential's token with a serial and ``jitter``, or a fresh jitter if None."""
        return CachedToken(token, jitter=self.draw_jitter() if jitter is None else jitter, serial=next(_SERIALS))

    def current(self, key: TokenKey) -> CachedToken | None:
        state = self._states.get(key)
        return state.current if state is not None else None

    def attachable(self, key: TokenKey) -> CachedToken | None:
        """The token a request for ``key`` attaches as it is, without the lock; None if it has more to do."""
        state = self._states.get(key)
        if state is None:
            return None
        return state.attachable(self.clock(), self.options, background_allowed=not self.closed)

    def begin(
        self, key: TokenKey, alive: Callable[[], bool] | None = None
    ) -> tuple[Action, CachedToken | None, int, BackgroundMark | None]:
        """Decide what a request for ``key`` does; mark a background refresh as running if it starts one.

        :param key: the request's token key.
        :param alive: whether the caller's event loop is still open, kept with a background mark.
        :return: the action, the cached token, the generation a refresh belongs to, and the
            background mark when the action is :attr:`Action.BACKGROUND`.
        """
        now = self.clock()
        with self._lock:
            state = self._state(key)
            action = state.decide(now, self.options, background_allowed=not self.closed)
            if action is not Action.BACKGROUND:
                return action, state.current, state.generation, None
            generation = state.begin_background(now, alive)
            return action, state.current, generation, state.background

    def decision(self, key: TokenKey) -> tuple[Action, int]:
        """What :meth:`begin` would decide for ``key`` now, and the generation; changes nothing."""
        now = self.clock()
        with self._lock:
            state = self._state(key)
            return state.decide(now, self.options, background_allowed=not self.closed), state.generation

    def generation(self, key: TokenKey) -> int:
        with self._lock:
            return self._state(key).generation

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
        with self._lock:
            self._state(key).store_explicit(cached)
        return cached

    def invalidate(self, key: TokenKey, serial: int | None = None) -> bool:
        """Drop ``key``'s token (only if it is the one with ``serial``, when given)."""
        with self._lock:
            dropped = self._state(key).invalidate(serial)
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
    ) -> Verdict:
        """Record how a refresh ended and tell the requests waiting on it what to do.

        :param key: the refresh's token key.
        :param int generation: the generation it began in.
        :param result: the credential's token, or None.
        :param error: why it failed, or None.
        :keyword mark: its background mark, for a background refresh; None for one a request waits on.
            The mark is cleared, except on :class:`RefreshTimedOut`: that thread still runs.
        :keyword bool explicit: the caller asked for this token (``authorize_request``).
        :return: what the waiting requests do.
        :rtype: Verdict
        """
        background = mark is not None
        now = self.clock()
        cached = self.cache(result) if result is not None and error is None else None
        with self._lock:
            state = self._state(key)
            if isinstance(error, RefreshTimedOut) and state.background is not mark:
                # Its thread ended, and recorded its outcome, after the waiter gave up and before
                # this: nothing failed that is not already recorded.
                current = state.current
                return Verdict(current, None) if current is not None and current.expires_on > now else RETRY
            if mark is not None and not isinstance(error, RefreshTimedOut):
                state.end_background(mark)
            if isinstance(error, RefreshCancelled):
                return RETRY
            completion = state.complete(
                generation, cached, now, retry_delay=self.options.retry_delay, explicit=explicit
            )
            current = state.current
        if completion is Completion.STALE:
            if explicit and cached is not None:
                # The caller asked for exactly this token (authorize_request): it gets it, as from
                # azure-core, but it is not cached over what came since.
                return Verdict(cached, None)
            _LOGGER.debug("token for %s was invalidated during its refresh; result discarded", key.scopes)
            return RETRY
        if completion is Completion.FAILED:
            assert error is not None
            if isinstance(error, RefreshAbandoned):
                _LOGGER.debug("token refresh for %s abandoned: %s", key.scopes, error)
            elif background:
                _LOGGER.warning(
                    "background token refresh for %s failed (%s: %s); next attempt in %.0f s at the earliest",
                    key.scopes,
                    type(error).__name__,
                    error,
                    self.options.retry_delay,
                )
            elif current is not None and current.expires_on > now:
                _LOGGER.warning(
                    "token refresh for %s failed (%s: %s); using the current token, valid for %.0f s more",
                    key.scopes,
                    type(error).__name__,
                    error,
                    current.expires_on - now,
                )
            return Verdict(None, error)
        assert cached is not None
        if completion is Completion.NOT_NEWER:
            _LOGGER.debug(
                "credential returned no newer token for %s; next attempt in %.0f s at the earliest",
                key.scopes,
                self.options.retry_delay,
            )
            if current is not None and current.expires_on > now:
                return Verdict(current, None)
        return Verdict(cached, None)

    # --- pickling: the lock and the cached tokens stay behind ----------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"], state["_states"]
        state["closed"] = False  # a copy is a new policy; its owner closes it
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_lock_and_states()
