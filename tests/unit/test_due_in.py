"""``token_status().due_in`` counts to the moment the token falls due by azure-core's rule: the
credential's ``refresh_on`` plus the token's jitter (0-60 s), never past expiry; without
``refresh_on``, the 300 s window less the jitter. What docs/faq.rst tells a user who set a token
due in 5 s and read a ``due_in`` of 44-47 s."""

from __future__ import annotations

from typing import Any

import pytest

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from tests.support import FakeClock, ScriptedCredential, make_request
from tests.unit.conftest import SCOPE, make_policy


async def status_after_first_request(policy: Any) -> Any:
    await policy.on_request(make_request())
    (status,) = policy.token_status()
    return status


@pytest.mark.parametrize("jitter", [0, 42, 60])
async def test_due_in_is_refresh_on_plus_the_tokens_jitter(clock: FakeClock, jitter: int) -> None:
    policy = make_policy(ScriptedCredential(clock=clock, refresh_in=5), clock)
    policy._store.draw_jitter = lambda: jitter
    status = await status_after_first_request(policy)
    assert status.due_in == pytest.approx(5 + jitter, abs=0.01)
    assert status.expires_in == 3600


async def test_the_jitter_never_moves_the_due_time_past_expiry(clock: FakeClock) -> None:
    policy = make_policy(ScriptedCredential(clock=clock, refresh_in=5, lifetime=30), clock)
    policy._store.draw_jitter = lambda: 60
    status = await status_after_first_request(policy)
    assert status.expires_in == 30
    assert status.due_in == pytest.approx(30, abs=0.01)


async def test_without_refresh_on_the_window_is_300_s_less_the_jitter(clock: FakeClock) -> None:
    policy = make_policy(ScriptedCredential(clock=clock), clock)
    policy._store.draw_jitter = lambda: 42
    status = await status_after_first_request(policy)
    assert status.due_in == pytest.approx(3600 - (300 - 42), abs=0.01)


async def test_with_azure_cores_draw_a_token_due_in_5_s_shows_5_to_65_s(clock: FakeClock) -> None:
    seen = set()
    for _ in range(40):  # a credential each: each token draws its own jitter
        policy: Any = AsyncBackgroundRefreshTokenPolicy(ScriptedCredential(clock=clock, refresh_in=5), SCOPE)
        policy._store.clock = clock
        seen.add(round((await status_after_first_request(policy)).due_in))
    assert seen <= set(range(5, 66))
    assert len(seen) > 1  # drawn per token, not one offset for all
