from __future__ import annotations

from typing import Any

import pytest

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from tests.support import FakeClock, ScriptedCredential

SCOPE = "https://management.azure.com/.default"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def credential(clock: FakeClock) -> ScriptedCredential:
    return ScriptedCredential(clock=clock)


def make_policy(credential: Any, clock: FakeClock, **options: Any) -> Any:
    """A policy on the fake clock with no jitter: a 3600 s token is due with under 300 s left."""
    policy: Any = AsyncBackgroundRefreshTokenPolicy(credential, SCOPE, **options)
    policy._store.clock = clock
    policy._store.draw_jitter = lambda: 0
    return policy


@pytest.fixture
def policy(credential: ScriptedCredential, clock: FakeClock) -> Any:
    return make_policy(credential, clock)
