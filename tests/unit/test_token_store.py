"""The token store keeps each key's back-off and running mark to itself."""

from __future__ import annotations

from azure.core.credentials import AccessTokenInfo

from bgrefresh_policy._decision import Action
from bgrefresh_policy._key_state import TokenKey
from bgrefresh_policy._options import RefreshOptions
from bgrefresh_policy._token_store import TokenStore
from tests.support import FakeClock

A = TokenKey.of(["https://management.azure.com/.default"])
B = TokenKey.of(["https://management.azure.com/.default"], "other-tenant")


def store_with_due_tokens(clock: FakeClock) -> TokenStore:
    store = TokenStore(RefreshOptions())
    store.clock = clock
    store.draw_jitter = lambda: 0
    for key in (A, B):
        store.store(key, AccessTokenInfo(f"{key.tenant_id}-1", int(clock() + 3600)))
    clock.advance(3400)  # both due, 200 s left
    return store


def test_a_failed_background_refresh_backs_off_only_its_own_key() -> None:
    clock = FakeClock()
    store = store_with_due_tokens(clock)
    action, _, generation, mark = store.begin(A)
    assert action is Action.BACKGROUND
    store.finish(A, generation, None, OSError("token endpoint down"), mark=mark, explicit=False)
    assert store.begin(A)[0] is Action.ATTACH  # backing off retry_delay
    action, _, _, mark_b = store.begin(B)
    assert action is Action.BACKGROUND  # at once: A's failure says nothing about B
    assert mark_b is not None


def test_a_running_background_refresh_marks_only_its_own_key() -> None:
    clock = FakeClock()
    store = store_with_due_tokens(clock)
    assert store.begin(A)[0] is Action.BACKGROUND
    assert store.begin(A)[0] is Action.ATTACH  # one at a time per key
    assert store.begin(B)[0] is Action.BACKGROUND
