"""The steps a request takes to get its token, shared by the async and the sync policy.

Written as generators in the manner of httpx's auth flows: a flow decides (through the
:class:`~bgrefresh_policy._token_store.TokenStore`), starts or joins refreshes through the
callables it is given, and yields each :class:`~bgrefresh_policy._flight.Flight` it needs
the outcome of. The policy drives it: the async one awaits, the sync one blocks. The
flow itself never waits, so the whole retry logic is one piece of code for both.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Generator

from ._decision import Action, CachedToken
from ._flight import RETRY, Flight, Verdict
from ._key_state import BackgroundMark, TokenKey
from ._token_store import TokenStore

__all__ = ["Flow", "Step", "explicit_flow", "token_flow"]

_LOGGER = logging.getLogger(__name__)


class Step(enum.Enum):
    """What the driver does with the flight a flow yields."""

    STARTED = "started"
    """A background refresh began; let it start (async: yield to the loop), send anything."""
    WAIT = "wait"
    """Wait for the flight and send its :class:`Verdict` back."""


# Yields (step, flight); is sent the verdict; returns the token to attach.
Flow = Generator[tuple[Step, Flight], Verdict, CachedToken]


def token_flow(
    store: TokenStore,
    key: TokenKey,
    *,
    alive: Callable[[], bool] | None,
    background: Callable[[int, BackgroundMark], Flight],
    inline: Callable[[int], Flight],
) -> Flow:
    """The token a request for ``key`` attaches, after whatever refresh the rule asks for.

    :param store: the policy's tokens.
    :param key: the request's token key.
    :keyword alive: kept with a background mark: whether what runs the refresh can still end it.
    :keyword background: starts a background refresh for a generation, holding its mark.
    :keyword inline: joins, or starts, the refresh requests of a generation wait on.
    :return: the flow; its value is the token.
    :raises Exception: the credential's error, when no valid token is left to fall back on.
    """
    while True:
        action, current, generation, mark = store.begin(key, alive)
        if action is Action.ATTACH:
            assert current is not None  # decide() attaches only a valid token
            return current
        if action is Action.BACKGROUND:
            assert current is not None
            assert mark is not None
            _LOGGER.debug("token for %s is due; refreshing in the background", key.scopes)
            yield Step.STARTED, background(generation, mark)
            return current
        verdict = yield Step.WAIT, inline(generation)
        if verdict is RETRY:
            continue
        if verdict.token is not None:
            return verdict.token
        assert verdict.error is not None
        still_valid = store.still_valid(key)
        if still_valid is not None:  # logged once, by the store, for all the waiters
            return still_valid
        raise verdict.error


def explicit_flow(store: TokenStore, key: TokenKey, *, explicit: Callable[[int], Flight]) -> Flow:
    """A token the caller asked for (``authorize_request``), cached for ``key``.

    :param store: the policy's tokens.
    :param key: the token key.
    :keyword explicit: joins, or starts, the credential call with the caller's arguments.
    :return: the flow; its value is the token.
    :raises Exception: the credential's error.
    """
    while True:
        verdict = yield Step.WAIT, explicit(store.generation(key))
        if verdict is RETRY:
            continue
        if verdict.error is not None:
            raise verdict.error
        assert verdict.token is not None
        return verdict.token
