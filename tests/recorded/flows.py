"""The recorded flows: what a user's own recorded test of an Azure SDK client with the policy looks like."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import time_machine
from azure.identity import ClientSecretCredential as SyncClientSecretCredential
from azure.identity.aio import ClientSecretCredential
from azure.mgmt.resource.resources import ResourceManagementClient as SyncResourceManagementClient
from azure.mgmt.resource.resources.aio import ResourceManagementClient

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy
from tests.recorded.conftest import Target

ARM_SCOPE = "https://management.azure.com/.default"
CAE_CLAIMS = json.dumps({"access_token": {"nbf": {"essential": True, "value": "1800000000"}}})


def _identity(target: Target) -> tuple[str, str, str]:
    return target.tenant_id, target.client_id, target.client_secret


def _identity_options(target: Target) -> dict[str, Any]:
    return {"authority": target.login, "disable_instance_discovery": True, **target.transport}


def _clients(target: Target, **policy_options: Any) -> tuple[ClientSecretCredential, Any, ResourceManagementClient]:
    credential = ClientSecretCredential(*_identity(target), **_identity_options(target))
    policy: Any = AsyncBackgroundRefreshTokenPolicy(credential, ARM_SCOPE, **policy_options)
    client = ResourceManagementClient(
        credential, target.subscription_id, base_url=target.arm, authentication_policy=policy, **target.transport
    )
    return credential, policy, client


async def refresh_cycle(target: Target, wall_clock: time_machine.Traveller) -> list[str]:
    """List resource groups, let the token come due, send 20 requests at once, and one after the refresh.

    :return: the Authorization tokens' placeholders are checked by the cassette matcher; this
        returns the resource group names read.
    """
    credential, policy, client = _clients(target)
    async with credential, policy, client:
        names = [str(group.name) async for group in client.resource_groups.list()]
        # 239 s left: due under azure-core's rule whatever the jitter, for every cache involved.
        wall_clock.shift(policy._token.expires_on - time.time() - 239)
        groups = await asyncio.gather(*(client.resource_groups.get(names[0]) for _ in range(20)))
        await policy.wait_for_refreshes()  # the background token request lands inside the cassette
        after = await client.resource_groups.get(names[0])
    return [str(name) for name in (*names, *(group.name for group in groups), after.name)]


async def cae_challenge(target: Target) -> str:
    """A request answered by a CAE claims challenge, the claims token, the retried request."""
    if target.emulator is not None:
        target.emulator.arm.demand_claims = CAE_CLAIMS
    credential, policy, client = _clients(target, enable_cae=True)
    async with credential, policy, client:
        group = await client.resource_groups.get("rg-alpha")
        await policy.wait_for_refreshes()
    return str(group.name)


def sync_refresh_cycle(target: Target, wall_clock: time_machine.Traveller) -> list[str]:
    """The sync client over requests: list, let the token come due, one request while the refresh
    runs on its thread, then 8 more once it has landed.

    The requests go one at a time: vcrpy loses interactions recorded from several threads at
    once (kevin1024/vcrpy#849), so the policy's refresh thread is the only other one.

    :return: the resource group names read; the cassette matcher checks which token each request carried.
    """
    credential = SyncClientSecretCredential(*_identity(target), **_identity_options(target))
    policy: Any = BackgroundRefreshTokenPolicy(credential, ARM_SCOPE)
    client = SyncResourceManagementClient(
        credential, target.subscription_id, base_url=target.arm, authentication_policy=policy, **target.transport
    )
    with credential, policy, client:
        names = [str(group.name) for group in client.resource_groups.list()]
        wall_clock.shift(policy._token.expires_on - time.time() - 239)
        during = client.resource_groups.get(names[0])  # carries the first token; starts the refresh
        assert policy.wait_for_refreshes(30)  # the token request lands inside the cassette
        after = [client.resource_groups.get(names[0]) for _ in range(8)]
    return [str(name) for name in (*names, during.name, *(group.name for group in after))]
