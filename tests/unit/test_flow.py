"""The request flows, driven by hand: they yield Refresh commands and act on the verdicts sent back, no I/O."""

from __future__ import annotations

import pytest
from azure.core.credentials import AccessTokenInfo

from bgrefresh_policy._flow import Refresh, explicit_flow, token_flow
from bgrefresh_policy._key_state import TokenKey
from bgrefresh_policy._options import RefreshOptions
from bgrefresh_policy._outcome import RETRY, Verdict
from bgrefresh_policy._store import TokenStore
from tests.support import FakeClock

KEY = TokenKey.of(["https://management.azure.com/.default"])


def store_at(clock: FakeClock) -> TokenStore:
    store = TokenStore(RefreshOptions())
    store.clock = clock
    store.draw_jitter = lambda: 0
    return store


def test_a_due_token_yields_one_background_refresh_and_returns_the_current_token() -> None:
    clock = FakeClock()
    store = store_at(clock)
    cached = store.store(KEY, AccessTokenInfo("t-1", int(clock() + 3600)))
    clock.advance(3400)
    flow = token_flow(store, KEY, alive=None)
    command = next(flow)
    assert isinstance(command, Refresh)
    assert (command.key, command.background, command.explicit) == (KEY, True, False)
    with pytest.raises(StopIteration) as done:
        flow.send(None)  # the driver only started it
    assert done.value.value is cached


def test_no_token_yields_an_inline_refresh_and_retries_on_a_stale_verdict() -> None:
    clock = FakeClock()
    store = store_at(clock)
    flow = token_flow(store, KEY, alive=None)
    first = next(flow)
    assert not first.background
    second = flow.send(RETRY)  # stale: decide again, a new command
    assert second is not first
    assert not second.background
    token = store.cache(AccessTokenInfo("t-2", int(clock() + 3600)))
    with pytest.raises(StopIteration) as done:
        flow.send(Verdict(token, None))
    assert done.value.value is token


def test_a_failed_inline_refresh_raises_when_nothing_valid_is_left() -> None:
    flow = token_flow(store_at(FakeClock()), KEY, alive=None)
    next(flow)
    with pytest.raises(LookupError, match="down"):
        flow.send(Verdict(None, LookupError("down")))


def test_an_explicit_flow_carries_the_callers_arguments() -> None:
    clock = FakeClock()
    store = store_at(clock)
    flow = explicit_flow(store, KEY, {"claims": "c"})
    command = next(flow)
    assert command.explicit
    assert command.kwargs == {"claims": "c"}
    assert not command.background
    token = store.cache(AccessTokenInfo("t-3", int(clock() + 3600)))
    with pytest.raises(StopIteration) as done:
        flow.send(Verdict(token, None))
    assert done.value.value is token
