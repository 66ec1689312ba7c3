"""The policy inside the real ResourceManagementClient, with real azure-identity credentials, on loopback.

Tokens live an hour, as Entra ID's do; the tests move the wall clock ahead (``wall_clock``) to
make one due, so azure-identity's own refresh rules (its cache, its 30 s guard between requests)
see the same hour pass and really go to the token endpoint.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import time_machine
from azure.core import AsyncPipelineClient
from azure.core.pipeline.policies import (
    AsyncBearerTokenCredentialPolicy,
    AsyncRetryPolicy,
    SensitiveHeaderCleanupPolicy,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.mgmt.resource.resources.aio import ResourceManagementClient

from tests.emulator.arm import SUBSCRIPTION_ID
from tests.emulator.entra import Fault
from tests.emulator.server import Emulator
from tests.integration.conftest import (
    ARM_SCOPE,
    arm_client,
    assertion_credential,
    background_policy,
    make_due,
    secret_credential,
)
from tests.support import HANG_GUARD, eventually_async

pytestmark = pytest.mark.integration

CLAIMS = json.dumps({"access_token": {"nbf": {"essential": True, "value": "1732000000"}}})


async def get_group(client: ResourceManagementClient) -> None:
    group = await client.resource_groups.get("rg-alpha")
    assert group.name == "rg-alpha"


async def test_resource_groups_through_the_policy(emulator: Emulator, credential: Any) -> None:
    async with (
        background_policy(credential) as policy,
        arm_client(emulator, credential, policy, retry_total=0) as client,
    ):
        names = [group.name async for group in client.resource_groups.list()]
    assert names == ["rg-alpha", "rg-beta"]
    assert emulator.tokens.requests == 1
    assert emulator.arm.unauthorized == 0


@pytest.mark.parametrize("make_credential", [secret_credential, assertion_credential])
async def test_requests_keep_flowing_across_a_refresh(
    emulator: Emulator, make_credential: Any, wall_clock: time_machine.Traveller
) -> None:
    async with (
        make_credential(emulator) as credential,
        background_policy(credential) as policy,
        arm_client(emulator, credential, policy, retry_total=0) as client,
    ):
        await get_group(client)  # first token, inline
        (first,) = emulator.tokens.issued
        emulator.tokens.hold()  # the refresh's token request waits until the test releases it
        seen = len(emulator.arm.bearer_tokens)

        async def rounds() -> None:
            for _ in range(3):  # a request that waited for the held token request would never finish
                await asyncio.wait_for(asyncio.gather(*(get_group(client) for _ in range(5))), HANG_GUARD)

        make_due(wall_clock, emulator)
        await rounds()  # the first of these starts the refresh
        await eventually_async(lambda: emulator.tokens.held == 1)  # its token request is held at the endpoint
        await rounds()
        assert emulator.tokens.held == 1  # all 30 went through while the refresh was held
        assert emulator.arm.bearer_tokens[seen:] == [first] * 30
        emulator.tokens.release()
        await policy.wait_for_refreshes()
        await get_group(client)
    assert emulator.tokens.requests == 2  # the first token and exactly one refresh
    first_again, second = emulator.tokens.issued
    assert first_again == first
    assert emulator.arm.bearer_tokens[-1] == second
    assert emulator.arm.unauthorized == 0


async def test_azure_core_policy_waits_for_the_same_refresh(
    emulator: Emulator, credential: Any, wall_clock: time_machine.Traveller
) -> None:
    """The counterpart: azure-core's own policy makes requests wait for the token endpoint."""
    policy = AsyncBearerTokenCredentialPolicy(credential, ARM_SCOPE)
    async with arm_client(emulator, credential, policy, retry_total=0) as client:
        await get_group(client)
        seen = len(emulator.arm.bearer_tokens)
        emulator.tokens.hold()
        make_due(wall_clock, emulator)
        requests = [asyncio.ensure_future(get_group(client)) for _ in range(20)]
        await eventually_async(lambda: emulator.tokens.held == 1)  # one of them asks for the new token
        assert not any(request.done() for request in requests)
        assert len(emulator.arm.bearer_tokens) == seen  # none has reached ARM
        emulator.tokens.release()
        await asyncio.wait_for(asyncio.gather(*requests), HANG_GUARD)
    assert emulator.tokens.requests == 2
    _, second = emulator.tokens.issued
    # Every request carried the token that was fetched only once the test released the endpoint:
    # each of them waited for it.
    assert emulator.arm.bearer_tokens[seen:] == [second] * 20


async def test_one_token_request_per_refresh_cycle_under_150_concurrent_requests(
    emulator: Emulator, credential: Any, wall_clock: time_machine.Traveller
) -> None:
    async with (
        background_policy(credential) as policy,
        arm_client(emulator, credential, policy, retry_total=0) as client,
    ):
        await get_group(client)
        for cycle in range(3):
            make_due(wall_clock, emulator)
            before = emulator.tokens.requests
            emulator.tokens.hold()  # the whole burst goes by while the refresh is under way
            await asyncio.wait_for(asyncio.gather(*(get_group(client) for _ in range(150))), HANG_GUARD)
            await eventually_async(lambda: emulator.tokens.held == 1)
            assert emulator.tokens.requests - before == 1, f"cycle {cycle}"
            emulator.tokens.release()
            await policy.wait_for_refreshes()
            assert emulator.tokens.requests - before == 1, f"cycle {cycle}"
    assert len(emulator.tokens.issued) == 4
    assert emulator.arm.unauthorized == 0


async def test_cae_claims_challenge_round_trip(emulator: Emulator, credential: Any) -> None:
    emulator.arm.demand_claims = CLAIMS
    async with (
        background_policy(credential, enable_cae=True) as policy,
        arm_client(emulator, credential, policy, retry_total=0) as client,
    ):
        await get_group(client)  # 401 insufficient_claims, then a token with the claims, then 200
        await get_group(client)  # the claims token is cached and reused
    assert emulator.arm.unauthorized == 1
    assert emulator.tokens.requests == 2
    requested_claims = [json.loads(t.claims) if t.claims else {} for t in emulator.tokens.issued.values()]
    assert requested_claims[1]["access_token"]["nbf"] == {"essential": True, "value": "1732000000"}
    assert requested_claims[1]["access_token"]["xms_cc"] == {"values": ["CP1"]}  # enable_cae reached MSAL


async def test_token_endpoint_outage_in_the_background_window_then_recovery(
    emulator: Emulator, wall_clock: time_machine.Traveller
) -> None:
    async with (
        secret_credential(emulator, retry_total=0) as credential,
        background_policy(credential, retry_delay=40) as policy,
        arm_client(emulator, credential, policy, retry_total=0) as client,
    ):
        await get_group(client)
        make_due(wall_clock, emulator)
        emulator.tokens.fault = Fault.HTTP_503
        for _ in range(4):  # four back-off periods of outage
            for _ in range(10):
                await get_group(client)  # raises if any request fails
            await policy.wait_for_refreshes()
            wall_clock.shift(40)
        failed_attempts = emulator.tokens.failed
        emulator.tokens.fault = Fault.NONE
        await get_group(client)  # the attempt that succeeds
        await policy.wait_for_refreshes()
        await get_group(client)
    assert failed_attempts == 4  # one background attempt per retry_delay, however many requests
    assert len(emulator.tokens.issued) == 2  # recovered without restarting anything
    assert emulator.arm.unauthorized == 0


async def test_composed_into_a_plain_async_pipeline_client(
    emulator: Emulator, credential: Any, wall_clock: time_machine.Traveller
) -> None:
    """The policy in a pipeline of one's own: azure-core's AsyncPipelineClient over the real aiohttp transport."""
    async with (
        background_policy(credential) as policy,
        AsyncPipelineClient[HttpRequest, AsyncHttpResponse](
            emulator.url,
            policies=[AsyncRetryPolicy(retry_total=0), policy, SensitiveHeaderCleanupPolicy()],
            transport=AioHttpTransport(connection_verify=emulator.ca_path),
        ) as client,
    ):
        url = f"{emulator.url}/subscriptions/{SUBSCRIPTION_ID}/resourcegroups?api-version=2024-11-01"
        response = await client.send_request(HttpRequest("GET", url))
        assert response.status_code == 200
        assert [g["name"] for g in response.json()["value"]] == ["rg-alpha", "rg-beta"]
        (first,) = emulator.tokens.issued
        seen = len(emulator.arm.bearer_tokens)
        emulator.tokens.hold()  # the refresh's token request waits until the test releases it
        make_due(wall_clock, emulator)
        responses = await asyncio.wait_for(
            asyncio.gather(*(client.send_request(HttpRequest("GET", url)) for _ in range(100))), HANG_GUARD
        )
        await eventually_async(lambda: emulator.tokens.held == 1)
        # None of the 100 waited for the token endpoint: all were answered while it held the refresh.
        assert emulator.arm.bearer_tokens[seen:] == [first] * 100
        emulator.tokens.release()
        await policy.wait_for_refreshes()
    assert {r.status_code for r in responses} == {200}
    assert emulator.tokens.requests == 2
