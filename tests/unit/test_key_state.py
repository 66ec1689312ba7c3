"""Per-key bookkeeping: generations, back-off and write-back rules, with the time passed in."""

from __future__ import annotations

from azure.core.credentials import AccessTokenInfo

from bgrefresh_policy._key_state import Action, CachedToken, Completion, KeyState, TokenKey
from bgrefresh_policy._options import RefreshOptions

NOW = 1_800_000_000.0
OPTIONS = RefreshOptions(min_validity=60, retry_delay=30, refresh_timeout=10)


def token(expires_in: float, serial: int = 1) -> CachedToken:
    return CachedToken(AccessTokenInfo("secret", int(NOW + expires_in)), jitter=0, serial=serial)


def test_key_ignores_scope_order_and_includes_tenant() -> None:
    assert TokenKey.of(["b", "a"]) == TokenKey.of(["a", "b"])
    assert TokenKey.of(["a"], "tenant-1") != TokenKey.of(["a"])


def test_first_token_is_stored() -> None:
    state = KeyState()
    assert state.complete(0, token(3600), NOW, retry_delay=30) is Completion.STORED
    assert state.current is not None
    assert state.current.expires_on == int(NOW + 3600)


def test_result_begun_before_an_invalidation_is_discarded() -> None:
    state = KeyState()
    state.complete(0, token(200, serial=1), NOW, retry_delay=30)
    generation = state.begin_background(NOW)
    assert state.invalidate(serial=1)
    assert state.complete(generation, token(3600, serial=2), NOW, retry_delay=30) is Completion.STALE
    assert state.current is None


def test_explicit_store_makes_earlier_refreshes_stale() -> None:
    state = KeyState()
    generation = state.generation
    state.store_explicit(token(100, serial=7))
    assert state.complete(generation, token(3600), NOW, retry_delay=30) is Completion.STALE
    assert state.current is not None
    assert state.current.serial == 7


def test_explicit_completion_replaces_even_a_longer_lived_token() -> None:
    state = KeyState()
    state.complete(0, token(3600, serial=1), NOW, retry_delay=30)
    before = state.generation
    assert state.complete(before, token(600, serial=2), NOW, retry_delay=30, explicit=True) is Completion.STORED
    assert state.current is not None
    assert state.current.serial == 2
    assert state.generation == before + 1


def test_background_result_replaces_only_a_token_expiring_sooner() -> None:
    state = KeyState()
    state.complete(0, token(200, serial=1), NOW, retry_delay=30)
    assert state.complete(0, token(200, serial=2), NOW, retry_delay=30) is Completion.NOT_NEWER
    assert state.complete(0, token(100, serial=3), NOW, retry_delay=30) is Completion.NOT_NEWER
    assert state.current is not None
    assert state.current.serial == 1
    assert state.complete(0, token(3600, serial=4), NOW, retry_delay=30) is Completion.STORED
    assert state.current is not None
    assert state.current.serial == 4


def test_failure_and_no_newer_token_back_off_for_retry_delay() -> None:
    for outcome in (None, token(200, serial=2)):
        state = KeyState()
        state.complete(0, token(200, serial=1), NOW, retry_delay=30)
        state.begin_background(NOW)
        state.end_background()
        state.complete(0, outcome, NOW, retry_delay=30)
        assert state.decide(NOW + 29.9, OPTIONS, background_allowed=True) is Action.ATTACH
        assert state.decide(NOW + 30, OPTIONS, background_allowed=True) is Action.BACKGROUND


def test_running_background_refresh_blocks_a_second_one() -> None:
    state = KeyState()
    state.complete(0, token(200), NOW, retry_delay=30)
    assert state.decide(NOW, OPTIONS, background_allowed=True) is Action.BACKGROUND
    state.begin_background(NOW)
    assert state.decide(NOW + 1, OPTIONS, background_allowed=True) is Action.ATTACH
    state.end_background()
    assert state.decide(NOW + 1, OPTIONS, background_allowed=True) is Action.BACKGROUND


def test_a_401_for_a_replaced_token_leaves_the_new_one() -> None:
    state = KeyState()
    state.complete(0, token(3600, serial=1), NOW, retry_delay=30)
    assert state.invalidate(serial=1)
    generation = state.generation
    state.complete(generation, token(3600, serial=2), NOW, retry_delay=30)
    assert not state.invalidate(serial=1)
    assert state.current is not None
    assert state.current.serial == 2
    assert state.generation == generation


def test_invalidate_without_serial_drops_anything() -> None:
    state = KeyState()
    state.complete(0, token(3600, serial=1), NOW, retry_delay=30)
    assert state.invalidate()
    assert state.current is None
    assert state.decide(NOW, OPTIONS, background_allowed=True) is Action.INLINE


def test_success_clears_the_back_off() -> None:
    state = KeyState()
    state.complete(0, token(200, serial=1), NOW, retry_delay=30)
    state.complete(0, None, NOW, retry_delay=30)
    state.complete(0, token(250, serial=2), NOW + 1, retry_delay=30)
    assert state.retry_not_before == float("-inf")


def test_explicit_store_clears_the_back_off() -> None:
    state = KeyState()
    state.complete(0, token(200, serial=1), NOW, retry_delay=30)
    state.complete(0, None, NOW, retry_delay=30)
    state.store_explicit(token(200, serial=2))
    assert state.decide(NOW, OPTIONS, background_allowed=True) is Action.BACKGROUND
