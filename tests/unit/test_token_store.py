"""The token store keeps each key's back-off and running mark to itself."""

from __future__ import annotations

from typing import Any

from azure.core.credentials import AccessTokenInfo

from bgrefresh_policy._key_state import Action, TokenKey
from bgrefresh_policy._options import RefreshOptions
from bgrefresh_policy._store import TokenStore
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


def test_a_key_unused_for_a_token_lifetime_after_its_token_expired_is_forgotten() -> None:
    clock = FakeClock()
    store = TokenStore(RefreshOptions())
    pinned = store.pin(A)
    store.clock = clock
    store.store(B, AccessTokenInfo("b-1", int(clock() + 3600)))
    clock.advance(3600 + 3599)  # expired just under a lifetime ago, and no request needed it since
    store.begin(A)
    assert store.peek(B) is not None
    clock.advance(61)  # past a lifetime, and the next look (once a minute at most)
    store.begin(A)
    assert store.peek(B) is None
    clock.advance(2 * 3600 + 61)
    store.begin(B)
    assert store.peek(A) is pinned  # a policy's own key is kept while the policy holds it
    del pinned
    clock.advance(2 * 3600 + 61)
    store.begin(B)
    assert store.peek(A) is None  # and forgotten like any other once no policy does


def test_a_key_in_use_or_still_valid_is_kept() -> None:
    clock = FakeClock()
    store = TokenStore(RefreshOptions())
    store.clock = clock
    store.store(B, AccessTokenInfo("b-1", int(clock() + 3600)))
    for _ in range(100):  # requests keep needing it: each refresh comes back valid
        clock.advance(3000)
        store.begin(B)
        store.store(B, AccessTokenInfo("b-n", int(clock() + 3600)))
    assert store.peek(B) is not None
    action, *_ = store.begin(B)
    assert action is Action.ATTACH


async def test_a_policy_forgets_the_tenants_it_no_longer_serves() -> None:
    from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
    from tests.support import ScriptedCredential, make_request

    clock = FakeClock()
    policy: Any = AsyncBackgroundRefreshTokenPolicy(ScriptedCredential(clock=clock), "https://vault.azure.net/.default")
    policy._store.clock = clock
    for tenant in range(50):
        await policy.authorize_request(make_request(), "https://vault.azure.net/.default", tenant_id=f"tenant-{tenant}")
    assert len(policy._store.states()) == 51
    clock.advance(2 * 3600 + 61)  # every tenant's token expired a lifetime ago
    await policy.on_request(make_request())  # the next request past the hot path looks
    assert list(policy._store.states()) == [policy._default_key]


def test_a_key_whose_explicit_refresh_is_running_is_not_forgotten() -> None:
    clock = FakeClock()
    store = TokenStore(RefreshOptions())
    store.clock = clock
    store.store(B, AccessTokenInfo("b-1", int(clock() + 3600)))
    clock.advance(2 * 3600 + 61)  # expired a lifetime ago, and not used since
    generation = store.generation(B)  # authorize_request for B begins its credential call ...
    clock.advance(61)
    store.begin(A)  # ... while a look for keys to forget runs
    store.finish(B, generation, AccessTokenInfo("b-2", int(clock() + 3600)), None, mark=None, explicit=True)
    current = store.current(B)
    assert current is not None
    assert current.token.token == "b-2"  # cached, not discarded as stale
