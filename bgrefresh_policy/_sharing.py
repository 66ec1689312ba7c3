"""One token per credential: the tokens and refreshes that every policy on one credential shares.

Policies, token providers and credential wrappers built on the same credential *object*, with the
same refresh options, share one :class:`Shared`: one store of tokens per key (scopes, tenant, CAE),
and one set of runners, so that a refresh in flight is joined by all of them. The registry holds
credentials weakly: it never keeps one alive, and what it shared for a credential goes with it.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ._options import RefreshOptions
from ._store import TokenStore

if TYPE_CHECKING:
    from ._runners import RunnerRegistry
    from ._runners._threads import ThreadRunner

__all__ = ["Shared", "shared_count", "shared_for"]


class Shared:
    """The store and runners of one credential and set of options.

    The runners are made on first use: an async credential's policies need only the
    event-loop runners, a sync one's only the thread runner.

    :param options: the refresh options of every policy sharing it.
    """

    __slots__ = ("__weakref__", "_idle", "_lock", "_runners", "_thread_runner", "store")

    def __init__(self, options: RefreshOptions) -> None:
        self.store = TokenStore(options)
        # Protects the creation of the two runners, by threads that first use them together, and _idle.
        self._lock = threading.Lock()
        self._runners: RunnerRegistry | None = None
        self._thread_runner: ThreadRunner | None = None
        # The refresh_when_idle policies: whoever refreshes a key, the timers of all of them that
        # hold it are armed anew. Held weakly: a policy dropped without close() is collected. Made by
        # the first such policy, since most credentials have none.
        self._idle: weakref.WeakSet[Any] | None = None
        _EVERY.add(self)

    def add_idle(self, policy: Any) -> None:
        """Have ``policy``'s idle timer armed whenever its key is refreshed, by any policy here."""
        with self._lock:
            if self._idle is None:
                self._idle = weakref.WeakSet()
            self._idle.add(policy)

    def idle_policies(self) -> list[Any]:
        """The ``refresh_when_idle`` policies alive on this store."""
        if self._idle is None:  # none ever: no lock to take on every refresh
            return []
        with self._lock:
            return list(self._idle)

    def after_fork(self) -> None:
        """In a forked child: keep the tokens, drop whatever the parent had in flight or locked."""
        self._lock = threading.Lock()
        self.store.after_fork()
        if self._runners is not None:
            self._runners.after_fork()
        if self._thread_runner is not None:
            self._thread_runner.after_fork()
        # The parent's timers, and the refreshes that would have armed them on ending, are gone: arm
        # every idle policy's timer here (a sync policy's at once; an async one's has no loop yet).
        for policy in self.idle_policies():
            policy._start_idle()

    @property
    def runners(self) -> RunnerRegistry:
        """One runner per event loop, for the async policies."""
        if self._runners is None:
            from ._runners import RunnerRegistry

            with self._lock:
                if self._runners is None:
                    self._runners = RunnerRegistry()
        return self._runners

    @property
    def thread_runner(self) -> ThreadRunner:
        """The background threads and joinable refreshes, for the sync policies."""
        if self._thread_runner is None:
            from ._runners._threads import ThreadRunner

            with self._lock:
                if self._thread_runner is None:
                    self._thread_runner = ThreadRunner()
        return self._thread_runner


# Every Shared alive, a policy's own (share_tokens=False) included: what a forked child resets.
_EVERY: weakref.WeakSet[Shared] = weakref.WeakSet()

# Protects _BY_CREDENTIAL, from policies built on many threads at once, and from a credential's
# weakref callback, which runs on whichever thread drops the last reference: reentrant, because
# that may be this thread, inside shared_for, when a collection runs there.
_LOCK = threading.RLock()
# id(credential) -> (a weak reference to it, its Shared by options). Keyed by identity:
# credentials that compare equal are still two credentials.
_BY_CREDENTIAL: dict[int, tuple[weakref.ref[Any], dict[RefreshOptions, Shared]]] = {}


class _CredentialRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to a credential that knows its registry key: one callback serves all."""

    __slots__ = ("ident",)
    ident: int


def _forget(ref: _CredentialRef) -> None:
    with _LOCK:
        entry = _BY_CREDENTIAL.get(ref.ident)
        if entry is not None and entry[0] is ref:  # not a newer credential that reused the id
            del _BY_CREDENTIAL[ref.ident]


def shared_for(credential: Any, *, options: RefreshOptions) -> Shared:
    """The :class:`Shared` of ``credential`` for ``options``, made on first use.

    A credential that cannot be weakly referenced (a class with ``__slots__`` and no
    ``__weakref__``) gets a :class:`Shared` of its own each time: sharing it would mean keeping
    it alive.

    :param credential: the credential object.
    :keyword options: the refresh options.
    :return: the shared store and runners.
    """
    ident = id(credential)
    with _LOCK:
        entry = _BY_CREDENTIAL.get(ident)
        if entry is None or entry[0]() is not credential:
            try:
                ref = _CredentialRef(credential, _forget)
            except TypeError:
                return Shared(options)
            ref.ident = ident
            entry = _BY_CREDENTIAL[ident] = (ref, {})
        by_options = entry[1]
        shared = by_options.get(options)
        if shared is None:
            shared = by_options[options] = Shared(options)
        return shared


def shared_count() -> int:
    """How many credentials the registry holds shared tokens for (for tests and inspection)."""
    with _LOCK:
        return len(_BY_CREDENTIAL)


def _after_fork_in_child() -> None:
    """A forked child (gunicorn --preload, multiprocessing "fork", Celery prefork) starts clean.

    Only the forking thread exists in the child: locks other threads held stay held, and refreshes
    they ran never end. The child keeps the cached tokens, and makes its own refreshes.
    """
    global _LOCK
    _LOCK = threading.RLock()
    for shared in list(_EVERY):
        shared.after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
