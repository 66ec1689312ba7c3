"""The async policy attaches a token that arrives expired, and asks again only after retry_delay."""

from __future__ import annotations

from typing import Any

from bgrefresh_policy._key_state import Action, CachedToken, decide
from tests.support import FakeClock, ScriptedCredential, bearer, make_request
from tests.unit.conftest import make_policy


async def test_ten_minutes_of_requests_make_one_credential_call_per_retry_delay(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    credential.fixed_expiry = clock() - 5
    policy: Any = make_policy(credential, clock, retry_delay=30)
    for second in range(600):  # ten minutes, a request a second
        request = make_request()
        await policy.on_request(request)
        assert bearer(request) == f"Bearer token-{second // 30 + 1}"
        clock.advance(1)
    assert len(credential.calls) == 600 // 30
    await policy.close()


def test_decide_attaches_a_held_expired_token_only_during_the_back_off() -> None:
    now = 1_000.0
    expired = CachedToken(type("Token", (), {"token": "t", "expires_on": now - 5})(), jitter=0, serial=1)
    common: dict[str, Any] = {"min_validity": 60.0, "background_busy": False, "background_allowed": True}
    assert decide(expired, now, retry_not_before=now + 1, holding_expired=True, **common) is Action.ATTACH
    assert decide(expired, now, retry_not_before=now, holding_expired=True, **common) is Action.INLINE
    assert decide(expired, now, retry_not_before=now + 1, holding_expired=False, **common) is Action.INLINE
    assert decide(None, now, retry_not_before=now + 1, holding_expired=True, **common) is Action.INLINE
