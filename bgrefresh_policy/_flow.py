"""The steps a request takes to get its token, shared by the async and the sync policy.

Written as generators in the manner of httpx's auth flows: a flow decides (through the
:class:`~bgrefresh_policy._store.TokenStore`) and yields a :class:`Refresh` command, a
description of the credential call it needs; the policy's driver carries it out (starts or joins
a refresh, on a task, a trio system task or a thread) and sends back the
:class:`~bgrefresh_policy._outcome.Verdict`, or None for a background refresh it only started.
The flow does no I/O and never waits, so the whole retry logic is one piece of code for both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from ._key_state import Action, BackgroundMark, CachedToken, TokenKey
from ._outcome import RETRY, Verdict
from ._store import TokenStore

if TYPE_CHECKING:
    from ._runners._protocols import Owner

__all__ = ["Flow", "Refresh", "explicit_flow", "token_flow"]

_LOGGER = logging.getLogger(__name__)


class Refresh:
    """A credential call a flow needs: for which key and generation, and how it is run.

    :param key: the token key.
    :param int generation: the key's generation when the refresh was decided.
    :keyword mark: the running mark of a background refresh, which the driver only starts;
        None for a refresh the request waits for.
    :keyword kwargs: the caller's arguments for the credential (``authorize_request``); None for
        a plain refresh of the key.
    """

    __slots__ = ("generation", "key", "kwargs", "mark")

    def __init__(
        self,
        key: TokenKey,
        generation: int,
        *,
        mark: BackgroundMark | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.key = key
        self.generation = generation
        self.mark = mark
        self.kwargs = kwargs

    @property
    def background(self) -> bool:
        """Whether the request goes on without waiting for it."""
        return self.mark is not None

    @property
    def explicit(self) -> bool:
        """Whether the caller asked for this token with arguments of its own."""
        return self.kwargs is not None


# Yields the refresh it needs; is sent its verdict (None for a background one); returns the token.
Flow = Generator[Refresh, Verdict | None, CachedToken]


def token_flow(
    store: TokenStore, key: TokenKey, *, alive: Callable[[], bool] | None, owner: Owner | None = None
) -> Flow:
    """The token a request for ``key`` attaches, after whatever refresh the rule asks for.

    :param store: the tokens the policy shares.
    :param key: the request's token key.
    :keyword alive: kept with a background mark: whether what runs the refresh can still end it.
    :keyword owner: the policy's; once it is closed, no background refresh starts for it.
    :return: the flow; its value is the token.
    :raises Exception: the credential's error, when no valid token is left to fall back on.
    """
    while True:
        allowed = owner is None or not owner.closed  # read at each decision: close() may run between them
        action, current, generation, mark = store.begin(key, alive, background_allowed=allowed)
        if action is Action.ATTACH:
            assert current is not None  # decide() attaches only a valid token
            return current
        if action is Action.BACKGROUND:
            assert current is not None
            _LOGGER.debug("token for %s is due; refreshing in the background", key.scopes)
            yield Refresh(key, generation, mark=mark)
            return current
        verdict = yield Refresh(key, generation)
        assert verdict is not None
        if verdict is RETRY:
            continue
        if verdict.token is not None:
            return verdict.token
        assert verdict.error is not None
        still_valid = store.still_valid(key)
        if still_valid is not None:  # logged once, by the store, for all the waiters
            return still_valid
        verdict.raise_error()


def explicit_flow(store: TokenStore, key: TokenKey, kwargs: dict[str, Any]) -> Flow:
    """A token the caller asked for (``authorize_request``), cached for ``key``.

    :param store: the policy's tokens.
    :param key: the token key.
    :param dict kwargs: the caller's arguments for the credential.
    :return: the flow; its value is the token.
    :raises Exception: the credential's error.
    """
    while True:
        verdict = yield Refresh(key, store.generation(key), kwargs=kwargs)
        assert verdict is not None
        if verdict is RETRY:
            continue
        if verdict.error is not None:
            verdict.raise_error()
        assert verdict.token is not None
        return verdict.token
