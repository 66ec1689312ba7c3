"""One token per credential: async policies on one credential object share its tokens and refreshes."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from azure.core.pipeline import AsyncPipeline
from azure.core.rest import HttpRequest

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from bgrefresh_policy._sharing import shared_count
from tests.support import (
    HANG_GUARD,
    FakeClock,
    ScriptedCredential,
    ScriptedTransport,
    bearer,
    loop_until,
    make_request,
    refresh_begins,
)
from tests.unit.conftest import SCOPE, make_policy

VAULT = "https://vault.azure.net/.default"


def ten_policies(credential: Any, clock: FakeClock, **options: Any) -> list[Any]:
    return [make_policy(credential, clock, **options) for _ in range(10)]


async def test_ten_policies_racing_for_a_first_token_make_one_credential_call(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    policies = ten_policies(credential, clock)
    credential.gate = asyncio.Event()
    requests = [make_request() for _ in policies]
    pairs = zip(policies, requests, strict=True)
    tasks = [asyncio.create_task(policy.on_request(request)) for policy, request in pairs]
    await loop_until(lambda: len(credential.calls) == 1 and all(not task.done() for task in tasks))
    await asyncio.sleep(0)  # every request has had its turn: all wait on the one call
    assert len(credential.calls) == 1
    credential.gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), HANG_GUARD)
    assert {bearer(request) for request in requests} == {"Bearer token-1"}
    assert len(credential.calls) == 1


async def test_ten_policies_with_a_due_token_make_one_background_refresh_and_none_waits(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    policies = ten_policies(credential, clock)
    for policy in policies:
        await policy.on_request(make_request())
    clock.advance(3400)  # due, 200 s left
    credential.gate = asyncio.Event()  # the token endpoint hangs until released
    requests = [make_request() for _ in policies]
    for policy, request in zip(policies, requests, strict=True):
        await asyncio.wait_for(policy.on_request(request), HANG_GUARD)  # returns with the call held open
    await refresh_begins()
    assert {bearer(request) for request in requests} == {"Bearer token-1"}
    assert len(credential.calls) == 2  # one refresh ...
    assert credential.finished == 1  # ... still running
    credential.gate.set()
    await policies[0].wait_for_refreshes()
    after = make_request()
    await policies[9].on_request(after)
    assert bearer(after) == "Bearer token-2"
    assert len(credential.calls) == 2


async def test_a_policy_built_later_on_the_credential_starts_with_its_token(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    await make_policy(credential, clock).on_request(make_request())
    later = make_request()
    await AsyncBackgroundRefreshTokenPolicy(credential, SCOPE).on_request(later)
    assert bearer(later) == "Bearer token-1"
    assert len(credential.calls) == 1


async def test_credentials_that_compare_equal_are_still_two_credentials(clock: FakeClock) -> None:
    first, second = ScriptedCredential(clock=clock), ScriptedCredential(clock=clock)
    assert first == second  # dataclasses: equal fields
    for credential in (first, second):
        await make_policy(credential, clock).on_request(make_request())
    assert len(first.calls) == len(second.calls) == 1


async def test_scopes_tenants_cae_and_options_keep_their_own_tokens(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    request = make_request()
    await make_policy(credential, clock).on_request(request)
    for policy in (
        AsyncBackgroundRefreshTokenPolicy(credential, VAULT),  # other scopes
        AsyncBackgroundRefreshTokenPolicy(credential, SCOPE, enable_cae=True),
        AsyncBackgroundRefreshTokenPolicy(credential, SCOPE, min_validity=10),
        AsyncBackgroundRefreshTokenPolicy(credential, SCOPE, share_tokens=False),
    ):
        await policy.on_request(make_request())
    await make_policy(credential, clock).authorize_request(make_request(), SCOPE, tenant_id="other")
    assert len(credential.calls) == 6
    assert [call.options.get("enable_cae", False) for call in credential.calls] == [
        False,
        False,
        True,
        False,
        False,
        False,
    ]
    again = make_request()
    await make_policy(credential, clock).on_request(again)  # the default-tenant token is still the first
    assert bearer(again) == "Bearer token-1"


async def test_the_opt_out_keeps_a_policys_tokens_to_itself(credential: ScriptedCredential, clock: FakeClock) -> None:
    own = [make_policy(credential, clock, share_tokens=False) for _ in range(3)]
    for policy in own:
        await policy.on_request(make_request())
    assert len(credential.calls) == 3
    assert len({id(policy._store) for policy in own}) == 3


async def test_a_401_through_one_client_drops_the_token_for_every_client(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    answers = iter([401, 200])

    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        return next(answers), {}

    first, second = make_policy(credential, clock), make_policy(credential, clock)
    await first.on_request(make_request())
    response = await AsyncPipeline(ScriptedTransport(respond), policies=[first]).run(
        HttpRequest("GET", "https://a.test/")
    )
    assert response.http_response.status_code == 401  # no challenge to answer: returned as it is
    request = make_request()
    await second.on_request(request)
    assert bearer(request) == "Bearer token-2"  # the other client does not send the rejected token
    assert len(credential.calls) == 2


async def two_policies_one_refreshing(credential: ScriptedCredential, clock: FakeClock) -> tuple[Any, Any]:
    """Two policies on ``credential``; the first has started a background refresh, held open."""
    starter, other = make_policy(credential, clock), make_policy(credential, clock)
    await starter.on_request(make_request())
    clock.advance(3400)
    credential.gate = asyncio.Event()
    await starter.on_request(make_request())  # starts the background refresh: starter owns it
    await refresh_begins()
    return starter, other


async def test_closing_one_policy_leaves_the_refresh_another_started(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    starter, other = await two_policies_one_refreshing(credential, clock)
    await other.close()
    assert credential.cancelled == 0  # not the closing policy's: it runs on for the others
    credential.gate.set()
    await starter.wait_for_refreshes()
    request = make_request()
    await starter.on_request(request)
    assert bearer(request) == "Bearer token-2"


async def test_closing_the_policy_that_started_a_refresh_cancels_it(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    starter, other = await two_policies_one_refreshing(credential, clock)
    await starter.close()
    assert credential.cancelled == 1
    await other.on_request(make_request())  # the other, still open, starts the next one
    await refresh_begins()
    assert len(credential.calls) == 3
    credential.gate.set()
    await other.close()


async def test_the_library_never_keeps_a_credential_alive(clock: FakeClock) -> None:
    before = shared_count()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)
    await policy.on_request(make_request())
    assert shared_count() == before + 1
    gone = weakref.ref(credential)
    del policy, credential
    gc.collect()
    assert gone() is None
    assert shared_count() == before  # what was shared for it went with it
