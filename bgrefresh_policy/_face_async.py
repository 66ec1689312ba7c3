"""The event-loop driver of a face: flows and refreshes run on the running asyncio loop or trio run."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._azure_core import ask_credential
from ._face import Face, Watched, refresh_name
from ._flow import Flow, Refresh, explicit_flow, token_flow
from ._key_state import CachedToken, TokenKey, checked_token
from ._outcome import Fetch, Verdict

if TYPE_CHECKING:
    from ._runners import RunnerRegistry
    from ._runners._protocols import Runner

__all__ = ["LoopFace"]

_LOGGER = logging.getLogger(__name__)

_FaceT = TypeVar("_FaceT", bound="LoopFace")


class LoopFace(Face):
    """A face for async credentials: the async policy, the async provider and the async credential wrapper.

    Subclasses set ``_shared`` and call ``_new_runtime``, and provide ``_caller``.
    """

    _runners: RunnerRegistry

    async def close(self) -> None:
        """End this face's refreshes and timers (each public class says what else)."""
        raise NotImplementedError

    async def __aenter__(self: _FaceT) -> _FaceT:
        """Enter: the object, ready; it closes on exit.

        :return: the object.
        """
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Close (see ``close()``).

        The defaults are azure-core's credential protocols': without them a type checker refuses
        a credential wrapper where an Azure SDK client takes a credential.
        """
        await self.close()

    # Whether the WARNING about a sync credential was logged (see _ask).
    _told_sync = False
    # What the WARNING about a sync credential suggests instead.
    _SYNC_KIND = "BackgroundRefreshTokenPolicy"

    def _new_runtime(self) -> None:
        self._runners = self._shared.runners

    def _caller(self) -> Callable[..., Awaitable[Any]]:
        """What asks the credential: called with the scopes and the credential's keywords."""
        raise NotImplementedError

    def _fetcher(self, scopes: tuple[str, ...], kwargs: dict[str, Any], watched: Watched) -> Fetch:
        method = self._credential_method()
        call = self._caller()

        async def fetch() -> Any:
            if watched is not None:
                watched[0].call_started(watched[1])
            # A copy: options are popped out of the dict given.
            return checked_token(await call(*scopes, **dict(kwargs)), method)

        return fetch

    async def _ask(self, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> Any:
        """Ask the credential as azure-core's ``_get_token`` does, awaiting only what is awaitable.

        A sync credential then works, blocking the event loop for each of its calls, as with
        azure-core's policy. Only its result shows it (a plain function returning a coroutine is a
        valid async credential): the first one is logged at WARNING, once per face.

        :return: what the credential returned, awaited if it is awaitable.
        """
        credential: Any = self._credential
        method, outcome = ask_credential(credential, scopes, kwargs)
        if isinstance(outcome, Awaitable):
            return await outcome
        if not self._told_sync:
            self._told_sync = True
            _LOGGER.warning(
                "%s.%s returned %s, not an awaitable: a sync credential, which blocks the event loop for each of "
                "its calls (as with azure-core's policy). Use an async credential, such as those in "
                "azure.identity.aio, or %s with this one",
                type(credential).__name__,
                method,
                type(outcome).__name__,
                self._SYNC_KIND,
            )
        return outcome

    async def _token_for(self, key: TokenKey, scopes: tuple[str, ...]) -> CachedToken:
        """The token a request for ``key`` attaches, after whatever refresh the rule asks for."""
        runner = self._runners.current()
        return await self._drive(runner, token_flow(self._store, key, alive=runner.alive, owner=self), scopes)

    async def _refresh_explicit(self, key: TokenKey, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> CachedToken:
        """Ask the credential (sharing a call with the same arguments already in flight) and cache the result."""
        return await self._drive(self._runners.current(), explicit_flow(self._store, key, kwargs), scopes)

    async def _drive(self, runner: Runner, flow: Flow, scopes: tuple[str, ...]) -> CachedToken:
        """Run a flow on the runner's event loop: carry out each refresh it asks for."""
        try:
            command = next(flow)
            while True:
                command = flow.send(await self._carry_out(runner, command, scopes))
        except StopIteration as stop:
            token: CachedToken = stop.value
            return token

    async def _carry_out(self, runner: Runner, command: Refresh, scopes: tuple[str, ...]) -> Verdict | None:
        if command.background:
            self._start_background(runner, command, scopes)
            return None
        flight_key, kwargs, finish, watched = self._refresh_parts(command)
        # Joins the refresh already in flight for this key and generation, if any (a background one too).
        flight = runner.flights.get(flight_key)
        if flight is None:
            fetch = self._fetcher(scopes, kwargs, watched)
            flight = runner.start(flight_key, fetch, finish, timeout=None, name=refresh_name(command.key), owner=self)
        return await runner.wait(flight)

    def _timer_runner(self) -> Runner | None:
        try:  # from a refresh's task, on the loop it ran on
            return self._runners.current()
        except RuntimeError:  # concluded outside a loop (its loop closed): nothing to run a timer on
            return None

    async def wait_for_refreshes(self) -> None:
        """Wait until no refresh of this credential's engine is in flight on the running event loop.

        For tests, recorded ones especially: awaiting it before a test ends makes the token
        request of a background refresh happen inside the test (and its cassette). It waits for
        refreshes that start while it waits, too. Cancelling the wait leaves them running.
        """
        runner = self._runners.existing()
        if runner is not None:
            await runner.drain()

    async def _aclose_refreshes(self) -> None:
        """``close()``: start no background refresh from now on; cancel and await this face's refreshes."""
        self.closed = True
        await self._runners.aclose(self)
