"""The thread driver of a face: flows run on the calling thread, background refreshes on daemon threads."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Awaitable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._face import Face, Watched
from ._flow import Flow, Refresh, explicit_flow, token_flow
from ._key_state import Action, CachedToken, TokenKey, checked_token
from ._options import check_wait_limit
from ._outcome import SyncFetch, Verdict

if TYPE_CHECKING:
    from ._runners._threads import ThreadRunner

__all__ = ["ThreadFace"]

_LOGGER = logging.getLogger(__name__)

_FaceT = TypeVar("_FaceT", bound="ThreadFace")


class ThreadFace(Face):
    """A face for sync credentials: the sync policy, the sync provider and the sync credential wrapper.

    Subclasses set ``_shared`` and call ``_new_runtime``, and provide ``_call_credential``.
    """

    _runner: ThreadRunner

    def close(self) -> None:
        """End this face's refreshes and timers (each public class says what else)."""
        raise NotImplementedError

    def __enter__(self: _FaceT) -> _FaceT:
        """Enter: the object, ready; it closes on exit.

        :return: the object.
        """
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Close (see ``close()``).

        The defaults are azure-core's credential protocols': without them a type checker refuses
        a credential wrapper where an Azure SDK client takes a credential.
        """
        self.close()

    # What the messages about the wrong kind of credential call this face and suggest instead.
    _KIND = "the sync policy"
    _ASYNC_KIND = "AsyncBackgroundRefreshTokenPolicy"

    def _new_runtime(self) -> None:
        self._runner = self._shared.thread_runner

    def _call_credential(self, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> Any:
        """Ask the credential for a token for ``scopes``; ``kwargs`` may be consumed."""
        raise NotImplementedError

    def _fetcher(self, scopes: tuple[str, ...], kwargs: dict[str, Any], watched: Watched) -> SyncFetch:
        method = self._credential_method()

        def fetch() -> Any:
            if watched is not None:
                watched[0].call_started(watched[1])
            outcome = self._call_credential(scopes, dict(kwargs))  # a copy: options are popped from it
            if isinstance(outcome, Awaitable):
                # An async credential whose method is not a coroutine function (the constructor
                # refuses those that are): a coroutine left unawaited would only warn when collected.
                if inspect.iscoroutine(outcome):
                    outcome.close()
                raise TypeError(
                    f"{type(self._credential).__name__}.{method} returned {type(outcome).__name__}, an awaitable: "
                    f"it is an async credential, and {self._KIND} needs a sync one, such as those in "
                    f"azure.identity (or use {self._ASYNC_KIND} for an async credential)"
                )
            return checked_token(outcome, method)

        return fetch

    def _token_for(self, key: TokenKey, scopes: tuple[str, ...]) -> CachedToken:
        """The token a request for ``key`` attaches, after whatever refresh the rule asks for."""
        return self._drive(token_flow(self._store, key, alive=None, owner=self), scopes)

    def _refresh_explicit(self, key: TokenKey, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> CachedToken:
        """Ask the credential (sharing a call with the same arguments already in flight) and cache the result."""
        return self._drive(explicit_flow(self._store, key, kwargs), scopes)

    def _drive(self, flow: Flow, scopes: tuple[str, ...]) -> CachedToken:
        """Run a flow on the calling thread: carry out each refresh it asks for, blocking."""
        try:
            command = next(flow)
            while True:
                command = flow.send(self._carry_out(command, scopes))
        except StopIteration as stop:
            token: CachedToken = stop.value
            return token

    def _carry_out(self, command: Refresh, scopes: tuple[str, ...]) -> Verdict | None:
        if command.background:
            self._start_background(self._runner, command, scopes)
            return None
        flight_key, kwargs, finish, watched = self._refresh_parts(command)
        fetch = self._fetcher(scopes, kwargs, watched)
        key, generation = command.key, command.generation
        # Threads decide and join in two steps: a refresh may end between them. An explicit
        # request always asks the credential.
        needed = None if command.explicit else (lambda: self._inline_still_needed(key, generation))
        return self._runner.wait(self._runner.join_or_start(flight_key, fetch, finish, needed=needed))

    def _inline_still_needed(self, key: TokenKey, generation: int) -> bool:
        decided = self._store.decision(key, background_allowed=not self.closed)
        return decided == (Action.INLINE, generation)

    def _timer_runner(self) -> ThreadRunner:
        return self._runner

    def wait_for_refreshes(self, timeout: float | None = None) -> bool:
        """Wait until no background refresh of this credential's engine is running.

        For tests, recorded ones especially: calling it before a test ends makes the token
        request of a background refresh happen inside the test (and its cassette). It waits
        for refreshes that start while it waits, too.

        :param timeout: seconds to wait at most; None waits as long as it takes.
        :return: whether no background refresh is running.
        :rtype: bool
        :raises ValueError: ``timeout`` is longer than threads can wait (``threading.TIMEOUT_MAX``).
        """
        check_wait_limit("timeout", timeout, threading.TIMEOUT_MAX)
        return self._runner.join(timeout)

    def _close_refreshes(self, timeout: float | None = None) -> None:
        """``close()``: start no background refresh from now on, and join the ones this face started.

        :param timeout: seconds to wait at most; None: ``refresh_timeout``.
        """
        timeout = self._store.options.refresh_timeout if timeout is None else timeout
        if not self._runner.close(self, timeout):
            _LOGGER.warning(
                "close(): %d background token refresh(es) still running after refresh_timeout; left to end "
                "on their daemon threads",
                len(self._runner.threads_of(self)),
            )
