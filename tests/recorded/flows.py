"""The recorded flows: what a user's own recorded test of an Azure SDK client with the policy looks like."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import time_machine
from azure.core.pipeline.transport import RequestsTransport
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


async def list_groups(target: Target) -> list[str]:
    """The docs' example: one token request and one list, with the pending-refresh wait a recorded test needs."""
    credential, policy, client = _clients(target)
    async with credential, policy, client:
        names = [str(group.name) async for group in client.resource_groups.list()]
        await policy.wait_for_refreshes()
    return names


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


class OneExchangeAtATime(RequestsTransport):  # type: ignore[misc]  # azure-core imports it lazily
    """azure-core's requests transport, letting one HTTP exchange through at a time across threads.

    vcrpy is not thread-safe: it loses interactions recorded from several threads at once
    (kevin1024/vcrpy#849), and replaying from two threads at once has been seen to let a request
    through to the network. Give this transport to the credential and the client in a recorded
    sync test: the policy's refresh thread still runs beside the requests, but their exchanges
    with the cassette take turns.
    """

    _turn = threading.Lock()  # one HTTP exchange, in any thread, with the cassette at a time

    def send(self, request: Any, **kwargs: Any) -> Any:
        with self._turn:
            return super().send(request, **kwargs)


def sync_refresh_cycle(target: Target, wall_clock: time_machine.Traveller) -> list[str]:
    """The sync client over requests: list, let the token come due, one request while the refresh
    runs on its thread, then 8 more once it has landed.

    :return: the resource group names read; the cassette matcher checks which token each request carried.
    """
    credential = SyncClientSecretCredential(
        *_identity(target), transport=OneExchangeAtATime(**target.transport), **_identity_options(target)
    )
    policy: Any = BackgroundRefreshTokenPolicy(credential, ARM_SCOPE)
    client = SyncResourceManagementClient(
        credential,
        target.subscription_id,
        base_url=target.arm,
        authentication_policy=policy,
        transport=OneExchangeAtATime(**target.transport),
        retry_total=0,  # a request that fails in replay fails the test, not retried with another token
        **target.transport,
    )
    with credential, policy, client:
        names = [str(group.name) for group in client.resource_groups.list()]
        wall_clock.shift(policy._token.expires_on - time.time() - 239)
        during = client.resource_groups.get(names[0])  # carries the first token; starts the refresh
        assert policy.wait_for_refreshes(30)  # the token request lands inside the cassette
        after = [client.resource_groups.get(names[0]) for _ in range(8)]
    return [str(name) for name in (*names, during.name, *(group.name for group in after))]
