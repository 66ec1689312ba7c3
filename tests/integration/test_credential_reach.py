"""``BackgroundRefreshCredential`` given to every kind of consumer that takes a credential, each the real package.

Every row shows two facts (``tests.integration.reach``): the consumers' first calls make one
call of the wrapped credential per key, however many consumers; and once the token is due, each
consumer's request or token call completes with the still-valid token while the one refresh is
held open at the wrapped credential's gate, after which the new token is what arrives.

- HTTP clients, async (``bgrefresh_policy.aio``'s wrapper) and sync: the twelve families of
  ``families.py`` and six more (Cosmos DB, Container Registry, AI Inference, Monitor ingestion,
  Communication Identity, Service Bus administration), three clients per wrapper, given it as
  ``credential=`` and talking HTTPS to the loopback services; their own policies ask the wrapper.
- Service Bus and Event Hubs: no AMQP broker runs here. The clients' own token path is driven:
  the ``JWTTokenAuth`` each builds for its CBS handshake, whose ``get_token`` is
  ``functools.partial(credential.get_token, scope)`` (azure-servicebus ``_common/utils.py``
  ``create_authentication``, azure-eventhub ``_client_base.py`` ``_create_auth``).
- Microsoft Graph: the real msgraph-sdk client, and kiota's bare token provider.
- Kusto: the real ``KustoClient`` (``with_azure_token_credential``), a management command over HTTPS.
- Azure Database for PostgreSQL (``azure-postgresql-auth``) and Redis (``redis-entraid``): the
  functions their connections call for a token, since no database server runs here.

The wrapped credential is the tests' Issuer (``token-N@<tenant>``, valid an hour; an unsigned JWT
standing for it, for the consumers that read claims); time moves with time-machine.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import time_machine
from aiohttp import ClientSession, TCPConnector
from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.eventhub import EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.aio import EventHubConsumerClient as AsyncEventHubConsumerClient
from azure.eventhub.aio import EventHubProducerClient as AsyncEventHubProducerClient
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data._cloud_settings import CloudSettings
from azure.kusto.data.aio import KustoClient as AsyncKustoClient
from azure.servicebus import ServiceBusClient
from azure.servicebus._common.utils import create_authentication
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient
from azure.servicebus.aio._async_utils import create_authentication as create_authentication_async
from azure_postgresql_auth.core import get_entra_conninfo, get_entra_conninfo_async
from kiota_authentication_azure.azure_identity_access_token_provider import AzureIdentityAccessTokenProvider
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from redis.auth.token_manager import RetryPolicy, TokenManager, TokenManagerConfig
from redis_entraid.cred_provider import DEFAULT_EXPIRATION_REFRESH_RATIO
from redis_entraid.identity_provider import DefaultAzureCredentialProvider

import bgrefresh_policy
import bgrefresh_policy.aio
from tests.emulator.services import Services
from tests.integration.families import FAMILIES, Family
from tests.integration.reach import (
    SDK_FAMILIES,
    USER,
    JwtIssuer,
    Reach,
    SyncJwtIssuer,
    presented,
    shows_reach,
    shows_reach_sync,
    token_number,
)
from tests.integration.test_client_families import Issuer, SyncIssuer
from tests.integration.test_token_providers import _trust

pytestmark = pytest.mark.integration

CLIENTS = 3  # consumers per wrapper: their first calls must still make one call per key
NAMESPACE = "reach.servicebus.windows.net"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
REDIS_SCOPE = "https://redis.azure.com/.default"


class Tokens:
    """The token values the consumers' token calls returned: what they would send on."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def forget(self) -> None:
        self.seen.clear()

    def presented(self) -> set[str]:
        return set(self.seen)


# --- HTTP clients: the twelve families and six more ---------------------------------------------


@pytest.mark.parametrize("family", [*FAMILIES, *SDK_FAMILIES])
async def test_async_clients_on_the_wrapper_go_on_while_its_one_refresh_is_held_open(
    services: Services, wall_clock: time_machine.Traveller, family: Family
) -> None:
    inner = Issuer()
    async with bgrefresh_policy.aio.BackgroundRefreshCredential(inner) as wrapper, contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(family.make(services, wrapper)) for _ in range(CLIENTS)]
        calls = [functools.partial(family.call, client) for client in clients]
        reach = Reach(calls, family.expected, functools.partial(presented, services), services.forget, family.tenant)
        await shows_reach(reach, inner, wrapper, wall_clock)


@pytest.mark.parametrize("family", [*FAMILIES, *SDK_FAMILIES])
def test_sync_clients_on_the_wrapper_go_on_while_its_one_refresh_is_held_open(
    sync_services: Services, wall_clock: time_machine.Traveller, family: Family
) -> None:
    inner = SyncIssuer()
    with bgrefresh_policy.BackgroundRefreshCredential(inner) as wrapper, contextlib.ExitStack() as stack:
        clients = [stack.enter_context(family.make_sync(sync_services, wrapper)) for _ in range(CLIENTS)]
        calls = [functools.partial(family.call_sync, client) for client in clients]
        reach = Reach(
            calls, family.expected, functools.partial(presented, sync_services), sync_services.forget, family.tenant
        )
        shows_reach_sync(reach, inner, wrapper, wall_clock)


# --- Service Bus and Event Hubs: the token getter of their CBS handshake --------------------------


@contextlib.asynccontextmanager
async def amqp_auths(service: str, wrapper: Any) -> AsyncIterator[list[Any]]:
    """The ``JWTTokenAuth`` objects a sender and a receiver (or a producer and a consumer) build."""
    if service == "servicebus":
        async with AsyncServiceBusClient(NAMESPACE, wrapper) as client:
            handlers = [client.get_queue_sender("q"), client.get_queue_receiver("q")]
            yield [await create_authentication_async(handler) for handler in handlers]  # type: ignore[no-untyped-call]
        return
    producer = AsyncEventHubProducerClient(NAMESPACE, "hub", wrapper)
    consumer = AsyncEventHubConsumerClient(NAMESPACE, "hub", "$Default", wrapper)
    async with producer, consumer:
        yield [await producer._create_auth_async(), await consumer._create_auth_async()]


@contextlib.contextmanager
def amqp_auths_sync(service: str, wrapper: Any) -> Iterator[list[Any]]:
    if service == "servicebus":
        with ServiceBusClient(NAMESPACE, wrapper) as client:
            yield [
                create_authentication(client.get_queue_sender("q")),
                create_authentication(client.get_queue_receiver("q")),
            ]
        return
    producer = EventHubProducerClient(NAMESPACE, "hub", wrapper)
    consumer = EventHubConsumerClient(NAMESPACE, "hub", "$Default", wrapper)
    with producer, consumer:
        yield [producer._create_auth(), consumer._create_auth()]


def calls_the_wrapper(auth: Any, wrapper: Any) -> None:
    """The library's token getter is the wrapper's own ``get_token``, for the service's scope."""
    assert auth.get_token.func == wrapper.get_token
    assert auth.get_token.args in {
        ("https://servicebus.azure.net//.default",),
        ("https://eventhubs.azure.net//.default",),
    }


@pytest.mark.parametrize("service", ["servicebus", "eventhub"])
async def test_async_amqp_token_getters_go_on_while_the_one_refresh_is_held_open(
    wall_clock: time_machine.Traveller, service: str
) -> None:
    inner, tokens = Issuer(), Tokens()

    async def token_of(auth: Any) -> None:
        tokens.seen.add((await auth.get_token()).token)  # as the CBS handshake calls it: no argument

    async with (
        bgrefresh_policy.aio.BackgroundRefreshCredential(inner) as wrapper,
        amqp_auths(service, wrapper) as auths,
    ):
        for auth in auths:
            calls_the_wrapper(auth, wrapper)
        calls = [functools.partial(token_of, auth) for auth in auths]
        await shows_reach(Reach(calls, None, tokens.presented, tokens.forget), inner, wrapper, wall_clock)


@pytest.mark.parametrize("service", ["servicebus", "eventhub"])
def test_sync_amqp_token_getters_go_on_while_the_one_refresh_is_held_open(
    wall_clock: time_machine.Traveller, service: str
) -> None:
    inner, tokens = SyncIssuer(), Tokens()

    def token_of(auth: Any) -> None:
        tokens.seen.add(auth.get_token().token)

    with bgrefresh_policy.BackgroundRefreshCredential(inner) as wrapper, amqp_auths_sync(service, wrapper) as auths:
        for auth in auths:
            calls_the_wrapper(auth, wrapper)
        calls = [functools.partial(token_of, auth) for auth in auths]
        shows_reach_sync(Reach(calls, None, tokens.presented, tokens.forget), inner, wrapper, wall_clock)


# --- Microsoft Graph (kiota) ----------------------------------------------------------------------


# msgraph-sdk's own generated request builders use classes it deprecates.
@pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning")
async def test_msgraph_and_kiotas_token_provider_go_on_while_the_one_refresh_is_held_open(
    services: Services, wall_clock: time_machine.Traveller
) -> None:
    inner, tokens = Issuer(), Tokens()
    async with bgrefresh_policy.aio.BackgroundRefreshCredential(inner) as wrapper:
        # kiota asks for each request: get_token(scope, claims=None, enable_cae=True), and takes
        # only an AccessToken instance (an AccessTokenInfo would send no token at all).
        authentication = AzureIdentityAuthenticationProvider(wrapper, scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"])
        # Closed by the test: kiota's middleware wraps it, and closing the client leaves it open.
        transport = httpx.AsyncHTTPTransport(verify=_trust(services))
        http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(transport=transport))
        adapter = GraphRequestAdapter(authentication, client=http)
        adapter.base_url = f"{services.url}/v1.0"
        graph = GraphServiceClient(request_adapter=adapter)
        provider = AzureIdentityAccessTokenProvider(wrapper, None, [GRAPH_SCOPE])

        async def user() -> None:
            found = await graph.users.by_user_id("user-1").get()
            assert found is not None
            assert found.id == "user-1"

        async def token() -> None:
            tokens.seen.add(await provider.get_authorization_token(f"{services.url}/v1.0/me"))

        def forget() -> None:
            services.forget()
            tokens.forget()

        reach = Reach([user, user, token], None, lambda: presented(services) | tokens.presented(), forget)
        async with transport:
            await shows_reach(reach, inner, wrapper, wall_clock)
    assert {(asked.scopes, asked.enable_cae) for asked in inner.asked} == {((GRAPH_SCOPE,), True)}


# --- Kusto ----------------------------------------------------------------------------------------


def test_sync_kusto_clients_go_on_while_the_one_refresh_is_held_open(
    sync_services: Services, wall_clock: time_machine.Traveller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sync_services.ca_path)  # Kusto's requests session trusts the emulator
    inner = SyncIssuer()
    with bgrefresh_policy.BackgroundRefreshCredential(inner) as wrapper, contextlib.ExitStack() as stack:
        builder = KustoConnectionStringBuilder.with_azure_token_credential(sync_services.url, credential=wrapper)
        clients = [stack.enter_context(KustoClient(builder)) for _ in range(CLIENTS)]

        def version(client: KustoClient) -> object:
            return client.execute_mgmt("db", ".show version").primary_results[0][0]["x"]

        calls = [functools.partial(version, client) for client in clients]
        reach = Reach(calls, 1, functools.partial(presented, sync_services), sync_services.forget)
        shows_reach_sync(reach, inner, wrapper, wall_clock)


async def kusto_trusting(services: Services, builder: KustoConnectionStringBuilder) -> Any:
    """The async KustoClient, its aiohttp session trusting the emulator (it takes no TLS option of its own).

    Its first request reads the cluster's cloud metadata with a blocking ``requests.get`` on the
    event loop (azure/kusto/data/client_base.py ``validate_endpoint``), which would wait forever
    on an emulator served by that loop: the metadata is given beforehand, as Kusto's own
    ``CloudSettings.add_to_cache`` allows (the public cloud's, what a cluster without it gets).
    """
    CloudSettings.add_to_cache(services.url, CloudSettings.DEFAULT_CLOUD)
    client = AsyncKustoClient(builder)
    await client._session.close()
    client._session = ClientSession(connector=TCPConnector(ssl=_trust(services)))
    return client


async def test_async_kusto_clients_go_on_while_the_one_refresh_is_held_open(
    services: Services, wall_clock: time_machine.Traveller
) -> None:
    inner = Issuer()
    async with bgrefresh_policy.aio.BackgroundRefreshCredential(inner) as wrapper, contextlib.AsyncExitStack() as stack:
        builder = KustoConnectionStringBuilder.with_azure_token_credential(services.url, credential=wrapper)
        clients = [await stack.enter_async_context(await kusto_trusting(services, builder)) for _ in range(CLIENTS)]

        async def version(client: AsyncKustoClient) -> object:
            return (await client.execute_mgmt("db", ".show version")).primary_results[0][0]["x"]

        calls = [functools.partial(version, client) for client in clients]
        reach = Reach(calls, 1, functools.partial(presented, services), services.forget)
        await shows_reach(reach, inner, wrapper, wall_clock)


# --- database drivers' token paths ----------------------------------------------------------------


def test_sync_postgresql_connection_info_goes_on_while_the_one_refresh_is_held_open(
    wall_clock: time_machine.Traveller,
) -> None:
    inner, tokens = SyncJwtIssuer(), Tokens()

    def connection_info(wrapper: Any) -> None:
        # What azure-postgresql-auth's EntraConnection.connect calls for every new connection.
        info = get_entra_conninfo(wrapper)
        assert info["user"] == USER
        tokens.seen.add(token_number(info["password"]))

    with bgrefresh_policy.BackgroundRefreshCredential(inner) as wrapper:
        assert isinstance(wrapper, TokenCredential)  # EntraConnection.connect refuses anything else
        calls = [functools.partial(connection_info, wrapper)] * CLIENTS
        shows_reach_sync(Reach(calls, None, tokens.presented, tokens.forget), inner, wrapper, wall_clock)


async def test_async_postgresql_connection_info_goes_on_while_the_one_refresh_is_held_open(
    wall_clock: time_machine.Traveller,
) -> None:
    inner, tokens = JwtIssuer(), Tokens()

    async def connection_info(wrapper: Any) -> None:
        info = await get_entra_conninfo_async(wrapper)
        assert info["user"] == USER
        tokens.seen.add(token_number(info["password"]))

    async with bgrefresh_policy.aio.BackgroundRefreshCredential(inner) as wrapper:
        assert isinstance(wrapper, AsyncTokenCredential)  # AsyncEntraConnection.connect refuses anything else
        calls = [functools.partial(connection_info, wrapper)] * CLIENTS
        await shows_reach(Reach(calls, None, tokens.presented, tokens.forget), inner, wrapper, wall_clock)


def test_redis_entraid_token_managers_go_on_while_the_one_refresh_is_held_open(
    wall_clock: time_machine.Traveller,
) -> None:
    inner, tokens = SyncJwtIssuer(), Tokens()
    config = TokenManagerConfig(DEFAULT_EXPIRATION_REFRESH_RATIO, 0, 100, RetryPolicy(0, 0))

    with bgrefresh_policy.BackgroundRefreshCredential(inner) as wrapper:
        # redis-entraid's identity provider for an azure-identity credential; a TokenManager asks
        # it for the token a connection authenticates with (and, streaming, for each renewal).
        managers = [
            TokenManager(DefaultAzureCredentialProvider(wrapper, (REDIS_SCOPE,)), config) for _ in range(CLIENTS)
        ]

        def token_of(manager: TokenManager) -> None:
            tokens.seen.add(token_number(manager.acquire_token(force_refresh=True).get_token().get_value()))

        calls = [functools.partial(token_of, manager) for manager in managers]
        shows_reach_sync(Reach(calls, None, tokens.presented, tokens.forget), inner, wrapper, wall_clock)
