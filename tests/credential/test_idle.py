"""A wrapper with ``refresh_when_idle`` keeps fresh every key a plain call was served for, and only those."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import bgrefresh_policy
import bgrefresh_policy.aio
from bgrefresh_policy._face import LONGEST_IDLE_SLEEP
from tests.credential.conftest import OTHER_SCOPE, SCOPE, on_fake_clock
from tests.support import FakeClock, LoopClock, ScriptedCredential, SyncScriptedCredential, eventually, refresh_begins


def test_a_sync_wrapper_refreshes_every_served_key_while_idle_and_not_a_claims_one(clock: FakeClock) -> None:
    inner = SyncScriptedCredential(clock=clock, lifetime=301)  # due 1 s after it is issued
    wrapper: Any = on_fake_clock(
        bgrefresh_policy.BackgroundRefreshCredential(inner, refresh_when_idle=True, min_validity=10), clock
    )
    try:
        wrapper.get_token(SCOPE)
        wrapper.get_token(SCOPE, tenant_id="tenant-b")
        wrapper.get_token(OTHER_SCOPE, claims="c")  # a claims token is the caller's: not kept fresh
        clock.advance(2)  # both plain keys are due; their timers fire within LOOK_AGAIN
        eventually(lambda: inner.finished == 5)  # two refreshes, with no call
        assert wrapper.wait_for_refreshes(30)
        inner.gate = threading.Event()  # any credential call from now on would hang the calls below
        assert wrapper.get_token(SCOPE).token in {"token-4", "token-5"}
        assert wrapper.get_token(SCOPE, tenant_id="tenant-b").token in {"token-4", "token-5"}
        assert sorted(call.options.get("tenant_id", "") for call in inner.calls[3:]) == ["", "tenant-b"]
    finally:
        if inner.gate is not None:
            inner.gate.set()
        wrapper.close()
    assert wrapper._runner._timers == {}  # close() cancelled the timers


def test_a_policy_on_an_idle_refreshing_wrapper_refreshes_while_idle_too(clock: FakeClock) -> None:
    inner = SyncScriptedCredential(clock=clock)
    wrapper = bgrefresh_policy.BackgroundRefreshCredential(inner, refresh_when_idle=True)
    policy: Any = bgrefresh_policy.BackgroundRefreshTokenPolicy(wrapper, SCOPE)
    assert policy._refresh_when_idle
    policy.close()
    wrapper.close()


async def test_an_async_wrapper_refreshes_a_served_key_while_idle(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    inner = ScriptedCredential(clock=clock)
    wrapper: Any = on_fake_clock(bgrefresh_policy.aio.BackgroundRefreshCredential(inner, refresh_when_idle=True), clock)
    await wrapper.get_token_info(SCOPE)  # token-1; its timer armed
    clock.advance(3600 - 300 + 1)  # due; no call comes
    await loop_clock.advance(LONGEST_IDLE_SLEEP)
    await refresh_begins()
    assert len(inner.calls) == 2  # refreshed, with no call
    await wrapper.wait_for_refreshes()
    assert (await wrapper.get_token_info(SCOPE)).token == "token-2"
    await wrapper.close()
    assert len(inner.calls) == 2
