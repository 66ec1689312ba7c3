"""``enable_background_refresh`` itself: what it accepts, refuses, and does twice."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.keyvault.secrets.aio import SecretClient
from azure.mgmt.resource.resources.aio import ResourceManagementClient
from azure.storage.blob.aio import BlobServiceClient

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy, enable_background_refresh
from bgrefresh_policy._enable import bearer_policies
from tests.emulator.services import Services
from tests.integration.test_client_families import Issuer, bearers

pytestmark = pytest.mark.integration


def arm(services: Services, credential: Any) -> ResourceManagementClient:
    return ResourceManagementClient(credential, "sub", base_url=services.url, connection_verify=services.ca_path)


@pytest.mark.parametrize(
    "target",
    [
        object(),
        BlobServiceClient("https://acct.blob.core.windows.net", credential=AzureNamedKeyCredential("a", "a2V5")),
    ],
    ids=["not-a-client", "shared-key-client"],
)
def test_an_object_with_no_bearer_policy_is_refused(target: Any) -> None:
    with pytest.raises(TypeError, match="no azure-core bearer token policy"):
        enable_background_refresh(target)


def test_it_returns_the_client_and_changes_nothing_the_second_time(services: Services) -> None:
    client = arm(services, Issuer())
    assert enable_background_refresh(client) is client
    (policy,) = bearer_policies(client)
    assert isinstance(policy, AsyncBackgroundRefreshTokenPolicy)
    store = policy._store
    assert type(policy).__name__ == "BackgroundRefreshAsyncARMChallengeAuthenticationPolicy"
    enable_background_refresh(client, min_validity=10)
    assert policy._store is store  # not taken over again, options unchanged
    assert store.options.min_validity == 60


def test_a_bad_option_changes_nothing(services: Services) -> None:
    client = arm(services, Issuer())
    with pytest.raises(ValueError, match="min_validity"):
        enable_background_refresh(client, min_validity=-1)
    (policy,) = bearer_policies(client)
    assert not isinstance(policy, AsyncBackgroundRefreshTokenPolicy)
    with pytest.raises(TypeError, match="share_tokens"):
        enable_background_refresh(client, share_tokens="yes")  # type: ignore[arg-type]


async def test_a_client_already_in_use_keeps_its_token(services: Services) -> None:
    credential = Issuer()
    async with arm(services, credential) as client:
        await client.resource_groups.list().__anext__()
        enable_background_refresh(client)
        services.forget()
        await client.resource_groups.list().__anext__()
    assert bearers(services) == {"Bearer token-1@home"}  # azure-core's token, now in the shared store
    assert len(credential.asked) == 1


async def test_child_clients_are_given_it_once_and_the_opt_out_reaches_them(services: Services) -> None:
    credential = Issuer()
    client = BlobServiceClient(
        f"{services.url}/devstoreaccount1", credential=credential, connection_verify=services.ca_path
    )
    enable_background_refresh(client, share_tokens=False)
    factory = client.get_container_client
    enable_background_refresh(client, share_tokens=False)
    assert client.get_container_client is factory  # wrapped once
    container = client.get_container_client("c1")
    blob = container.get_blob_client("b1")
    parents = {id(policy) for policy in bearer_policies(client)}
    for child in (container, blob):
        policies = bearer_policies(child)
        assert parents & {id(policy) for policy in policies}  # the parent's pipeline policy, the same object
        assert all(isinstance(policy, AsyncBackgroundRefreshTokenPolicy) for policy in policies)
        assert all(policy._share_tokens is False for policy in policies)  # the opt-out reached them
    await client.close()


async def test_key_vault_keeps_learning_its_tenant_from_the_challenge(services: Services) -> None:
    credential = Issuer()
    client = enable_background_refresh(
        SecretClient(services.url, credential, verify_challenge_resource=False, connection_verify=services.ca_path)
    )
    async with client:
        assert (await client.get_secret("db")).value == "value-of-db"
    assert services.authorizations == [None, "Bearer token-1@vault-tenant"]  # the challenge, then the token
    assert [(asked.tenant_id, asked.enable_cae) for asked in credential.asked] == [("vault-tenant", True)]
