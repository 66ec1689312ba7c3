"""``share_across_processes``: the credential a wrapper's engine calls, which asks the host store first.

The engine already makes one credential call per key at a time within a process, in the
background while a token is merely due. What it calls, with the option, is a
:class:`HostSharedCredential` (sync) or :class:`AsyncHostSharedCredential`: a plain call for a
key returns the host's token when another process stored a usable one newer than the one this
process holds; else it takes the key's host lock, looks again (the process that held the lock
may just have stored one), and only then asks the wrapped credential and stores its answer.
Whoever holds no usable token thus waits on the lock for another process's refresh, and one
that holds a valid due token keeps attaching it meanwhile, since the engine refreshes it in the
background. A call with claims, or options this library does not know, goes straight to the
wrapped credential and is not shared.

Policies and providers built on the wrapper call this credential too (the wrapper lends it),
so every face of the engine shares through the store.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

from ._azure_core import ask_credential
from ._host_store import HostStore, host_directory
from ._key_state import TokenKey, checked_token
from ._options import RefreshOptions

if TYPE_CHECKING:
    from filelock import BaseFileLock

__all__ = ["AsyncHostSharedCredential", "HostSharedCredential", "host_shared"]

_LOGGER = logging.getLogger(__name__)

TokenLike = AccessToken | AccessTokenInfo

# What a share flow asks its driver for: the key's host lock (held until the flow ends), or a
# call of the wrapped credential (sent back its checked result).
LOCK = "lock"
CALL = "call"
ShareFlow = Generator[str, Any, AccessTokenInfo]


def plain_key(scopes: tuple[str, ...], options: TokenRequestOptions) -> TokenKey | None:
    """The key of a call the host store may serve; None for one with claims or unknown options."""
    if options.get("claims") or not set(options) <= {"tenant_id", "enable_cae", "claims"}:
        return None
    return TokenKey.of(scopes, options.get("tenant_id") or None, cae=bool(options.get("enable_cae")))


def as_info(token: TokenLike) -> AccessTokenInfo:
    """``token`` as an ``AccessTokenInfo``: the credential's own object when it is one."""
    if isinstance(token, AccessTokenInfo):
        return token
    return AccessTokenInfo(token.token, int(token.expires_on))


class _HostShared:
    """What the sync and the async host-shared credential share: the store, the rule, the bookkeeping.

    :param credential: the wrapped credential.
    :param store: the host store of the wrapper's name.
    :param options: the wrapper's options: ``min_validity`` (the least a taken token must have left)
        and ``refresh_timeout`` (the longest wait for another process's refresh).
    """

    def __init__(self, credential: Any, store: HostStore, options: RefreshOptions) -> None:
        self.credential = credential
        self.store = store
        self.options = options
        self.clock: Callable[[], float] = time.time
        # Per key, the expiry of the token this process last got from here: a stored token is taken
        # only if newer, so a token a service refused (401) is never taken back from the store.
        self._held: dict[TokenKey, float] = {}
        self._told_timeout = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.credential).__name__}, {self.store.name!r})"

    def _flow(self, key: TokenKey) -> ShareFlow:
        """Serve ``key`` from the host store, or refresh it for the host: see the module's docstring."""
        found = self._usable(key, self.store.read(key))
        if found is not None:
            return found
        yield LOCK
        stored = self.store.read(key)
        found = self._usable(key, stored)
        if found is not None:
            return found
        token: AccessTokenInfo = yield CALL
        if stored is None or token.expires_on > stored.expires_on:  # never replace a newer token
            self.store.write(key, token)
        return self._took(key, token)

    def _usable(self, key: TokenKey, stored: AccessTokenInfo | None) -> AccessTokenInfo | None:
        if stored is None or stored.expires_on <= self._held.get(key, float("-inf")):
            return None
        if stored.expires_on - self.clock() <= self.options.min_validity:
            return None
        return self._took(key, stored)

    def _took(self, key: TokenKey, token: AccessTokenInfo) -> AccessTokenInfo:
        self._held[key] = token.expires_on
        return token

    def _timed_out(self) -> None:
        """The lock was not free within ``refresh_timeout``: its holder is stuck, so ask without it."""
        if not self._told_timeout:
            self._told_timeout = True
            _LOGGER.warning(
                "share_across_processes %r: another process has refreshed for longer than refresh_timeout (%g s); "
                "asking the credential without waiting for it",
                self.store.name,
                self.options.refresh_timeout,
            )

    def _acquire(self, lock: BaseFileLock, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Take ``lock`` within ``refresh_timeout``; False if it was not free by then (or the caller left)."""
        from filelock import Timeout

        try:
            lock.acquire(timeout=self.options.refresh_timeout, cancel_check=cancelled)
        except Timeout:
            if not cancelled():
                self._timed_out()
            return False
        return True


class HostSharedCredential(_HostShared):
    """A sync credential that shares its tokens with the host's other processes of the same name."""

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """A token for ``scopes``: the host's, or the wrapped credential's (see the module's docstring).

        :param str scopes: the scopes.
        :keyword options: ``claims``, ``tenant_id``, ``enable_cae``.
        :return: the token.
        :raises Exception: whatever the wrapped credential raised.
        """
        options = options or {}
        key = plain_key(scopes, options)
        if key is None:
            return self._ask(scopes, options)
        flow = self._flow(key)
        with contextlib.ExitStack() as held:  # the lock, once taken, until the flow ends
            try:
                step = next(flow)
                while True:
                    if step == CALL:
                        step = flow.send(self._ask(scopes, options))
                    else:
                        self._lock(key, held)
                        step = flow.send(None)
            except StopIteration as stop:
                token: AccessTokenInfo = stop.value
                return token

    def _lock(self, key: TokenKey, held: contextlib.ExitStack) -> None:
        lock = self.store.lock(key)
        if self._acquire(lock):
            held.callback(lock.release)

    def _ask(self, scopes: tuple[str, ...], options: TokenRequestOptions) -> AccessTokenInfo:
        method, outcome = ask_credential(self.credential, scopes, dict(options))
        return as_info(checked_token(outcome, method))

    def close(self) -> None:
        """Close the wrapped credential, if it can be closed."""
        close = getattr(self.credential, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> HostSharedCredential:
        enter = getattr(self.credential, "__enter__", None)
        if callable(enter):
            enter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncHostSharedCredential(_HostShared):
    """An async credential that shares its tokens with the host's other processes of the same name.

    The lock is waited for on a worker thread (asyncio's or trio's), never on the event loop;
    the files are read and written on the loop, as they are in memory and never waited on.
    """

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """A token for ``scopes``: the host's, or the wrapped credential's (see the module's docstring).

        :param str scopes: the scopes.
        :keyword options: ``claims``, ``tenant_id``, ``enable_cae``.
        :return: the token.
        :raises Exception: whatever the wrapped credential raised.
        """
        options = options or {}
        key = plain_key(scopes, options)
        if key is None:
            return await self._ask(scopes, options)
        flow = self._flow(key)
        async with contextlib.AsyncExitStack() as held:  # the lock, once taken, until the flow ends
            try:
                step = next(flow)
                while True:
                    if step == CALL:
                        step = flow.send(await self._ask(scopes, options))
                    else:
                        await self._lock(key, held)
                        step = flow.send(None)
            except StopIteration as stop:
                token: AccessTokenInfo = stop.value
                return token

    async def _lock(self, key: TokenKey, held: contextlib.AsyncExitStack) -> None:
        """Wait for the lock on a thread; a caller cancelled meanwhile leaves it released, whenever it comes."""
        lock = self.store.lock(key)
        guard = threading.Lock()
        left = taken = False

        def take() -> None:
            nonlocal taken
            got = self._acquire(lock, lambda: left)
            with guard:
                if got and left:
                    lock.release()
                taken = got and not left

        try:
            await _in_thread(take)
        except BaseException:
            with guard:
                left = True
                if taken:
                    lock.release()
            raise
        if taken:
            held.callback(lock.release)

    async def _ask(self, scopes: tuple[str, ...], options: TokenRequestOptions) -> AccessTokenInfo:
        method, outcome = ask_credential(self.credential, scopes, dict(options))
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return as_info(checked_token(outcome, method))

    async def close(self) -> None:
        """Close the wrapped credential, if it can be closed."""
        close = getattr(self.credential, "close", None)
        if callable(close):
            outcome = close()
            if inspect.isawaitable(outcome):
                await outcome

    async def __aenter__(self) -> AsyncHostSharedCredential:
        enter = getattr(self.credential, "__aenter__", None)
        if callable(enter):
            await enter()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _in_thread(function: Callable[[], None]) -> None:
    """Run ``function`` on the running event loop's worker threads (asyncio's or trio's)."""
    import sniffio

    if sniffio.current_async_library() == "trio":
        import trio

        # Abandoned if the caller is cancelled: the lock it may take later is released by the caller.
        await trio.to_thread.run_sync(function, abandon_on_cancel=True)
    else:
        import asyncio

        await asyncio.to_thread(function)


def host_shared(credential: Any, name: str, options: RefreshOptions, *, asynchronous: bool) -> _HostShared:
    """The credential a ``share_across_processes=name`` wrapper's engine calls.

    :param credential: the wrapped credential.
    :param str name: the name.
    :param options: the wrapper's options.
    :keyword bool asynchronous: whether the wrapper is the async one.
    :return: the host-shared credential around ``credential``.
    :raises ~bgrefresh_policy._host_store.NotPrivateError: the store's directory is not private.
    """
    store = HostStore(name, host_directory())
    kind = AsyncHostSharedCredential if asynchronous else HostSharedCredential
    return kind(credential, store, options)
