"""The twelve client families, async and sync: how to build each against the loopback services, and one call.

Each family's call makes the requests a program typically makes (Blob and Data Lake through the
child clients they hand out); ``expected`` is what it returns. ``tenant`` is the tenant the
family's own challenge teaches the policy (Key Vault, Storage, Tables), None for the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from azure.ai.textanalytics import TextAnalyticsClient
from azure.ai.textanalytics.aio import TextAnalyticsClient as AsyncTextAnalyticsClient
from azure.appconfiguration import AzureAppConfigurationClient
from azure.appconfiguration.aio import AzureAppConfigurationClient as AsyncAzureAppConfigurationClient
from azure.data.tables import TableServiceClient
from azure.data.tables.aio import TableServiceClient as AsyncTableServiceClient
from azure.keyvault.certificates import CertificateClient
from azure.keyvault.certificates.aio import CertificateClient as AsyncCertificateClient
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.aio import KeyClient as AsyncKeyClient
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.resources.aio import ResourceManagementClient as AsyncResourceManagementClient
from azure.monitor.query import LogsQueryClient
from azure.monitor.query.aio import LogsQueryClient as AsyncLogsQueryClient
from azure.search.documents import SearchClient
from azure.search.documents.aio import SearchClient as AsyncSearchClient
from azure.storage.blob import BlobServiceClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient
from azure.storage.filedatalake import DataLakeServiceClient
from azure.storage.filedatalake.aio import DataLakeServiceClient as AsyncDataLakeServiceClient
from azure.storage.queue import QueueServiceClient
from azure.storage.queue.aio import QueueServiceClient as AsyncQueueServiceClient

from tests.emulator.services import STORAGE_TENANT, VAULT_TENANT, Services

__all__ = ["FAMILIES", "Family"]

Make = Callable[[Services, Any], Any]  # (services, credential) -> client


@dataclass(frozen=True)
class Family:
    make: Make
    make_sync: Make
    call: Callable[[Any], Awaitable[object]]
    call_sync: Callable[[Any], object]
    expected: object
    tenant: str | None = None


def _tls(services: Services) -> dict[str, Any]:
    return {"connection_verify": services.ca_path}


def _vault(client_class: type) -> Make:
    return lambda s, c: client_class(s.url, c, verify_challenge_resource=False, **_tls(s))


def _storage(client_class: type, account: str) -> Make:
    return lambda s, c: client_class(f"{s.url}/{account}", credential=c, **_tls(s))


async def _all(items: Any) -> list[Any]:
    return [item async for item in items]


# --- the calls, async then sync ---------------------------------------------------------


async def _groups(client: Any) -> object:
    return await _all(group.name async for group in client.resource_groups.list())


async def _rows(client: Any) -> object:
    return [list(row) for row in (await client.query_workspace("w", "T", timespan=None)).tables[0].rows]


async def _sentiments(client: Any) -> object:
    return [document.sentiment for document in await client.analyze_sentiment(["hello"])]


async def _search(client: Any) -> object:
    return [document["id"] async for document in await client.search(search_text="*")]


async def _settings(client: Any) -> object:
    return await _all((s.key, s.value) async for s in client.list_configuration_settings())


async def _blobs(client: Any) -> object:
    names = await _all(c.name async for c in client.list_containers())
    container = client.get_container_client("c1")
    blob = container.get_blob_client("b1")
    return names, (await container.get_container_properties()).name, (await blob.get_blob_properties()).name


async def _queue(client: Any) -> object:
    return (await client.get_queue_client("q1").get_queue_properties()).name


async def _file_system(client: Any) -> object:
    return (await client.get_file_system_client("fs1").get_file_system_properties()).name


async def _tables(client: Any) -> object:
    names = await _all(table.name async for table in client.list_tables())
    return names, await _all(dict(entity) async for entity in client.get_table_client("t1").list_entities())


def _blobs_sync(client: Any) -> object:
    container = client.get_container_client("c1")
    blob = container.get_blob_client("b1")
    names = [c.name for c in client.list_containers()]
    return names, container.get_container_properties().name, blob.get_blob_properties().name


def _tables_sync(client: Any) -> object:
    names = [table.name for table in client.list_tables()]
    return names, [dict(entity) for entity in client.get_table_client("t1").list_entities()]


FAMILIES = [
    pytest.param(
        Family(
            lambda s, c: AsyncResourceManagementClient(c, "sub", base_url=s.url, **_tls(s)),
            lambda s, c: ResourceManagementClient(c, "sub", base_url=s.url, **_tls(s)),
            _groups,
            lambda client: [group.name for group in client.resource_groups.list()],
            ["rg"],
        ),
        id="mgmt-resource",
    ),
    pytest.param(
        Family(
            lambda s, c: AsyncLogsQueryClient(c, endpoint=s.url, **_tls(s)),
            lambda s, c: LogsQueryClient(c, endpoint=s.url, **_tls(s)),
            _rows,
            lambda client: [list(row) for row in client.query_workspace("w", "T", timespan=None).tables[0].rows],
            [[1]],
        ),
        id="monitor-query",
    ),
    pytest.param(
        Family(
            lambda s, c: AsyncTextAnalyticsClient(s.url, c, **_tls(s)),
            lambda s, c: TextAnalyticsClient(s.url, c, **_tls(s)),
            _sentiments,
            lambda client: [document.sentiment for document in client.analyze_sentiment(["hello"])],
            ["positive"],
        ),
        id="ai-textanalytics",
    ),
    pytest.param(
        Family(
            lambda s, c: AsyncSearchClient(s.url, "index", c, **_tls(s)),
            lambda s, c: SearchClient(s.url, "index", c, **_tls(s)),
            _search,
            lambda client: [document["id"] for document in client.search(search_text="*")],
            ["1"],
        ),
        id="search-documents",
    ),
    pytest.param(
        Family(
            lambda s, c: AsyncAzureAppConfigurationClient(s.url, c, **_tls(s)),
            lambda s, c: AzureAppConfigurationClient(s.url, c, **_tls(s)),
            _settings,
            lambda client: [(s.key, s.value) for s in client.list_configuration_settings()],
            [("k", "v")],
        ),
        id="appconfiguration",
    ),
    pytest.param(
        Family(
            _vault(AsyncSecretClient),
            _vault(SecretClient),
            lambda client: _value(client.get_secret("db")),
            lambda client: client.get_secret("db").value,
            "value-of-db",
            VAULT_TENANT,
        ),
        id="keyvault-secrets",
    ),
    pytest.param(
        Family(
            _vault(AsyncKeyClient),
            _vault(KeyClient),
            lambda client: _name(client.get_key("k")),
            lambda client: client.get_key("k").name,
            "k",
            VAULT_TENANT,
        ),
        id="keyvault-keys",
    ),
    pytest.param(
        Family(
            _vault(AsyncCertificateClient),
            _vault(CertificateClient),
            lambda client: _name(client.get_certificate("c")),
            lambda client: client.get_certificate("c").name,
            "c",
            VAULT_TENANT,
        ),
        id="keyvault-certificates",
    ),
    pytest.param(
        Family(
            _storage(AsyncBlobServiceClient, "devstoreaccount1"),
            _storage(BlobServiceClient, "devstoreaccount1"),
            _blobs,
            _blobs_sync,
            (["c1"], "c1", "b1"),
            STORAGE_TENANT,
        ),
        id="storage-blob",
    ),
    pytest.param(
        Family(
            _storage(AsyncQueueServiceClient, "queues1"),
            _storage(QueueServiceClient, "queues1"),
            _queue,
            lambda client: client.get_queue_client("q1").get_queue_properties().name,
            "q1",
            STORAGE_TENANT,
        ),
        id="storage-queue",
    ),
    pytest.param(
        Family(
            _storage(AsyncDataLakeServiceClient, "datalake1"),
            _storage(DataLakeServiceClient, "datalake1"),
            _file_system,
            lambda client: client.get_file_system_client("fs1").get_file_system_properties().name,
            "fs1",
            STORAGE_TENANT,
        ),
        id="storage-file-datalake",
    ),
    pytest.param(
        Family(
            _storage(AsyncTableServiceClient, "devstoreaccount1"),
            _storage(TableServiceClient, "devstoreaccount1"),
            _tables,
            _tables_sync,
            (["t1"], [{"PartitionKey": "p", "RowKey": "r"}]),
            STORAGE_TENANT,
        ),
        id="data-tables",
    ),
]


async def _value(secret: Awaitable[Any]) -> object:
    return (await secret).value


async def _name(item: Awaitable[Any]) -> object:
    return (await item).name
