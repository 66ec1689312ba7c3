"""What the policies need of a runner, and of whoever starts refreshes on it."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._outcome import Fetch, Finish, Verdict

__all__ = ["BackgroundRunner", "Owner", "Runner"]


class Owner(Protocol):
    """What starts refreshes among those shared: a policy, which owns the ones it started.

    The runners tag every refresh with its owner; a policy's ``close()`` sets ``closed`` and
    cancels (or joins) its own refreshes only, leaving those other policies rely on.
    """

    closed: bool


class BackgroundRunner(Protocol):
    """What starting a background refresh and an idle timer needs, on any runtime."""

    @property
    def alive(self) -> Callable[[], bool] | None:
        """Whether the runner's event loop is still open; None where it cannot close (threads)."""

    def start(
        self,
        flight_key: Hashable,
        fetch: Callable[[], Any],
        finish: Finish,
        *,
        timeout: float,
        name: str,
        owner: Owner,
    ) -> Any: ...

    def schedule(self, owner: Owner, key: Hashable, delay: float, callback: Callable[[], None]) -> None: ...


class Runner(Protocol):
    """What the async policy needs of an event loop: ``AsyncioRunner`` or ``TrioRunner``."""

    flights: dict[Hashable, Any]

    @property
    def lock(self) -> Any: ...

    def alive(self) -> bool: ...

    def start(
        self,
        flight_key: Hashable,
        fetch: Fetch,
        finish: Finish,
        *,
        timeout: float | None,
        name: str,
        owner: Owner,
    ) -> Any:
        """Start a refresh on the loop and make it joinable under ``flight_key``.

        :param flight_key: what requests that may share this refresh look it up by.
        :param fetch: asks the credential.
        :param finish: records the outcome and returns the verdict.
        :keyword timeout: seconds after which the refresh is cancelled and fails, or None.
        :keyword str name: the task's name.
        :keyword owner: the policy starting it.
        :return: the flight.
        """

    async def wait(self, flight: Any) -> Verdict: ...

    async def drain(self) -> None: ...

    def schedule(self, owner: Owner, key: Hashable, delay: float, callback: Callable[[], None]) -> None: ...

    async def aclose(self, owner: Owner) -> None: ...

    def cancel_threadsafe(self, owner: Owner) -> None: ...

    def abandon(self) -> None: ...
