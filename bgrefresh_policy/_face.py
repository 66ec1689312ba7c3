"""What every face of a credential's engine shares: policies, providers and credential wrappers.

A face holds the engine of its credential (:class:`~bgrefresh_policy._sharing.Shared`: the
store of tokens per key, the runners, the idle timers) and its own options: its observers
(``on_refresh``), whether it refreshes while idle, and whether it is closed. It turns the
:class:`~bgrefresh_policy._flow.Refresh` commands the flows yield into credential calls on a
runner, records how they end, and reports the engine's health. The drivers for threads
(:mod:`._face_sync`) and event loops (:mod:`._face_async`) are built on it.
"""

from __future__ import annotations

import functools
import sys
import weakref
from collections.abc import Callable, Collection, Hashable
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken, AccessTokenInfo

# The event types by their public names, which load them when first resolved (see _events).
import bgrefresh_policy

from ._flow import Refresh
from ._key_state import Action, BackgroundMark, KeyState, TokenKey
from ._outcome import Finish, Recorded
from ._store import Finished, TokenStore
from ._watch import Observers, Watch, telemetry_only

if TYPE_CHECKING:
    from ._runners._protocols import BackgroundRunner
    from ._sharing import Shared

__all__ = ["LONGEST_IDLE_SLEEP", "LOOK_AGAIN", "Face", "Watched", "flight_key", "refresh_name", "weakly"]

TokenLike = AccessToken | AccessTokenInfo
# Seconds an idle timer waits at least: the token may be a hair short of due (azure-core's rule is
# strict), a refresh may be held, a credential may fail at once, and a timer must never spin.
LOOK_AGAIN = 1.0
# Seconds an idle timer sleeps at most. Timers sleep on the monotonic clock, tokens expire by the
# wall clock: waking at least once a minute follows a wall-clock step (a VM resumed, NTP) while the
# token is still in its background window (some 180 s wide with the default options).
LONGEST_IDLE_SLEEP = 60.0
_PAST_DUE = 0.01


def is_wrapper(credential: Any) -> bool:
    """Whether ``credential`` is a ``BackgroundRefreshCredential``, without importing its module:
    a program that never made one never loads it."""
    module = sys.modules.get("bgrefresh_policy._credential_face")
    return module is not None and isinstance(credential, module.CredentialFace)


def refresh_name(key: TokenKey) -> str:
    """The name of the task or thread that refreshes ``key``'s token, as debuggers and thread dumps show it."""
    return f"bgrefresh token refresh for {' '.join(key.scopes)}"


def weakly(method: Callable[..., object], *args: Any) -> Callable[[], None]:
    """``method(*args)`` as a callable that holds ``method``'s object weakly (an idle timer's).

    A face (a policy, a credential) dropped without ``close()`` is then collected, and its timers find nothing to do.
    """
    ref = weakref.WeakMethod(method)

    def call() -> None:
        bound = ref()
        if bound is not None:
            bound(*args)

    return call


# What watches one credential call: the face's observers and the call's watch; None if nothing.
Watched = tuple[Observers, Watch] | None


def _status(key: TokenKey, state: KeyState, now: float) -> bgrefresh_policy.TokenStatus:
    from ._events import TokenStatus  # with the first health report: see _events

    current = state.current
    backoff = state.retry_not_before if state.retry_not_before > now else None
    return TokenStatus(
        scopes=key.scopes,
        tenant_id=key.tenant_id,
        cae=key.cae,
        cached=current is not None,
        expires_in=current.expires_on - now if current is not None else None,
        due_in=current.fresh_until - now if current is not None else None,
        refreshing=state.background is not None,
        last_outcome=state.last_outcome,
        last_outcome_at=state.last_outcome_at,
        backoff_until=backoff,
    )


def flight_key(key: TokenKey, generation: int, kwargs: dict[str, Any]) -> Hashable:
    """What requests that may share a credential call look it up by.

    Plain refreshes of one key and generation share one; an explicit request shares only
    with one asking with the same arguments (claims, tenant_id, ...).

    :param key: the token key.
    :param int generation: the key's generation.
    :param dict kwargs: the arguments for the credential.
    :return: a hashable key, unique when the arguments are not hashable.
    """
    if not kwargs:
        return (key, generation)
    try:
        frozen = tuple(sorted(kwargs.items()))
        hash(frozen)
    except TypeError:
        return object()  # unhashable arguments: never shared
    return (key, generation, frozen)


class Face:
    """The engine's side of a policy, provider or credential wrapper: refreshes, health, idle timers.

    Subclasses set ``_shared`` and ``_store`` (the engine, and its store) before any refresh.
    """

    _shared: Shared
    _store: TokenStore
    # The credential the face calls (a wrapper's is the one it wraps).
    _credential: Any
    #: True once ``close()`` has run: no background refresh starts for this face from then on.
    closed = False
    # The on_refresh callback's watcher (None: only OpenTelemetry, if installed, watches), and
    # whether a token falling due while nothing asks for it is refreshed anyway.
    _observers: Observers | None = None
    _refresh_when_idle = False

    def _start_idle(self) -> None:
        """With ``refresh_when_idle``: watch the face's keys, whoever refreshes them, and arm their
        timers now where a token is there already (another face on the credential fetched it)."""
        if self._refresh_when_idle:
            self._shared.add_idle(self)
            for key in self._idle_keys():
                self._arm_idle(key)

    def _new_runtime(self) -> None:
        """Take the engine's runners, from ``_shared``: its thread runner, or its runner per event loop."""
        raise NotImplementedError

    def _credential_method(self) -> str:
        return "get_token_info" if hasattr(self._credential, "get_token_info") else "get_token"

    def _refresh_parts(self, command: Refresh) -> tuple[Hashable, dict[str, Any], Finish, Watched]:
        """What carrying out ``command`` takes: its flight key, the credential's arguments, its
        finisher, and what watches the call (None if nothing does)."""
        key, generation = command.key, command.generation
        # A plain refresh of a tenant's key asks for that tenant (see _follow).
        plain: dict[str, Any] = {"tenant_id": key.tenant_id} if key.tenant_id else {}
        if key.cae:
            plain["enable_cae"] = True
        kwargs = command.kwargs if command.kwargs is not None else plain
        watched = self._watch(key, background=command.background)
        finish = self._finisher(key, generation, mark=command.mark, explicit=command.explicit, watched=watched)
        if command.explicit:
            # An explicit call shares only with one asking with the same arguments.
            return ("explicit", flight_key(key, generation, kwargs)), kwargs, finish, watched
        return flight_key(key, generation, kwargs), kwargs, finish, watched

    def _watch(self, key: TokenKey, *, background: bool) -> Watched:
        observers = self._observers or telemetry_only()
        if observers is None:
            return None
        store = self._store
        return observers, observers.watch(key, background=background, now=store.clock(), current=store.current(key))

    def _finisher(
        self,
        key: TokenKey,
        generation: int,
        *,
        mark: BackgroundMark | None = None,
        explicit: bool = False,
        watched: Watched = None,
    ) -> Finish:
        """What records the end of a refresh of ``key`` begun in ``generation``."""

        def finish(result: TokenLike | None, error: BaseException | None) -> Recorded:
            finished: list[Finished] = []
            observe = finished.append if watched is not None else None
            verdict = self._store.finish(key, generation, result, error, mark=mark, explicit=explicit, observe=observe)
            return Recorded(verdict, functools.partial(self._refreshed, key, watched, finished))

        return finish

    def _refreshed(self, key: TokenKey, watched: Watched, finished: list[Finished]) -> None:
        """Once a refresh of ``key`` has settled: arm the idle timers of every policy on the key, this
        one's and the others', and tell the observers."""
        for policy in self._shared.idle_policies():
            if policy._idle_timer_for(key):
                policy._arm_idle(key)
        if watched is not None and finished:
            observers, watch = watched
            observers.call_ended(watch, finished[0], finished[0].error)

    # --- operating it: the health view, and refreshing while idle -------------------------

    def token_status(self) -> list[bgrefresh_policy.TokenStatus]:
        """The health of every token the credential's engine holds, as plain data; never the tokens.

        The engine is shared by every policy, provider and credential wrapper on the same
        credential object (see ``share_tokens``), so this covers the keys any of them used. For
        readiness probes: a key whose ``healthy`` is False has no valid token, and its next
        request waits for the credential.

        :return: one :class:`~bgrefresh_policy.TokenStatus` per key, sorted by scopes, tenant and CAE.
        :rtype: list[~bgrefresh_policy.TokenStatus]
        """
        now = self._store.clock()
        states = self._store.states()
        report = [_status(key, state, now) for key, state in states.items()]
        return sorted(report, key=lambda status: (status.scopes, status.tenant_id or "", status.cae))

    def _idle_timer_for(self, key: TokenKey) -> bool:
        """Whether finishing a refresh of ``key`` arms an idle timer of this face: only for the keys it
        keeps fresh (:meth:`_idle_keys`), never for those a claims challenge used once."""
        return self._refresh_when_idle and not self.closed and key in self._idle_keys()

    def _idle_keys(self) -> Collection[TokenKey]:
        """The keys this face keeps fresh while idle (``refresh_when_idle``)."""
        raise NotImplementedError

    def _idle_at(self, key: TokenKey) -> float | None:
        """When an idle refresh of ``key`` is next due (``refresh_when_idle``); None to stop.

        When its token falls due, or its back-off ends; never once requests would have to wait
        for a new token anyway (``min_validity`` before expiry), nor for an expired token: a dead
        token endpoint is not retried forever.
        """
        state = self._store.peek(key)
        current = state.current if state is not None else None
        if state is None or current is None:
            return None
        # Just past fresh_until, which is a hair before azure-core's (strict) due moment.
        at = max(current.fresh_until + _PAST_DUE, state.retry_not_before)
        return at if at < current.expires_on - self._store.options.min_validity else None

    def _arm_idle(self, key: TokenKey, *, runner: BackgroundRunner | None = None) -> None:
        """Schedule an idle refresh of ``key`` (:meth:`_idle_at`) on ``runner``, or else the one the
        calling code runs on: ``LOOK_AGAIN`` s on at the soonest, so that no timer ever spins (a
        token due already, a refresh held, a failing credential with ``retry_delay=0``), and
        ``LONGEST_IDLE_SLEEP`` at the latest."""
        at = self._idle_at(key)
        if at is None or self.closed:
            return
        runner = runner if runner is not None else self._timer_runner()
        if runner is not None:
            delay = min(max(at - self._store.clock(), LOOK_AGAIN), LONGEST_IDLE_SLEEP)
            runner.schedule(self, key, delay, weakly(self._idle_due, runner, key))

    def _idle_due(self, runner: BackgroundRunner, key: TokenKey) -> None:
        """An idle timer fired: refresh if the token is due by the wall clock, else sleep on."""
        at = self._idle_at(key)
        if at is not None and at > self._store.clock():  # woke before it is due (see LONGEST_IDLE_SLEEP)
            self._arm_idle(key, runner=runner)
        else:
            self._idle_refresh(runner, key)

    def _idle_refresh(self, runner: BackgroundRunner, key: TokenKey) -> None:
        """Start the background refresh no request has started, or wait on."""
        action, _, generation, mark = self._store.begin(key, runner.alive, background_allowed=not self.closed)
        if action is Action.BACKGROUND:
            self._start_background(runner, Refresh(key, generation, mark=mark), key.scopes)
        elif action is Action.ATTACH:  # refreshed meanwhile, or backing off: look again then
            self._arm_idle(key, runner=runner)

    def _start_background(self, runner: BackgroundRunner, command: Refresh, scopes: tuple[str, ...]) -> None:
        flight_key, kwargs, finish, watched = self._refresh_parts(command)
        runner.start(
            flight_key,
            self._fetcher(scopes, kwargs, watched),
            finish,
            timeout=self._store.options.refresh_timeout,
            name=refresh_name(command.key),
            owner=self,
        )

    def _timer_runner(self) -> BackgroundRunner | None:
        """The runner an idle timer armed here runs on; None where there is none (a closed loop)."""
        raise NotImplementedError

    def _fetcher(self, scopes: tuple[str, ...], kwargs: dict[str, Any], watched: Watched) -> Callable[[], Any]:
        """What asks the credential for one refresh, on the face's runtime."""
        raise NotImplementedError
