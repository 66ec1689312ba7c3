"""The policy inside the real ResourceManagementClient, with real azure-identity credentials, on loopback.

Tokens live an hour, as Entra ID's do; the tests move the wall clock ahead (``wall_clock``) to
make one due, so azure-identity's own refresh rules (its cache, its 30 s guard between requests)
see the same hour pass and really go to the token endpoint.
"""

from __future__ import annotations

import asyncio
import json
import time
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

pytestmark = pytest.mark.integration

CLAIMS = json.dumps({"access_token": {"nbf": {"essential": True, "value": "1732000000"}}})


async def timed_get(client: ResourceManagementClient) -> float:
    start = time.perf_counter()
    group = await client.resource_groups.get("rg-alpha")
    assert group.name == "rg-alpha"
    return time.perf_counter() - start


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
        await timed_get(client)  # first token, inline
        emulator.tokens.latency = 1.0  # the refresh takes a second
        latencies: list[float] = []
        for step in range(30):  # 1.5 s of requests, the refresh starting in the middle
            if step == 10:
                make_due(wall_clock, emulator)
            latencies += await asyncio.gather(*(timed_get(client) for _ in range(5)))
            await asyncio.sleep(0.05)
        await policy.wait_for_refreshes()
        await timed_get(client)
    assert emulator.tokens.requests == 2  # the first token and exactly one refresh
    assert len(emulator.tokens.issued) == 2
    # A request that waited for the token endpoint would have taken at least its 1 s latency.
    assert max(latencies) < 0.9, f"slowest request {max(latencies):.3f} s"
    assert emulator.arm.unauthorized == 0


async def test_azure_core_policy_waits_for_the_same_refresh(
    emulator: Emulator, credential: Any, wall_clock: time_machine.Traveller
) -> None:
    """The counterpart: azure-core's own policy makes requests wait for the token endpoint."""
    policy = AsyncBearerTokenCredentialPolicy(credential, ARM_SCOPE)
    async with arm_client(emulator, credential, policy, retry_total=0) as client:
        await timed_get(client)
        emulator.tokens.latency = 1.0
        make_due(wall_clock, emulator)
        latencies = await asyncio.gather(*(timed_get(client) for _ in range(20)))
    assert emulator.tokens.requests == 2
    assert min(latencies) >= 1.0


async def test_one_token_request_per_refresh_cycle_under_150_concurrent_requests(
    emulator: Emulator, credential: Any, wall_clock: time_machine.Traveller
) -> None:
    emulator.tokens.latency = 0.2
    async with (
        background_policy(credential) as policy,
        arm_client(emulator, credential, policy, retry_total=0) as client,
    ):
        await timed_get(client)
        for cycle in range(3):
            make_due(wall_clock, emulator)
            before = emulator.tokens.requests
            await asyncio.gather(*(timed_get(client) for _ in range(150)))
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
        await timed_get(client)  # 401 insufficient_claims, then a token with the claims, then 200
        await timed_get(client)  # the claims token is cached and reused
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
        await timed_get(client)
        make_due(wall_clock, emulator)
        emulator.tokens.fault = Fault.HTTP_503
        for _ in range(4):  # four back-off periods of outage
            for _ in range(10):
                await timed_get(client)  # raises if any request fails
            await policy.wait_for_refreshes()
            wall_clock.shift(40)
        failed_attempts = emulator.tokens.failed
        emulator.tokens.fault = Fault.NONE
        await timed_get(client)  # the attempt that succeeds
        await policy.wait_for_refreshes()
        await timed_get(client)
    assert failed_attempts == 4  # one background attempt per retry_delay, however many requests
    assert len(emulator.tokens.issued) == 2  # recovered without restarting anything
    assert emulator.arm.unauthorized == 0


async def test_composed_into_a_plain_async_pipeline_client(
    emulator: Emulator, credential: Any, wall_clock: time_machine.Traveller
) -> None:
    """The policy in a pipeline of one's own: azure-core's AsyncPipelineClient over the real aiohttp transport."""
    emulator.tokens.latency = 0.5
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
        make_due(wall_clock, emulator)
        started = time.perf_counter()
        responses = await asyncio.gather(*(client.send_request(HttpRequest("GET", url)) for _ in range(100)))
        elapsed = time.perf_counter() - started
        await policy.wait_for_refreshes()
    assert {r.status_code for r in responses} == {200}
    assert elapsed < 0.5  # none of the 100 waited for the 0.5 s token endpoint
    assert emulator.tokens.requests == 2
