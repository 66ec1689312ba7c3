"""What ``enable_background_refresh`` passes on and how far it reaches, on real clients over HTTPS on loopback.

- ``on_refresh`` and ``refresh_when_idle`` reach the client's policy: events arrive, and a token
  falling due while no request comes is refreshed (time moved by the test: the store's clock,
  and the stopped event-loop clock or the sync idle timer, which the test fires itself);
- every bearer policy of a client is converted: Data Lake holds a dfs pipeline and a blob one,
  and a request on each side goes on while a refresh is held open;
- a Key Vault client (CAE tokens) and a non-CAE policy on one credential never share a token.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import time_machine
from azure.keyvault.secrets.aio import SecretClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.resources.aio import ResourceManagementClient as AsyncResourceManagementClient
from azure.storage.filedatalake import DataLakeServiceClient
from azure.storage.filedatalake.aio import DataLakeServiceClient as AsyncDataLakeServiceClient

from bgrefresh_policy import (
    AsyncBackgroundRefreshTokenPolicy,
    BackgroundRefreshTokenPolicy,
    RefreshEvent,
    RefreshOutcome,
    enable_background_refresh,
)
from bgrefresh_policy._enable import bearer_policies
from bgrefresh_policy._face import LONGEST_IDLE_SLEEP
from tests.emulator.services import STORAGE_TENANT, VAULT_TENANT, Services
from tests.integration.test_client_families import DUE, Issuer, SyncIssuer, bearers
from tests.support import (
    HANG_GUARD,
    FakeClock,
    LoopClock,
    ScriptedCredential,
    SyncScriptedCredential,
    bearer,
    eventually,
    make_request,
    refresh_begins,
)

pytestmark = pytest.mark.integration

DUE_AT = 3600 - 300  # a scripted token (an hour), no jitter: due with 300 s left
VAULT_SCOPE = "https://vault.azure.net/.default"


def no_jitter() -> int:
    return 0


def on_fake_time(policy: Any, clock: FakeClock) -> None:
    """Judge the policy's tokens by ``clock``, with no jitter (its store is its credential's: a new one)."""
    policy._store.clock = clock
    policy._store.draw_jitter = no_jitter


def outcomes(events: list[RefreshEvent]) -> list[tuple[bool, RefreshOutcome]]:
    return [(event.background, event.outcome) for event in events]


# --- on_refresh and refresh_when_idle ---------------------------------------------------


async def _groups(client: AsyncResourceManagementClient) -> list[str | None]:
    return [group.name async for group in client.resource_groups.list()]


async def test_events_arrive_and_an_idle_client_refreshes_on_schedule(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    credential: Any = ScriptedCredential(clock=clock)
    events: list[RefreshEvent] = []
    client = AsyncResourceManagementClient(credential, "sub", base_url=services.url, connection_verify=services.ca_path)
    enable_background_refresh(client, on_refresh=events.append, refresh_when_idle=True)
    (policy,) = bearer_policies(client)
    on_fake_time(policy, clock)
    loop_clock = LoopClock(monkeypatch)

    async def elapse(seconds: float) -> None:
        clock.advance(seconds)
        await loop_clock.advance(seconds)

    async with client:
        assert await _groups(client) == ["rg"]
        assert outcomes(events) == [(False, RefreshOutcome.NEW_TOKEN)]
        await elapse(DUE_AT - 1)
        assert len(credential.calls) == 1  # not before it is due
        await elapse(2)  # due now, and no request comes
        await refresh_begins()
        await policy.wait_for_refreshes()
        assert len(credential.calls) == 2
        assert outcomes(events) == [(False, RefreshOutcome.NEW_TOKEN), (True, RefreshOutcome.NEW_TOKEN)]
        credential.gate = asyncio.Event()  # any call from now on would hang the request below
        services.forget()
        assert await asyncio.wait_for(_groups(client), HANG_GUARD) == ["rg"]
        assert bearers(services) == {"Bearer token-2"}  # the idle refresh's token, with no call made
        assert len(credential.calls) == 2
        credential.gate.set()
        await policy.close()


def test_sync_events_arrive_and_an_idle_client_refreshes_on_schedule(sync_services: Services) -> None:
    clock = FakeClock()
    credential: Any = SyncScriptedCredential(clock=clock)
    events: list[RefreshEvent] = []
    client = ResourceManagementClient(
        credential, "sub", base_url=sync_services.url, connection_verify=sync_services.ca_path
    )
    enable_background_refresh(client, on_refresh=events.append, refresh_when_idle=True)
    (policy,) = bearer_policies(client)
    on_fake_time(policy, clock)
    try:
        assert [group.name for group in client.resource_groups.list()] == ["rg"]
        assert outcomes(events) == [(False, RefreshOutcome.NEW_TOKEN)]
        ((_, timer),) = policy._runner._timers.values()  # armed: it wakes within a minute, and looks
        assert timer.interval == LONGEST_IDLE_SLEEP
        assert len(credential.calls) == 1
        timer.cancel()  # the test fires it, once the token is due, rather than waiting an hour
        clock.advance(DUE_AT + 1)
        timer.function(*timer.args)
        assert policy.wait_for_refreshes(HANG_GUARD)
        assert len(credential.calls) == 2  # with no request
        assert outcomes(events) == [(False, RefreshOutcome.NEW_TOKEN), (True, RefreshOutcome.NEW_TOKEN)]
        credential.gate = threading.Event()  # any call from now on would hang the request below
        sync_services.forget()
        assert [group.name for group in client.resource_groups.list()] == ["rg"]
        assert bearers(sync_services) == {"Bearer token-2"}
        assert len(credential.calls) == 2
    finally:
        if credential.gate is not None:
            credential.gate.set()
        policy.close()
        client.close()


# --- every pipeline: Data Lake's dfs and blob sides ---------------------------------------
#
# A Data Lake service client holds two pipelines, each with a Storage bearer policy: its own, for
# the dfs endpoint, and its blob service client's. In azure-storage-file-datalake 12.26.1 both
# hold one retry policy object, which azure-core links to the pipeline built last: a request to
# the blob endpoint goes on, from the retry policy, through the dfs pipeline's bearer policy. So
# besides a request to each endpoint, each of the two policies is asked for a header directly.


def datalake_policies(client: Any) -> tuple[Any, Any]:
    """The service client's dfs policy (its own pipeline) and blob policy (its blob service client's)."""
    (dfs,) = bearer_policies(client._pipeline)
    (blob,) = bearer_policies(client._blob_service_client._pipeline)
    assert dfs is not blob
    return dfs, blob


def endpoint_paths(services: Services) -> list[str]:
    return [seen.path_qs.split("?")[0] for seen in services.seen]


async def test_both_sides_of_a_data_lake_client_refresh_in_the_background(
    services: Services, wall_clock: time_machine.Traveller
) -> None:
    credential = Issuer()
    client = AsyncDataLakeServiceClient(
        f"{services.url}/devstoreaccount1", credential=credential, connection_verify=services.ca_path
    )
    enable_background_refresh(client)
    dfs, blob = datalake_policies(client)  # before any child client is built: the service client's own
    assert isinstance(dfs, AsyncBackgroundRefreshTokenPolicy)
    assert isinstance(blob, AsyncBackgroundRefreshTokenPolicy)

    async def blob_endpoint() -> list[str]:
        return [file_system.name async for file_system in client.list_file_systems()]

    async def dfs_endpoint() -> object:
        return await client.get_file_client("c1", "f").get_access_control()

    async with client:
        assert await blob_endpoint() == ["c1"]
        await dfs_endpoint()
        issued = len(credential.asked)
        token = f"Bearer token-{issued}@{STORAGE_TENANT}"
        wall_clock.shift(DUE)
        credential.gate = asyncio.Event()
        services.forget()
        # Each returns while the refresh's token request is held open.
        assert await asyncio.wait_for(blob_endpoint(), HANG_GUARD) == ["c1"]
        await asyncio.wait_for(dfs_endpoint(), HANG_GUARD)
        for policy in (dfs, blob):
            request = make_request(f"{services.url}/devstoreaccount1/c1")
            await asyncio.wait_for(policy.on_request(request), HANG_GUARD)
            assert bearer(request) == token
        await refresh_begins()
        assert len(credential.asked) == issued + 1  # one background refresh, under way ...
        assert credential.finished == issued  # ... and held open throughout
        assert endpoint_paths(services) == ["/devstoreaccount1/", "/devstoreaccount1/c1/f"]
        assert bearers(services) == {token}
        credential.gate.set()
        for policy in (dfs, blob):
            await policy.wait_for_refreshes()


def test_sync_both_sides_of_a_data_lake_client_refresh_in_the_background(
    sync_services: Services, wall_clock: time_machine.Traveller
) -> None:
    credential = SyncIssuer()
    client = DataLakeServiceClient(
        f"{sync_services.url}/devstoreaccount1", credential=credential, connection_verify=sync_services.ca_path
    )
    enable_background_refresh(client)
    dfs, blob = datalake_policies(client)
    assert isinstance(dfs, BackgroundRefreshTokenPolicy)
    assert isinstance(blob, BackgroundRefreshTokenPolicy)

    def blob_endpoint() -> list[str]:
        return [file_system.name for file_system in client.list_file_systems()]

    def dfs_endpoint() -> object:
        return client.get_file_client("c1", "f").get_access_control()

    with client:
        assert blob_endpoint() == ["c1"]
        dfs_endpoint()
        issued = len(credential.asked)
        token = f"Bearer token-{issued}@{STORAGE_TENANT}"
        wall_clock.shift(DUE)
        gate = credential.gate = threading.Event()
        sync_services.forget()
        try:  # each returns while the refresh's token request is held open
            assert blob_endpoint() == ["c1"]
            dfs_endpoint()
            for policy in (dfs, blob):
                request = make_request(f"{sync_services.url}/devstoreaccount1/c1")
                policy.on_request(request)
                assert bearer(request) == token
            eventually(lambda: len(credential.asked) == issued + 1)
            assert credential.finished == issued
            assert endpoint_paths(sync_services) == ["/devstoreaccount1/", "/devstoreaccount1/c1/f"]
            assert bearers(sync_services) == {token}
        finally:
            gate.set()
        for policy in (dfs, blob):
            assert policy.wait_for_refreshes(HANG_GUARD)
            policy.close()


# --- CAE and non-CAE on one credential ----------------------------------------------------


@pytest.mark.parametrize("vault_first", [True, False], ids=["vault-first", "plain-first"])
async def test_a_vault_client_and_a_non_cae_policy_never_share_a_token(services: Services, vault_first: bool) -> None:
    """The plain policy asks for the vault's scope and tenant, as a challenge handler does: the key the
    vault's CAE token is cached under, but for a token without CAE."""
    credential = Issuer()
    vault = enable_background_refresh(
        SecretClient(services.url, credential, verify_challenge_resource=False, connection_verify=services.ca_path)
    )
    plain = AsyncBackgroundRefreshTokenPolicy(credential, VAULT_SCOPE)

    async def plain_header() -> str:
        request = make_request(f"{services.url}/secrets/db/")
        await plain.authorize_request(request, VAULT_SCOPE, tenant_id=VAULT_TENANT)
        return str(request.http_request.headers["Authorization"])

    async def vault_header() -> str | None:
        services.forget()
        assert (await vault.get_secret("db")).value == "value-of-db"
        return services.authorizations[-1]

    async with vault:
        if vault_first:
            vault_token = await vault_header()
            plain_token = await plain_header()
        else:
            plain_token = await plain_header()
            vault_token = await vault_header()
        assert await vault_header() == vault_token  # the vault's own, after the plain one was cached
    assert sorted((asked.scopes, asked.tenant_id, asked.enable_cae) for asked in credential.asked) == [
        ((VAULT_SCOPE,), VAULT_TENANT, False),
        ((VAULT_SCOPE,), VAULT_TENANT, True),
    ]
    cae_token = next(i for i, asked in enumerate(credential.asked, 1) if asked.enable_cae)
    assert vault_token == f"Bearer token-{cae_token}@{VAULT_TENANT}"
    assert plain_token == f"Bearer token-{3 - cae_token}@{VAULT_TENANT}"
    await plain.close()
