"""The refresh rule and the decision, as plain functions of numbers: no event loop here."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgrefresh_policy._key_state import Action, CachedToken, decide

NOW = 1_800_000_000.0


def cached(expires_in: float, *, refresh_in: float | None = None, jitter: int = 0) -> CachedToken:
    refresh_on = None if refresh_in is None else int(NOW + refresh_in)
    return CachedToken(AccessTokenInfo("secret", int(NOW + expires_in), refresh_on=refresh_on), jitter=jitter, serial=1)


def run(token: CachedToken | None, **overrides: Any) -> Action:
    options: dict[str, Any] = {
        "min_validity": 60.0,
        "retry_not_before": float("-inf"),
        "background_busy": False,
        "background_allowed": True,
    }
    options.update(overrides)
    return decide(token, NOW, **options)


class TestIsDue:
    def test_window_without_refresh_on_is_300_s_minus_jitter(self) -> None:
        assert not cached(301).is_due(NOW)
        assert not cached(300).is_due(NOW)  # azure-core compares "< window", strictly
        assert cached(299).is_due(NOW)
        assert not cached(250, jitter=60).is_due(NOW)
        assert cached(239, jitter=60).is_due(NOW)

    def test_refresh_on_plus_jitter(self) -> None:
        assert cached(3600, refresh_in=0).is_due(NOW)  # "<=": due at refresh_on itself
        assert not cached(3600, refresh_in=1).is_due(NOW)
        assert not cached(3600, refresh_in=-30, jitter=45).is_due(NOW)
        assert cached(3600, refresh_in=-30, jitter=30).is_due(NOW)

    def test_jittered_refresh_on_past_expiry_is_due_at_expiry(self) -> None:
        token = cached(10, refresh_in=-5, jitter=60)
        assert not token.is_due(NOW + 9)
        assert token.is_due(NOW + 10)

    def test_expired_is_always_due(self) -> None:
        assert cached(0, refresh_in=100).is_due(NOW)
        assert cached(-1).is_due(NOW)

    def test_access_token_without_refresh_on(self) -> None:
        token = CachedToken(AccessToken("secret", int(NOW + 200)), jitter=0, serial=1)
        assert token.refresh_on is None
        assert token.is_due(NOW)

    def test_repr_never_shows_the_token(self) -> None:
        assert "secret" not in repr(cached(100))


azure_core_rule = pytest.importorskip("azure.core.pipeline.policies._authentication")


@pytest.mark.skipif(
    not hasattr(azure_core_rule, "_should_refresh_token"), reason="azure-core < 1.38.3 has no jittered rule"
)
# No deadline or slowness check: on a loaded machine an example can take long, and these are about the rule.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expires_in=st.integers(min_value=-100, max_value=4000),
    refresh_in=st.one_of(st.none(), st.integers(min_value=-400, max_value=4000)),
    jitter=st.integers(min_value=0, max_value=60),
    elapsed=st.floats(min_value=0, max_value=4000, allow_nan=False),
)
def test_same_rule_as_azure_core(expires_in: int, refresh_in: int | None, jitter: int, elapsed: float) -> None:
    base = 1_800_000_000
    token = AccessTokenInfo("secret", base + expires_in, refresh_on=None if refresh_in is None else base + refresh_in)
    now = base + elapsed

    class _Time:
        @staticmethod
        def time() -> float:
            return now

    with pytest.MonkeyPatch.context() as patch:  # azure-core's rule reads time.time() itself
        patch.setattr(azure_core_rule, "time", _Time)
        expected = azure_core_rule._should_refresh_token(token, jitter)
    assert CachedToken(token, jitter=jitter, serial=1).is_due(now) == expected


class TestDecide:
    def test_no_token_waits(self) -> None:
        assert run(None) is Action.INLINE

    def test_expired_token_waits_even_with_zero_min_validity(self) -> None:
        assert run(cached(0), min_validity=0.0) is Action.INLINE
        assert run(cached(-5), retry_not_before=NOW + 100) is Action.INLINE

    def test_token_not_due_is_attached(self) -> None:
        assert run(cached(3600)) is Action.ATTACH

    def test_due_token_with_time_left_refreshes_in_background(self) -> None:
        assert run(cached(200)) is Action.BACKGROUND

    def test_one_background_refresh_at_a_time(self) -> None:
        assert run(cached(200), background_busy=True) is Action.ATTACH

    def test_back_off_attaches_without_refreshing(self) -> None:
        assert run(cached(200), retry_not_before=NOW + 1) is Action.ATTACH
        assert run(cached(200), retry_not_before=NOW) is Action.BACKGROUND

    def test_below_min_validity_waits(self) -> None:
        assert run(cached(59)) is Action.INLINE
        assert run(cached(60)) is Action.BACKGROUND
        assert run(cached(59), background_busy=True) is Action.INLINE  # joins the running refresh

    def test_below_min_validity_during_back_off_keeps_the_valid_token(self) -> None:
        assert run(cached(30), retry_not_before=NOW + 5) is Action.ATTACH

    def test_closed_policy_refreshes_inline(self) -> None:
        assert run(cached(200), background_allowed=False) is Action.INLINE
        assert run(cached(3600), background_allowed=False) is Action.ATTACH

    def test_min_validity_applies_only_once_due(self) -> None:
        assert run(cached(3600, refresh_in=100), min_validity=7200.0) is Action.ATTACH
        assert run(cached(3600, refresh_in=-1), min_validity=7200.0) is Action.INLINE
