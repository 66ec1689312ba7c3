"""The families' challenge handling at its edges: revoked tokens, custom audiences, vaults of one tenant,
clients enabled after their first use, and a failed enable.

Real SDK clients against the loopback services; the user-written credential of
``test_client_families`` (tokens ``token-N@<tenant>``).
"""

from __future__ import annotations

import copy
import pickle
import threading
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

from bgrefresh_policy import enable_background_refresh, get_bearer_token_provider
from bgrefresh_policy._enable import bearer_policies
from bgrefresh_policy._key_state import TokenKey
from tests.emulator.services import STORAGE_TENANT, Services
from tests.integration.test_client_families import Issuer, SyncIssuer

pytestmark = pytest.mark.integration

STORAGE_SCOPE = "https://storage.azure.com/.default"


def blob_service(services: Services, credential: Any, **kwargs: Any) -> AsyncBlobServiceClient:
    url = f"{services.url}/devstoreaccount1"
    return AsyncBlobServiceClient(url, credential=credential, connection_verify=services.ca_path, **kwargs)


async def container_name(client: AsyncBlobServiceClient) -> str:
    return str((await client.get_container_client("c1").get_container_properties()).name)


async def test_storage_drops_a_revoked_token_and_gets_a_new_one(services: Services) -> None:
    credential = Issuer()
    async with enable_background_refresh(blob_service(services, credential)) as client:
        await container_name(client)  # home token refused, then the storage tenant's
        revoked = f"Bearer token-2@{STORAGE_TENANT}"
        services.revoked.add(revoked)
        services.forget()
        assert await container_name(client) == "c1"
        assert await container_name(client) == "c1"
    assert services.statuses == [401, 200, 200]  # one refusal, then a new token for every request
    assert services.authorizations[1:] == [f"Bearer token-3@{STORAGE_TENANT}"] * 2
    provider = get_bearer_token_provider(SyncIssuer(), STORAGE_SCOPE)  # another credential: unaffected
    assert provider() == "token-1@home"


async def test_storage_with_an_audience_follows_the_scope_its_challenge_names(services: Services) -> None:
    credential = Issuer()
    client = blob_service(services, credential, audience="https://devstoreaccount1.blob.core.windows.net")
    async with enable_background_refresh(client):
        for _ in range(4):
            assert await container_name(client) == "c1"
    assert services.statuses == [401, 200, 200, 200, 200]  # as azure-core: the challenge's token from then on
    assert [asked.scopes for asked in credential.asked] == [
        ("https://devstoreaccount1.blob.core.windows.net/.default",),
        (STORAGE_SCOPE,),
    ]


async def test_a_storage_client_enabled_after_its_tenant_was_learned_keeps_tenants_apart(services: Services) -> None:
    credential = Issuer()
    async with blob_service(services, credential) as client:
        await container_name(client)  # azure-core's policy learns the storage tenant
        enable_background_refresh(client)
        assert await container_name(client) == "c1"
    (policy,) = {id(p): p for p in bearer_policies(client)}.values()
    store = policy._store
    home = store.current(TokenKey.of([STORAGE_SCOPE]))
    assert home is None or home.token.token.endswith("@home")  # never the tenant's token under the home key


async def test_vaults_of_one_tenant_share_one_token(services: Services) -> None:
    """Two vaults (two origins: 127.0.0.1 and localhost), each learning its tenant from its challenge."""
    credential = Issuer()
    urls = (services.url, services.url.replace("127.0.0.1", "localhost"))
    clients = [
        enable_background_refresh(
            AsyncSecretClient(url, credential, verify_challenge_resource=False, connection_verify=services.ca_path)
        )
        for url in urls
    ]
    for client in clients:
        async with client:
            assert (await client.get_secret("db")).value == "value-of-db"
    assert len(credential.asked) == 1


def test_a_vault_401_drops_only_the_token_that_vault_holds(sync_services: Services) -> None:
    """Key Vault's 401 handling sets ``_token = None``: another vault client on the credential keeps its token."""
    credential = SyncIssuer()
    urls = (sync_services.url, sync_services.url.replace("127.0.0.1", "localhost"))
    first, second = (
        enable_background_refresh(
            SecretClient(url, credential, verify_challenge_resource=False, connection_verify=sync_services.ca_path)
        )
        for url in urls
    )
    for client in (first, second):
        assert client.get_secret("db").value == "value-of-db"
    (first_policy,) = bearer_policies(first)
    (second_policy,) = bearer_policies(second)
    assert not second_policy._need_new_token  # what Key Vault's on_request asks first ...
    first_policy._token = None  # ... then the other vault's 401 handling runs ...
    assert second_policy._token is not None  # ... and what it reads next is still a token
    assert second.get_secret("db").value == "value-of-db"
    first_policy._token = None  # holds none now: nothing more is dropped
    assert len(credential.asked) == 2  # the shared token went once, and was fetched again once


def test_a_bad_option_leaves_a_sync_client_as_it_was(sync_services: Services) -> None:
    client = ResourceManagementClient(
        SyncIssuer(), "sub", base_url=sync_services.url, connection_verify=sync_services.ca_path
    )
    with pytest.raises(ValueError, match="TIMEOUT_MAX"):
        enable_background_refresh(client, refresh_timeout=threading.TIMEOUT_MAX * 2)
    (policy,) = bearer_policies(client)
    assert type(policy).__name__ == "ARMChallengeAuthenticationPolicy"
    assert [group.name for group in client.resource_groups.list()] == ["rg"]  # still works
    enable_background_refresh(client)
    assert [group.name for group in client.resource_groups.list()] == ["rg"]
    assert type(bearer_policies(client)[0]).__name__ == "BackgroundRefreshARMChallengeAuthenticationPolicy"


def test_an_enabled_clients_policies_pickle_by_their_family_without_tokens(sync_services: Services) -> None:
    """The classes enable_background_refresh makes are made again where a pickle is loaded; no token goes with it."""
    credential = SyncIssuer()
    vault = enable_background_refresh(
        SecretClient(
            sync_services.url, credential, verify_challenge_resource=False, connection_verify=sync_services.ca_path
        )
    )
    arm = enable_background_refresh(
        ResourceManagementClient(credential, "sub", base_url=sync_services.url, connection_verify=sync_services.ca_path)
    )
    assert vault.get_secret("db").value == "value-of-db"
    assert [group.name for group in arm.resource_groups.list()] == ["rg"]
    (vault_policy,) = bearer_policies(vault)
    assert vault_policy._token is not None  # a token is cached: it must not be pickled
    data = pickle.dumps(vault_policy)
    assert b"token-" not in data
    loaded = pickle.loads(data)
    assert type(loaded) is type(vault_policy)  # the same class, made once per family
    assert loaded._token is None
    assert not loaded.closed
    assert type(copy.copy(vault_policy)) is type(vault_policy)
    arm_copy = pickle.loads(pickle.dumps(arm))  # a whole client, as azure-core's pickles
    assert [group.name for group in arm_copy.resource_groups.list()] == ["rg"]
    assert type(bearer_policies(arm_copy)[0]) is type(bearer_policies(arm)[0])
