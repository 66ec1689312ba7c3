"""Semantic 7: tokens per key; 401s and CAE challenges through azure-core's real pipeline."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from azure.core import __version__ as azure_core_version
from azure.core.pipeline import AsyncPipeline
from azure.core.rest import HttpRequest

from tests.support import FakeClock, ScriptedCredential, ScriptedTransport, bearer, claims_challenge, make_request
from tests.unit.conftest import SCOPE

URL = "https://management.example.test/subscriptions"
CLAIMS = json.dumps({"access_token": {"nbf": {"essential": True, "value": "1700000000"}}})


def token_number(authorization: str | None) -> int:
    assert authorization is not None
    return int(authorization.rsplit("-", 1)[1])


async def send(pipeline: AsyncPipeline[Any, Any]) -> int:
    response = await pipeline.run(HttpRequest("GET", URL))
    return int(response.http_response.status_code)


async def test_authorize_request_caches_per_key_and_on_request_keeps_its_scopes(
    policy: Any, credential: ScriptedCredential
) -> None:
    other = make_request()
    await policy.authorize_request(other, "https://vault.azure.net/.default")
    assert bearer(other) == "Bearer token-1"
    assert credential.calls[0].scopes == ("https://vault.azure.net/.default",)
    mine = make_request()
    await policy.on_request(mine)
    assert bearer(mine) == "Bearer token-2"  # never the other scope's token
    assert credential.calls[1].scopes == (SCOPE,)


async def test_authorize_request_for_the_policy_scopes_is_used_by_later_requests(
    policy: Any, credential: ScriptedCredential
) -> None:
    await policy.on_request(make_request())
    request = make_request()
    await policy.authorize_request(request, SCOPE)  # always asks the credential, as azure-core does
    assert bearer(request) == "Bearer token-2"
    later = make_request()
    await policy.on_request(later)
    assert bearer(later) == "Bearer token-2"
    assert len(credential.calls) == 2


async def test_tenant_is_part_of_the_key_and_reaches_the_credential(
    policy: Any, credential: ScriptedCredential
) -> None:
    request = make_request()
    await policy.authorize_request(request, SCOPE, tenant_id="tenant-b")
    assert credential.calls[0].options == {"tenant_id": "tenant-b"}
    later = make_request()
    await policy.on_request(later)
    assert bearer(later) == "Bearer token-2"  # the default tenant's token, fetched separately


async def test_concurrent_identical_authorize_requests_share_a_call(
    policy: Any, credential: ScriptedCredential
) -> None:
    credential.gate = asyncio.Event()
    requests = [make_request() for _ in range(20)]
    pending = asyncio.gather(*(policy.authorize_request(r, SCOPE, claims=CLAIMS) for r in requests))
    await asyncio.sleep(0)
    credential.gate.set()
    await pending
    assert len(credential.calls) == 1
    assert credential.calls[0].options == {"claims": CLAIMS}


async def test_different_claims_are_not_shared_and_do_not_retry_each_other(
    policy: Any, credential: ScriptedCredential
) -> None:
    credential.gate = asyncio.Event()
    requests = [make_request() for _ in range(8)]
    pending = asyncio.gather(
        *(policy.authorize_request(r, SCOPE, claims=f"claims-{i}") for i, r in enumerate(requests))
    )
    await asyncio.sleep(0)
    credential.gate.set()
    await pending
    assert len(credential.calls) == 8  # one each: the explicit stores do not send the others round again
    assert sorted(c.options["claims"] for c in credential.calls) == [f"claims-{i}" for i in range(8)]
    assert {bearer(r) for r in requests} == {f"Bearer token-{i}" for i in range(1, 9)}


async def test_authorize_request_never_joins_a_plain_refresh(policy: Any, credential: ScriptedCredential) -> None:
    credential.gate = asyncio.Event()
    waiting = asyncio.ensure_future(policy.on_request(make_request()))
    await asyncio.sleep(0)
    explicit = asyncio.ensure_future(policy.authorize_request(make_request(), SCOPE))
    await asyncio.sleep(0)
    credential.gate.set()
    await asyncio.gather(waiting, explicit)
    assert len(credential.calls) == 2


async def test_a_401_inside_one_policys_send_leaves_another_policys_check_alone(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    other: Any = type(policy)(credential, SCOPE)
    await other.on_request(make_request())
    assert other._token is not None

    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        other._token = None  # inside policy's send(): the other policy has no scope here
        return 200, {}

    await send(AsyncPipeline(ScriptedTransport(respond), policies=[policy]))
    assert other._token is None


async def test_401_drops_the_token(policy: Any, credential: ScriptedCredential) -> None:
    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        return (401, {}) if token_number(request.headers.get("Authorization")) == 1 else (200, {})

    pipeline = AsyncPipeline(ScriptedTransport(respond), policies=[policy])
    assert await send(pipeline) == 401
    assert await send(pipeline) == 200
    assert len(credential.calls) == 2


async def test_refresh_begun_before_a_401_never_writes_back(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    revoked = {1, 2}

    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        return (401, {}) if token_number(request.headers.get("Authorization")) in revoked else (200, {})

    transport = ScriptedTransport(respond)
    pipeline = AsyncPipeline(transport, policies=[policy])
    await policy.on_request(make_request())  # token-1
    clock.advance(3400)
    credential.gate = asyncio.Event()
    assert await send(pipeline) == 401  # starts the background refresh (token-2), then the 401 invalidates
    credential.gate.set()
    await asyncio.sleep(0)
    credential.gate = None
    assert await send(pipeline) == 200
    assert token_number(transport.seen[-1][1]) == 3  # token-2 was begun before the 401: never used


async def test_burst_of_401s_for_one_revoked_token_refreshes_once(policy: Any, credential: ScriptedCredential) -> None:
    all_sent, release = asyncio.Event(), asyncio.Event()
    arrived = 0

    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        nonlocal arrived
        if token_number(request.headers.get("Authorization")) != 1:
            return 200, {}
        arrived += 1
        if arrived == 30:
            all_sent.set()
        if arrived == 1:
            await all_sent.wait()  # every request of the burst carries token-1
            return 401, {}
        await release.wait()  # the rest of the burst is answered after token-2 is cached
        return 401, {}

    pipeline = AsyncPipeline(ScriptedTransport(respond), policies=[policy])
    await policy.on_request(make_request())
    burst = [asyncio.ensure_future(send(pipeline)) for _ in range(30)]
    await all_sent.wait()
    await asyncio.sleep(0)
    assert await send(pipeline) == 200  # fetched token-2
    release.set()
    assert (await asyncio.gather(*burst)).count(401) == 30
    assert await send(pipeline) == 200
    assert len(credential.calls) == 2  # the late 401s for token-1 left token-2 alone


async def test_401_for_another_key_leaves_the_policy_token(policy: Any, credential: ScriptedCredential) -> None:
    class OtherScope(type(policy)):  # type: ignore[misc]
        async def on_request(self, request: Any) -> None:
            await self.authorize_request(request, "https://other.example.test/.default")

    other = OtherScope(credential, SCOPE)
    other._store.clock = policy._store.clock
    await other.authorize_request(make_request(), SCOPE)  # token-1 for the policy's own scopes

    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        return 401, {}

    assert await send(AsyncPipeline(ScriptedTransport(respond), policies=[other])) == 401
    own = other._store.current(other._default_key)  # the token for the policy's own scopes
    assert own is not None
    assert own.token.token == "token-1"


async def test_cae_claims_challenge_round_trip(policy: Any, credential: ScriptedCredential) -> None:
    enable_cae_policy = type(policy)(credential, SCOPE, enable_cae=True)

    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        number = token_number(request.headers.get("Authorization"))
        if credential.calls[number - 1].options.get("claims") == CLAIMS:
            return 200, {}
        return 401, {"WWW-Authenticate": claims_challenge(CLAIMS)}

    transport = ScriptedTransport(respond)
    pipeline = AsyncPipeline(transport, policies=[enable_cae_policy])
    assert await send(pipeline) == 200
    assert [token_number(auth) for _, auth in transport.seen] == [1, 2]
    assert credential.calls[0].options == {"enable_cae": True}
    assert credential.calls[1].options == {"enable_cae": True, "claims": CLAIMS}
    if tuple(int(part) for part in azure_core_version.split(".")[:2]) >= (1, 33):
        # azure-core >= 1.33 caches the claims token (on_challenge -> authorize_request).
        assert await send(pipeline) == 200
        assert token_number(transport.seen[-1][1]) == 2
        assert len(credential.calls) == 2
