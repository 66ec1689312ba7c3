"""AsyncFakeCredential: an async credential a test steers, on asyncio or trio."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

from .._runners import current_library
from ._fake import FRESH, FakeCredentialBase

__all__ = ["AsyncFakeCredential"]


class _Waker:
    """An event of the running loop (asyncio or trio) that any thread may set."""

    def __init__(self) -> None:
        self._event: Any
        self._schedule: Callable[[Callable[[], object]], object]
        if current_library() == "trio":
            import trio

            self._event = trio.Event()
            self._schedule = trio.lowlevel.current_trio_token().run_sync_soon
        else:
            import asyncio

            self._event = asyncio.Event()
            self._schedule = asyncio.get_running_loop().call_soon_threadsafe

    def set(self) -> None:
        # A loop that has ended refuses the call: nobody waits on it any more.
        with contextlib.suppress(RuntimeError):
            self._schedule(self._event.set)

    async def wait(self) -> None:
        await self._event.wait()


class AsyncFakeCredential(FakeCredentialBase):
    """An ``AsyncTokenCredential`` and ``AsyncSupportsTokenInfo`` for tests, on asyncio or trio: it
    issues the tokens a test chooses, counts its calls, and can be held open, made to fail or hang.

    The async counterpart of :class:`~bgrefresh_policy.testing.FakeCredential`, with the same
    options and controls; a held or hung call waits on the loop it was made on, and ends if it is
    cancelled (counted in ``cancelled``). :meth:`release` may be called from any thread.

    :keyword float lifetime: seconds each token is valid from its issue: :data:`FRESH` (the
        default), :data:`DUE` or :data:`EXPIRING`, or any number.
    :keyword refresh_in: seconds from its issue to each token's ``refresh_on``; None: no ``refresh_on``.
    :paramtype refresh_in: float or None
    :keyword clock: the Unix time tokens are issued at; ``time.time`` (which time-machine moves) by default.
    :paramtype clock: ~collections.abc.Callable[[], float]
    :ivar int cancelled: calls cancelled while they waited at the gate.
    :ivar bool closed: whether :meth:`close` was called.
    """

    def __init__(
        self, *, lifetime: float = FRESH, refresh_in: float | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(lifetime=lifetime, refresh_in=refresh_in, clock=clock)
        self._wakers: list[_Waker] = []

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """A token, once the gate (if held) opens.

        :param str scopes: recorded in :attr:`calls`.
        :keyword options: recorded in :attr:`calls`.
        :paramtype options: ~azure.core.credentials.TokenRequestOptions
        :return: the next token.
        :rtype: ~azure.core.credentials.AccessTokenInfo
        :raises BaseException: the error given to :meth:`fail`.
        :raises TimeoutError: the call hung (:meth:`hang`) and :meth:`release` ended it.
        """
        gate = self._arrive(scopes, options or {})
        if gate is not None:
            try:
                await self._wait_until(lambda: gate.opened)
            except BaseException:
                self.cancelled += 1
                raise
            finally:
                self._left(gate)
        return self._answer(gate)

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The same as :meth:`get_token_info`, as an ``AccessToken``.

        :param str scopes: recorded in :attr:`calls`.
        :keyword str claims: recorded.
        :keyword str tenant_id: recorded.
        :keyword bool enable_cae: recorded.
        :return: the next token.
        :rtype: ~azure.core.credentials.AccessToken
        :raises BaseException: the error given to :meth:`fail`.
        """
        options = self._options(claims, tenant_id, enable_cae)
        info = await self.get_token_info(*scopes, options=options)  # type: ignore[arg-type]
        return AccessToken(info.token, info.expires_on)

    async def wait_for_calls(self, count: int) -> None:
        """Return once ``count`` calls have been made in all (a background refresh's among them).

        Wrap it in the test's own hang guard (``asyncio.timeout``, ``trio.fail_after``).

        :param int count: the number of calls to wait for.
        """
        await self._wait_until(lambda: len(self._calls) >= count)

    async def close(self) -> None:
        """Record that the credential was closed (``closed``)."""
        self.closed = True

    async def __aenter__(self) -> AsyncFakeCredential:
        """:return: the credential."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Close the credential."""
        await self.close()

    def _wake(self) -> None:
        wakers, self._wakers = self._wakers, []
        for waker in wakers:
            waker.set()

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        while True:
            with self._lock:
                if condition():
                    return
                waker = _Waker()
                self._wakers.append(waker)
            await waker.wait()
