"""The async policy refuses a token that arrives expired, and asks again only after retry_delay."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError

from bgrefresh_policy._key_state import Action, decide
from tests.support import FakeClock, ScriptedCredential, make_request
from tests.unit.conftest import make_policy


async def test_requests_fail_fast_until_retry_delay_has_passed(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    credential.fixed_expiry = clock() - 5
    policy: Any = make_policy(credential, clock, retry_delay=30)
    for _ in range(600):  # ten minutes, a request a second
        request = make_request()
        with pytest.raises(ClientAuthenticationError, match="already expired"):
            await policy.on_request(request)
        assert "Authorization" not in request.http_request.headers
        clock.advance(1)
    assert len(credential.calls) == 600 // 30
    await policy.close()


def test_decide_refuses_only_without_a_valid_token_and_only_during_the_back_off() -> None:
    now = 1_000.0
    common: dict[str, Any] = {"min_validity": 60.0, "background_busy": False, "background_allowed": True}
    assert decide(None, now, retry_not_before=now + 1, refusing=True, **common) is Action.REFUSE
    assert decide(None, now, retry_not_before=now, refusing=True, **common) is Action.INLINE
    assert decide(None, now, retry_not_before=now + 1, refusing=False, **common) is Action.INLINE
