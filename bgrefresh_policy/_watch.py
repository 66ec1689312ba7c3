"""Watching each credential call a policy makes: the ``on_refresh`` event and the telemetry.

A policy with neither an ``on_refresh`` callback nor OpenTelemetry installed watches nothing and
pays nothing: :func:`telemetry_only` returns None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._key_state import CachedToken, TokenKey
from ._outcome import RefreshOutcome
from ._store import Finished
from ._telemetry import Telemetry, telemetry

if TYPE_CHECKING:
    from ._events import RefreshEvent

__all__ = ["Observers", "Watch", "telemetry_only"]

_LOGGER = logging.getLogger(__name__)

_WITH_ERROR = (RefreshOutcome.FAILED, RefreshOutcome.TIMED_OUT)


class Watch:
    """One credential call being watched: what its event and its span need from its start."""

    __slots__ = ("background", "ended", "key", "parent", "span", "started_at", "validity_left")

    def __init__(self, key: TokenKey, background: bool, started_at: float, validity_left: float | None) -> None:
        self.key = key
        self.background = background
        self.started_at = started_at
        self.validity_left = validity_left
        self.parent: Any = None  # the requester's OpenTelemetry context
        self.span: Any = None
        # Told once: a thread's refresh given up at refresh_timeout is recorded again when it ends.
        self.ended = False


class Observers:
    """What watches a policy's credential calls: its ``on_refresh`` callback, and OpenTelemetry.

    :param on_refresh: the callback, or None.
    """

    __slots__ = ("_failed", "on_refresh")

    def __init__(self, on_refresh: Callable[[RefreshEvent], object] | None) -> None:
        self.on_refresh = on_refresh
        self._failed = False  # the callback has raised once: logged at WARNING, then DEBUG

    @property
    def telemetry(self) -> Telemetry | None:
        """The process's telemetry: looked up at the first refresh, not when the policy is built."""
        return telemetry()

    def watch(self, key: TokenKey, *, background: bool, now: float, current: CachedToken | None) -> Watch:
        """Begin watching a call about to be made, from the requester's context."""
        validity_left = current.expires_on - now if current is not None and current.expires_on > now else None
        watch = Watch(key, background, now, validity_left)
        if self.telemetry is not None:
            watch.parent = self.telemetry.current_context()
        return watch

    def call_started(self, watch: Watch) -> None:
        """The credential call begins (in its task or thread): its span starts."""
        found = self.telemetry
        if found is None:
            return
        key = watch.key
        try:
            watch.span = found.start(
                key.scopes,
                key.tenant_id,
                background=watch.background,
                parent=watch.parent,
                validity_left=watch.validity_left,
            )
        except Exception as exc:  # noqa: BLE001 - telemetry (a span processor of the user's) never breaks a refresh
            _LOGGER.debug("OpenTelemetry failed to start a refresh span: %s: %s", type(exc).__name__, exc)

    def call_ended(self, watch: Watch, finished: Finished, error: BaseException | None) -> None:
        """The outcome is recorded: the event goes to the callback, the span ends, the metrics count it.

        Once per call: a thread's refresh that waiters gave up at ``refresh_timeout`` is told as
        timed out, and its late result is recorded but not told again.
        """
        if watch.ended:
            return
        watch.ended = True
        from ._events import RefreshEvent  # with the first event: see _events

        event = RefreshEvent(
            scopes=watch.key.scopes,
            tenant_id=watch.key.tenant_id,
            background=watch.background,
            started_at=watch.started_at,
            ended_at=finished.at,
            outcome=finished.outcome,
            error=error if finished.outcome in _WITH_ERROR else None,
            validity_left=watch.validity_left,
            next_attempt_at=finished.next_attempt_at,
        )
        found = self.telemetry
        if found is not None:
            try:
                found.end(watch.span, event)
            except Exception as exc:  # noqa: BLE001 - as in call_started
                _LOGGER.debug("OpenTelemetry failed to record a refresh: %s: %s", type(exc).__name__, exc)
        if self.on_refresh is not None:
            self._tell(event)

    def _tell(self, event: RefreshEvent) -> None:
        assert self.on_refresh is not None
        try:
            self.on_refresh(event)
        except Exception as exc:  # noqa: BLE001 - a callback never breaks a request or a refresh
            level = logging.DEBUG if self._failed else logging.WARNING
            self._failed = True
            _LOGGER.log(
                level, "on_refresh callback raised %s: %s (ignored; later failures at DEBUG)", type(exc).__name__, exc
            )


_TELEMETRY_ONLY: Observers | None = None


def telemetry_only() -> Observers | None:
    """What watches the calls of a policy without a callback: OpenTelemetry if installed, else nothing.

    One object for all such policies, made on the first refresh of one.
    """
    global _TELEMETRY_ONLY
    if telemetry() is None:
        return None
    if _TELEMETRY_ONLY is None:
        _TELEMETRY_ONLY = Observers(None)
    return _TELEMETRY_ONLY
