"""The event-loop driver of a face: flows and refreshes run on the running asyncio loop or trio run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._face import Face, refresh_name
from ._flow import Flow, Refresh, explicit_flow, token_flow
from ._key_state import CachedToken, TokenKey
from ._outcome import Verdict

if TYPE_CHECKING:
    from ._runners import RunnerRegistry
    from ._runners._protocols import Runner

__all__ = ["LoopFace"]


class LoopFace(Face):
    """A face for async credentials: the async policy, the async provider and the async credential wrapper.

    Subclasses set ``_runners`` (the engine's runner per event loop) and provide ``_fetcher``.
    """

    _runners: RunnerRegistry

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

    async def _drain(self) -> None:
        """``wait_for_refreshes()``: until no refresh on the running loop is in flight."""
        runner = self._runners.existing()
        if runner is not None:
            await runner.drain()

    async def _aclose_refreshes(self) -> None:
        """``close()``: start no background refresh from now on; cancel and await this face's refreshes."""
        self.closed = True
        await self._runners.aclose(self)
