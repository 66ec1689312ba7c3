"""Which Azure SDK async clients take the policy through ``authentication_policy=``, and how to fit it into the rest.

Every client here is the real SDK client, talking HTTPS to a loopback emulator of its service
(``tests.emulator.services``) that records each request's ``Authorization`` header. Two
user-written credentials tell the tokens apart: the policy's issues ``policy-token-N``, the
client's ``client-token-N``.

- ARM (azure-mgmt-resource), Log Analytics (azure-monitor-query), Language
  (azure-ai-textanalytics) and AI Search (azure-search-documents) honour ``authentication_policy=``.
- App Configuration, Tables and Blob Storage accept it and silently ignore it; the tests pin that
  down, so they fail the day a release starts honouring it, and check the recipe that works.
- Key Vault secrets rejects it with a TypeError; ``policies=`` works.

The ``*_with`` helpers are the recipes, written to be copied as they are.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from azure.ai.textanalytics.aio import TextAnalyticsClient
from azure.appconfiguration.aio import AzureAppConfigurationClient
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline import policies as core
from azure.data.tables.aio import TableServiceClient
from azure.keyvault.secrets.aio import SecretClient
from azure.mgmt.resource.resources.aio import ResourceManagementClient
from azure.monitor.query import LogsQueryResult
from azure.monitor.query.aio import LogsQueryClient
from azure.search.documents.aio import SearchClient
from azure.storage.blob.aio import BlobServiceClient

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from tests.emulator.services import Services

pytestmark = pytest.mark.integration

ARM_SCOPE = "https://management.azure.com/.default"
LOGS_SCOPE = "https://api.loganalytics.io/.default"
LANGUAGE_SCOPE = "https://cognitiveservices.azure.com/.default"
SEARCH_SCOPE = "https://search.azure.com/.default"
APPCONFIG_SCOPE = "https://appconfig.azure.com/.default"
STORAGE_SCOPE = "https://storage.azure.com/.default"
KEYVAULT_SCOPE = "https://vault.azure.net/.default"


# --- recipes ---------------------------------------------------------------------------


def azure_core_policies(authentication_policy: Any, **kwargs: Any) -> list[Any]:
    """azure-core's standard async pipeline, in the order generated clients build it, with ``authentication_policy``.

    For clients that take ``policies=`` but not ``authentication_policy=``. Pass the client's own
    keyword arguments (``retry_total=``, ``logging_enable=``, ...) so the policies honour them.
    """
    return [
        core.RequestIdPolicy(**kwargs),
        core.HeadersPolicy(**kwargs),
        core.UserAgentPolicy(**kwargs),
        core.ProxyPolicy(**kwargs),
        core.ContentDecodePolicy(**kwargs),
        core.AsyncRedirectPolicy(**kwargs),
        core.AsyncRetryPolicy(**kwargs),
        authentication_policy,
        core.CustomHookPolicy(**kwargs),
        core.NetworkTraceLoggingPolicy(**kwargs),
        core.DistributedTracingPolicy(**kwargs),
        core.SensitiveHeaderCleanupPolicy(**kwargs),
        core.HttpLoggingPolicy(**kwargs),
    ]


def appconfig_client_with(policy: Any, endpoint: str, credential: Any, **kwargs: Any) -> AzureAppConfigurationClient:
    """An App Configuration client whose requests ``policy`` authorizes.

    ``AzureAppConfigurationClient`` ignores ``authentication_policy=`` but takes a whole pipeline as
    ``policies=``; its own per-call policies (sync tokens, audience errors) are kept in front of it.
    ``credential`` is then never asked for a token.
    """
    return AzureAppConfigurationClient(endpoint, credential, policies=azure_core_policies(policy, **kwargs), **kwargs)


def keyvault_secrets_client_with(policy: Any, vault_url: str, credential: Any, **kwargs: Any) -> SecretClient:
    """A Key Vault ``SecretClient`` whose requests ``policy`` authorizes.

    ``SecretClient`` raises TypeError on ``authentication_policy=`` (it passes its own) but takes
    ``policies=``. Key Vault's challenge handling (tenant discovery) is replaced: give the policy
    ``https://vault.azure.net/.default`` and a credential for the vault's tenant.
    """
    return SecretClient(vault_url, credential, policies=azure_core_policies(policy, **kwargs), **kwargs)


def tables_client_with(policy: Any, endpoint: str, credential: Any, **kwargs: Any) -> TableServiceClient:
    """A Tables ``TableServiceClient`` whose requests, and its ``get_table_client()`` clients', ``policy`` authorizes.

    ``TableServiceClient`` ignores ``authentication_policy=``; this overrides its private
    ``_configure_policies`` (azure-data-tables 12.7) to put ``policy`` in its bearer policy's place.
    """

    class _TableServiceClient(TableServiceClient):
        def _configure_policies(self, **options: Any) -> list[Any]:
            configured = super()._configure_policies(**options)
            return [policy if isinstance(p, core.AsyncBearerTokenCredentialPolicy) else p for p in configured]

    return _TableServiceClient(endpoint, credential=credential, **kwargs)


def blob_client_with(policy: Any, account_url: str, credential: Any, **kwargs: Any) -> BlobServiceClient:
    """A ``BlobServiceClient`` whose requests, and its child clients', ``policy`` authorizes.

    ``BlobServiceClient`` ignores ``authentication_policy=``; this overrides its private
    ``_create_pipeline`` (azure-storage-blob 12.31) to put ``policy`` in its bearer policy's place.
    """

    class _BlobServiceClient(BlobServiceClient):
        def _create_pipeline(self, credential: Any = None, **options: Any) -> Any:
            config, pipeline = super()._create_pipeline(credential, **options)
            built = pipeline._impl_policies
            swapped = [policy if isinstance(p, core.AsyncBearerTokenCredentialPolicy) else p for p in built]
            self._credential_policy = policy
            return config, AsyncPipeline(pipeline._transport, policies=swapped)

    return _BlobServiceClient(account_url, credential=credential, **kwargs)


# --- credentials and services -----------------------------------------------------------


class TokenIssuer:
    """A user-written async credential: tokens ``<prefix>-token-1``, ``-2``, ..., valid an hour.

    It records the scopes of every request for a token.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.scopes: list[tuple[str, ...]] = []

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        self.scopes.append(scopes)
        return AccessTokenInfo(f"{self.prefix}-token-{len(self.scopes)}", int(time.time()) + 3600)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        # The storage SDKs tell a token credential by this method.
        info = await self.get_token_info(*scopes)
        return AccessToken(info.token, info.expires_on)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> TokenIssuer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    server = Services(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def first_page(items: Any) -> list[Any]:
    return [item async for item in items]


# --- clients that honour authentication_policy= ------------------------------------------


@dataclass(frozen=True)
class Honouring:
    scope: str
    make: Callable[..., Any]  # (services, credential, **kwargs) -> client
    call: Callable[[Any], Awaitable[object]]
    expected: object


async def _logs_rows(client: LogsQueryClient) -> object:
    result = await client.query_workspace("workspace-id", "T | take 1", timespan=None)
    assert isinstance(result, LogsQueryResult)
    return [list(row) for row in result.tables[0].rows]


async def _sentiments(client: TextAnalyticsClient) -> object:
    return [document.sentiment for document in await client.analyze_sentiment(["hello"])]


async def _search_ids(client: SearchClient) -> object:
    return [document["id"] async for document in await client.search(search_text="*")]


HONOURING = [
    pytest.param(
        Honouring(
            ARM_SCOPE,
            lambda s, cred, **kw: ResourceManagementClient(
                cred, "sub-id", base_url=s.url, connection_verify=s.ca_path, **kw
            ),
            lambda client: first_page(group.name async for group in client.resource_groups.list()),
            ["rg"],
        ),
        id="mgmt-resource",
    ),
    pytest.param(
        Honouring(
            LOGS_SCOPE,
            lambda s, cred, **kw: LogsQueryClient(cred, endpoint=s.url, connection_verify=s.ca_path, **kw),
            _logs_rows,
            [[1]],
        ),
        id="monitor-query",
    ),
    pytest.param(
        Honouring(
            LANGUAGE_SCOPE,
            lambda s, cred, **kw: TextAnalyticsClient(s.url, cred, connection_verify=s.ca_path, **kw),
            _sentiments,
            ["positive"],
        ),
        id="ai-textanalytics",
    ),
    pytest.param(
        Honouring(
            SEARCH_SCOPE,
            lambda s, cred, **kw: SearchClient(s.url, "index", cred, connection_verify=s.ca_path, **kw),
            _search_ids,
            ["1"],
        ),
        id="search-documents",
    ),
]


@pytest.mark.parametrize("family", HONOURING)
async def test_client_honours_authentication_policy(services: Services, family: Honouring) -> None:
    policy_credential, client_credential = TokenIssuer("policy"), TokenIssuer("client")
    policy = AsyncBackgroundRefreshTokenPolicy(policy_credential, family.scope)
    async with policy, family.make(services, client_credential, authentication_policy=policy) as client:
        assert await family.call(client) == family.expected
    assert services.authorizations == ["Bearer policy-token-1"]
    assert policy_credential.scopes == [(family.scope,)]
    assert client_credential.scopes == []


# --- clients that ignore it, and the recipes that work ------------------------------------


@dataclass(frozen=True)
class Ignoring:
    scope: str
    make: Callable[..., Any]  # (services, credential, **kwargs) -> client, as documented
    recipe: Callable[..., Any]  # (policy, services, credential) -> client, through a *_with helper
    calls: tuple[Callable[[Any], Awaitable[object]], ...]  # the first on the client itself
    expected: tuple[object, ...]


async def _entities(client: TableServiceClient) -> object:
    async with client.get_table_client("t1") as table:
        return [dict(entity) async for entity in table.list_entities()]


async def _container_name(client: BlobServiceClient) -> object:
    async with client.get_container_client("c1") as container:
        return (await container.get_container_properties()).name


IGNORING = [
    pytest.param(
        Ignoring(
            APPCONFIG_SCOPE,
            lambda s, cred, **kw: AzureAppConfigurationClient(s.url, cred, connection_verify=s.ca_path, **kw),
            lambda policy, s, cred: appconfig_client_with(policy, s.url, cred, connection_verify=s.ca_path),
            (lambda client: first_page((c.key, c.value) async for c in client.list_configuration_settings()),),
            ([("k", "v")],),
        ),
        id="appconfiguration",
    ),
    pytest.param(
        Ignoring(
            STORAGE_SCOPE,
            lambda s, cred, **kw: TableServiceClient(
                f"{s.url}/devstoreaccount1", credential=cred, connection_verify=s.ca_path, **kw
            ),
            lambda policy, s, cred: tables_client_with(
                policy, f"{s.url}/devstoreaccount1", cred, connection_verify=s.ca_path
            ),
            (lambda client: first_page(table.name async for table in client.list_tables()), _entities),
            (["t1"], [{"PartitionKey": "p", "RowKey": "r"}]),
        ),
        id="data-tables",
    ),
    pytest.param(
        Ignoring(
            STORAGE_SCOPE,
            lambda s, cred, **kw: BlobServiceClient(
                f"{s.url}/devstoreaccount1", credential=cred, connection_verify=s.ca_path, **kw
            ),
            lambda policy, s, cred: blob_client_with(
                policy, f"{s.url}/devstoreaccount1", cred, connection_verify=s.ca_path
            ),
            (lambda client: first_page(c.name async for c in client.list_containers()), _container_name),
            (["c1"], "c1"),
        ),
        id="storage-blob",
    ),
]


@pytest.mark.parametrize("family", IGNORING)
async def test_client_ignores_authentication_policy(services: Services, family: Ignoring) -> None:
    policy_credential, client_credential = TokenIssuer("policy"), TokenIssuer("client")
    policy = AsyncBackgroundRefreshTokenPolicy(policy_credential, family.scope)
    async with policy, family.make(services, client_credential, authentication_policy=policy) as client:
        assert await family.calls[0](client) == family.expected[0]
    assert services.authorizations == ["Bearer client-token-1"], "the SDK now honours authentication_policy="
    assert policy_credential.scopes == []


@pytest.mark.parametrize("family", IGNORING)
async def test_recipe_puts_the_policy_in_the_pipeline(services: Services, family: Ignoring) -> None:
    policy_credential, client_credential = TokenIssuer("policy"), TokenIssuer("client")
    policy = AsyncBackgroundRefreshTokenPolicy(policy_credential, family.scope)
    async with policy, family.recipe(policy, services, client_credential) as client:
        assert [await call(client) for call in family.calls] == list(family.expected)
    assert services.authorizations == ["Bearer policy-token-1"] * len(family.calls)
    assert policy_credential.scopes == [(family.scope,)]
    assert client_credential.scopes == []


# --- Key Vault: rejects it --------------------------------------------------------------


async def test_keyvault_rejects_authentication_policy_and_takes_policies(services: Services) -> None:
    policy_credential, client_credential = TokenIssuer("policy"), TokenIssuer("client")
    async with AsyncBackgroundRefreshTokenPolicy(policy_credential, KEYVAULT_SCOPE) as policy:
        with pytest.raises(TypeError, match="authentication_policy"):
            SecretClient(services.url, client_credential, authentication_policy=policy)
        async with keyvault_secrets_client_with(
            policy, services.url, client_credential, connection_verify=services.ca_path
        ) as client:
            secret = await client.get_secret("db-password")
    assert secret.value == "value-of-db-password"
    assert services.authorizations == ["Bearer policy-token-1"]
    assert policy_credential.scopes == [(KEYVAULT_SCOPE,)]
    assert client_credential.scopes == []
