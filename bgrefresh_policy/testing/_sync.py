"""FakeCredential: a sync credential a test steers, for code that runs on threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

from ._fake import FRESH, FakeCredentialBase

__all__ = ["FakeCredential"]


class FakeCredential(FakeCredentialBase):
    """A sync ``TokenCredential`` and ``SupportsTokenInfo`` for tests: it issues the tokens a test
    chooses, counts its calls, and can be held open, made to fail or hang.

    The N-th token handed out has the value ``fake-token-N``. Calls may come from any thread.

    :keyword float lifetime: seconds each token is valid from its issue: :data:`FRESH` (the
        default), :data:`DUE` or :data:`EXPIRING`, or any number.
    :keyword refresh_in: seconds from its issue to each token's ``refresh_on``; None: no ``refresh_on``.
    :paramtype refresh_in: float or None
    :keyword clock: the Unix time tokens are issued at; ``time.time`` (which time-machine moves) by default.
    :paramtype clock: ~collections.abc.Callable[[], float]
    :ivar int cancelled: always 0: a thread's call cannot be cancelled.
    :ivar bool closed: whether :meth:`close` was called.
    """

    def __init__(
        self, *, lifetime: float = FRESH, refresh_in: float | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(lifetime=lifetime, refresh_in=refresh_in, clock=clock)
        self._changed = threading.Condition(self._lock)

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
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
                self._wait_until(lambda: gate.opened, timeout=None)
            finally:
                self._left(gate)
        return self._answer(gate)

    def get_token(
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
        info = self.get_token_info(*scopes, options=self._options(claims, tenant_id, enable_cae))  # type: ignore[arg-type]
        return AccessToken(info.token, info.expires_on)

    def wait_for_calls(self, count: int, timeout: float = 30.0) -> None:
        """Return once ``count`` calls have been made in all (from other threads: a background refresh).

        :param int count: the number of calls to wait for.
        :param float timeout: seconds after which the wait is a hang, not a slow machine.
        :raises TimeoutError: fewer calls after ``timeout`` seconds.
        """
        self._wait_until(lambda: len(self._calls) >= count, timeout=timeout)

    def close(self) -> None:
        """Record that the credential was closed (``closed``)."""
        self.closed = True

    def __enter__(self) -> FakeCredential:
        """:return: the credential."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Close the credential."""
        self.close()

    def _wake(self) -> None:
        self._changed.notify_all()

    def _wait_until(self, condition: Callable[[], bool], *, timeout: float | None) -> None:
        with self._changed:
            if not self._changed.wait_for(condition, timeout):
                raise TimeoutError(f"{self!r}: still waiting after {timeout} s")
