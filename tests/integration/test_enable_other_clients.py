"""``enable_background_refresh`` on clients outside the twelve families: Communication Identity and OpenAI.

Communication Identity's client has a ``get_token(user, scopes)`` of its own, which a walk that
told credentials by their methods' names took for a credential, and so stopped at. Real
``azure-communication-identity`` clients, async and sync, over HTTPS on loopback with a token
credential (given a key, the client signs with HMAC and has no bearer policy at all). And what
the walk must still leave alone: the clients a credential holds for itself. The OpenAI SDK's
Azure clients take a token provider, not a pipeline policy: enabling them names the way.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import openai
import pytest
import time_machine
from azure.communication.identity import CommunicationIdentityClient, CommunicationUserIdentifier
from azure.communication.identity.aio import CommunicationIdentityClient as AsyncCommunicationIdentityClient
from azure.core import AsyncPipelineClient
from azure.core.credentials import AzureKeyCredential
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy
from azure.mgmt.resource.resources.aio import ResourceManagementClient as AsyncResourceManagementClient

import bgrefresh_policy
import bgrefresh_policy.aio
from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy, enable_background_refresh
from bgrefresh_policy._enable import bearer_policies
from tests.emulator.services import Services
from tests.integration.test_client_families import DUE, Issuer, SyncIssuer, bearers
from tests.support import HANG_GUARD, eventually

pytestmark = pytest.mark.integration

COMMUNICATION_SCOPE = "https://communication.azure.com//.default"  # as the package spells it
USER = "8:acs:user-1"


def communication(services: Services, credential: Any) -> AsyncCommunicationIdentityClient:
    return AsyncCommunicationIdentityClient(services.url, credential, connection_verify=services.ca_path)


def sync_communication(services: Services, credential: Any) -> CommunicationIdentityClient:
    return CommunicationIdentityClient(services.url, credential, connection_verify=services.ca_path)


async def test_communication_identity_is_enabled_and_its_requests_carry_the_token(
    services: Services, wall_clock: time_machine.Traveller
) -> None:
    credential = Issuer()
    client = enable_background_refresh(communication(services, credential))
    (policy,) = bearer_policies(client)
    assert isinstance(policy, AsyncBackgroundRefreshTokenPolicy)
    async with client:
        user = await client.create_user()
        assert user.properties["id"] == USER
        token = await client.get_token(user, ["chat"])  # the client's own get_token, still its own
        assert token.token == f"acs-token-of-{USER}"
        assert services.authorizations == ["Bearer token-1@home"] * 2
        wall_clock.shift(DUE)
        credential.gate = asyncio.Event()
        services.forget()
        await asyncio.wait_for(client.create_user(), HANG_GUARD)  # returns while the refresh is held open
        assert len(credential.asked) == 2
        assert credential.finished == 1
        assert bearers(services) == {"Bearer token-1@home"}
        credential.gate.set()
        await policy.wait_for_refreshes()
        services.forget()
        await client.create_user()
        assert bearers(services) == {"Bearer token-2@home"}
    assert {asked.scopes for asked in credential.asked} == {(COMMUNICATION_SCOPE,)}


def test_sync_communication_identity_is_enabled_and_its_requests_carry_the_token(
    sync_services: Services, wall_clock: time_machine.Traveller
) -> None:
    credential = SyncIssuer()
    client = enable_background_refresh(sync_communication(sync_services, credential))
    (policy,) = bearer_policies(client)
    assert isinstance(policy, BackgroundRefreshTokenPolicy)
    user = client.create_user()
    assert client.get_token(user, ["chat"]).token == f"acs-token-of-{USER}"
    assert sync_services.authorizations == ["Bearer token-1@home"] * 2
    wall_clock.shift(DUE)
    gate = credential.gate = threading.Event()
    sync_services.forget()
    try:
        client.create_user()  # returns while the refresh is held open
        eventually(lambda: len(credential.asked) == 2)
        assert credential.finished == 1
        assert bearers(sync_services) == {"Bearer token-1@home"}
    finally:
        gate.set()
    assert policy.wait_for_refreshes(HANG_GUARD)
    sync_services.forget()
    client.create_user()
    assert bearers(sync_services) == {"Bearer token-2@home"}
    policy.close()


def test_a_communication_client_with_a_key_signs_with_hmac_and_is_refused() -> None:
    client = CommunicationIdentityClient("https://acs.communication.azure.com", AzureKeyCredential("a2V5"))
    with pytest.raises(TypeError, match="no azure-core bearer token policy"):
        enable_background_refresh(client)


def test_a_user_identifier_is_not_taken_for_a_client() -> None:
    with pytest.raises(TypeError, match="no azure-core bearer token policy"):
        enable_background_refresh(CommunicationUserIdentifier(USER))


# --- not the credential's own clients ------------------------------------------------------


@dataclass
class CredentialWithAPipeline(Issuer):
    """A credential that calls a service of its own through an azure-core pipeline authenticated by
    another credential, as azure-identity's credentials hold pipelines (theirs without a bearer policy)."""

    own_client: Any = None


async def _groups(client: AsyncResourceManagementClient) -> list[str | None]:
    return [group.name async for group in client.resource_groups.list()]


async def test_the_credentials_own_pipelines_are_left_alone(services: Services) -> None:
    own_policy = AsyncBearerTokenCredentialPolicy(Issuer(), "https://vault.azure.net/.default")
    own_client: AsyncPipelineClient[Any, Any] = AsyncPipelineClient(services.url, policies=[own_policy])
    credential = CredentialWithAPipeline(own_client=own_client)
    client = AsyncResourceManagementClient(credential, "sub", base_url=services.url, connection_verify=services.ca_path)
    (policy,) = bearer_policies(enable_background_refresh(client))  # the client's one policy, not its credential's
    assert isinstance(policy, AsyncBackgroundRefreshTokenPolicy)
    assert type(own_policy) is AsyncBearerTokenCredentialPolicy
    async with client:
        assert await _groups(client) == ["rg"]
    await own_client.close()


# --- OpenAI ------------------------------------------------------------------------------


OPENAI_SCOPE = "https://cognitiveservices.azure.com/.default"
OPENAI_ENDPOINT = "https://127.0.0.1:9"  # never called
API_VERSION = "2024-10-21"


async def test_enabling_an_async_openai_client_names_the_async_token_provider() -> None:
    provider = bgrefresh_policy.aio.get_bearer_token_provider(Issuer(), OPENAI_SCOPE)
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=OPENAI_ENDPOINT, api_version=API_VERSION, azure_ad_token_provider=provider
    )
    async with client:
        with pytest.raises(TypeError) as raised:
            enable_background_refresh(client)
    assert "azure_ad_token_provider=bgrefresh_policy.aio.get_bearer_token_provider(" in str(raised.value)
    assert "key, SAS or connection string" not in str(raised.value)


def test_enabling_a_sync_openai_client_names_the_token_provider() -> None:
    provider = bgrefresh_policy.get_bearer_token_provider(SyncIssuer(), OPENAI_SCOPE)
    with_provider = openai.AzureOpenAI(
        azure_endpoint=OPENAI_ENDPOINT, api_version=API_VERSION, azure_ad_token_provider=provider
    )
    # Built with a key, it still takes a provider: that is the way to background refresh.
    with_key = openai.AzureOpenAI(azure_endpoint=OPENAI_ENDPOINT, api_version=API_VERSION, api_key="not-a-secret")
    for client in (with_provider, with_key):
        with client, pytest.raises(TypeError) as raised:
            enable_background_refresh(client)
        assert "azure_ad_token_provider=bgrefresh_policy.get_bearer_token_provider(" in str(raised.value)
        assert "key, SAS or connection string" not in str(raised.value)
