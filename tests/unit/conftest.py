from __future__ import annotations

from typing import Any

import pytest

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from tests.support import FakeClock, ScriptedCredential, make_request

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


async def prime(policy: Any, clock: FakeClock, *, age: float = 3400) -> None:
    """Get token-1 (valid 3600 s), then let ``age`` seconds pass: by default it is due, 200 s left."""
    await policy.on_request(make_request())
    clock.advance(age)


@pytest.fixture
def policy(credential: ScriptedCredential, clock: FakeClock) -> Any:
    return make_policy(credential, clock)
