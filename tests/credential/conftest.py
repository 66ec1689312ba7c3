"""Fixtures for BackgroundRefreshCredential: wrappers on a fake clock with no jitter, no thread left behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import bgrefresh_policy
import bgrefresh_policy.aio
from tests.support import FakeClock, ScriptedCredential, SyncScriptedCredential

SCOPE = "https://vault.azure.net/.default"
OTHER_SCOPE = "https://storage.azure.com/.default"


def no_jitter() -> int:
    return 0


def on_fake_clock(wrapper: Any, clock: FakeClock) -> Any:
    """The wrapper's engine judges tokens by ``clock``, with no jitter: a 3600 s token is due with 300 s left."""
    wrapper._store.clock = clock
    wrapper._store.draw_jitter = no_jitter
    return wrapper


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sync_inner(clock: FakeClock) -> SyncScriptedCredential:
    return SyncScriptedCredential(clock=clock)


@pytest.fixture
def async_inner(clock: FakeClock) -> ScriptedCredential:
    return ScriptedCredential(clock=clock)


@pytest.fixture
def sync_wrapper(sync_inner: SyncScriptedCredential, clock: FakeClock) -> Iterator[Any]:
    wrapper = on_fake_clock(bgrefresh_policy.BackgroundRefreshCredential(sync_inner), clock)
    yield wrapper
    for gate in sync_inner.gates:  # release whatever a failed test left waiting
        gate.set()
    wrapper.close()
    left = [thread for thread in threading.enumerate() if thread.name.startswith("bgrefresh token refresh")]
    assert left == [], f"refresh threads left running: {left}"


@pytest.fixture
def async_wrapper(async_inner: ScriptedCredential, clock: FakeClock) -> Any:
    return on_fake_clock(bgrefresh_policy.aio.BackgroundRefreshCredential(async_inner), clock)
