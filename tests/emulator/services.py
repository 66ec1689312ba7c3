"""Twelve Azure data-plane and management services, just enough of each for one call, on loopback HTTPS.

Each answer is the smallest body the real async and sync clients of that service parse without
error: ARM resource groups, Log Analytics query, Language sentiment, AI Search query, App
Configuration key-values, Tables (service and one table), Blob (containers, container and blob
properties), Queue and Data Lake (properties), Key Vault secrets, keys and certificates, and
Azure OpenAI's chat completions, for the token providers, and Communication Identity (a user
and a user's access token); and the seven services of ``sdk_services`` (Cosmos DB, Container
Registry, AI Inference, Monitor ingestion, Service Bus administration, Kusto, Microsoft Graph).
Every request's method, path with query and ``Authorization`` header is recorded, so a test can
tell which token reached the service.

The families' own challenges are played as the real services play them: Key Vault answers a
request without a token with a 401 naming its tenant (``VAULT_TENANT``); Storage and Tables
answer a token that is not for ``STORAGE_TENANT`` with a 401 naming that tenant. A token's
tenant is read from its end, ``...@<tenant>``: the tests' credentials issue them so.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from aiohttp import web
from aiohttp.typedefs import Handler

from .sdk_services import EXCHANGED
from .sdk_services import ROUTES as SDK_ROUTES
from .server import abort_connections

__all__ = ["STORAGE_TENANT", "VAULT_TENANT", "Seen", "Services"]

VAULT_TENANT = "vault-tenant"
# The app's set of Authorization headers that Storage and Tables refuse as revoked.
REVOKED: web.AppKey[set[str]] = web.AppKey("revoked", set)
STORAGE_TENANT = "storage-tenant"

JSON = "application/json"
TABLES_JSON = "application/json;odata=nometadata"

_CONTAINERS = (
    '<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="{url}/">'
    "<Containers><Container><Name>c1</Name><Properties>"
    '<Last-Modified>Mon, 01 Jan 2024 00:00:00 GMT</Last-Modified><Etag>"0x1"</Etag>'
    "</Properties></Container></Containers><NextMarker/></EnumerationResults>"
)


@dataclass(frozen=True)
class Seen:
    """One request as the service received it."""

    method: str
    path_qs: str
    authorization: str | None
    status: int


def _json(data: object, content_type: str = JSON) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), content_type=None, headers={"Content-Type": content_type})


async def _resource_groups(request: web.Request) -> web.Response:
    group = {"id": "/subscriptions/s/resourceGroups/rg", "name": "rg", "location": "westus"}
    return _json({"value": [group]})


async def _logs_query(request: web.Request) -> web.Response:
    table = {"name": "PrimaryResult", "columns": [{"name": "x", "type": "int"}], "rows": [[1]]}
    return _json({"tables": [table]})


async def _sentiment(request: web.Request) -> web.Response:
    document = {
        "id": "0",
        "sentiment": "positive",
        "confidenceScores": {"positive": 1.0, "neutral": 0.0, "negative": 0.0},
        "sentences": [],
        "warnings": [],
    }
    results = {"documents": [document], "errors": [], "modelVersion": "emulator"}
    return _json({"kind": "SentimentAnalysisResults", "results": results})


async def _search(request: web.Request) -> web.Response:
    return _json({"value": [{"@search.score": 1.0, "id": "1"}]})


async def _key_values(request: web.Request) -> web.Response:
    items = [{"key": "k", "value": "v", "etag": "e"}]
    return _json({"items": items}, "application/vnd.microsoft.appconfig.kvset+json")


async def _tables(request: web.Request) -> web.Response:
    return _json({"value": [{"TableName": "t1"}]}, TABLES_JSON)


async def _entities(request: web.Request) -> web.Response:
    return _json({"value": [{"PartitionKey": "p", "RowKey": "r"}]}, TABLES_JSON)


async def _containers(request: web.Request) -> web.Response:
    body = _CONTAINERS.format(url=f"https://{request.host}/devstoreaccount1")
    return web.Response(body=body.encode(), content_type="application/xml")


async def _container_properties(request: web.Request) -> web.Response:
    headers = {
        "ETag": '"0x1"',
        "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
        "x-ms-approximate-messages-count": "0",  # for a queue's properties, on the same route shape
    }
    return web.Response(headers=headers)


async def _blob_properties(request: web.Request) -> web.Response:
    headers = {
        "ETag": '"0x2"',
        "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
        "Content-Length": "0",
        "x-ms-blob-type": "BlockBlob",
    }
    return web.Response(headers=headers)


def _vault_challenge() -> web.Response:
    challenge = (
        f'Bearer authorization="https://login.microsoftonline.com/{VAULT_TENANT}", resource="https://vault.azure.net"'
    )
    return web.Response(status=401, headers={"WWW-Authenticate": challenge})


async def _secret(request: web.Request) -> web.Response:
    if "Authorization" not in request.headers:
        return _vault_challenge()  # Key Vault's own policy first sends no token and waits for this
    name = request.match_info["name"]
    secret_id = f"https://{request.host}/secrets/{name}/v1"
    return _json({"id": secret_id, "value": f"value-of-{name}", "attributes": {"enabled": True}})


async def _key(request: web.Request) -> web.Response:
    if "Authorization" not in request.headers:
        return _vault_challenge()
    kid = f"https://{request.host}/keys/{request.match_info['name']}/v1"
    return _json({"key": {"kid": kid, "kty": "RSA", "n": "AQAB", "e": "AQAB"}, "attributes": {"enabled": True}})


async def _certificate(request: web.Request) -> web.Response:
    if "Authorization" not in request.headers:
        return _vault_challenge()
    cert_id = f"https://{request.host}/certificates/{request.match_info['name']}/v1"
    return _json({"id": cert_id, "attributes": {"enabled": True}})


def _wrong_storage_tenant(request: web.Request) -> web.Response | None:
    """Storage's and Tables' 401 for a token of another tenant, or one revoked: it names the account's tenant."""
    authorization = request.headers.get("Authorization", "")
    if authorization.endswith(f"@{STORAGE_TENANT}") and authorization not in request.app[REVOKED]:
        return None
    challenge = (
        f"Bearer authorization_uri=https://login.microsoftonline.com/{STORAGE_TENANT}/oauth2/authorize "
        "resource_id=https://storage.azure.com"
    )
    return web.Response(status=401, headers={"WWW-Authenticate": challenge})


def _storage(handler: Handler) -> Handler:
    async def checked(request: web.Request) -> web.StreamResponse:
        return _wrong_storage_tenant(request) or await handler(request)

    return checked


async def _chat_completion(request: web.Request) -> web.Response:
    message = {"role": "assistant", "content": "hi"}
    choice = {"index": 0, "finish_reason": "stop", "message": message}
    return _json({"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]})


async def _communication_user(request: web.Request) -> web.Response:
    return web.Response(status=201, body=json.dumps({"identity": {"id": "8:acs:user-1"}}).encode(), content_type=JSON)


async def _communication_user_token(request: web.Request) -> web.Response:
    # A Communication Services user's token: what the client's own get_token(user, scopes) returns.
    return _json({"token": f"acs-token-of-{request.match_info['id']}", "expiresOn": "2030-01-01T00:00:00Z"})


_ROUTES: list[tuple[str, str, Handler]] = [
    *SDK_ROUTES,  # first: Storage's routes take any path of two or three segments
    ("POST", "/identities", _communication_user),
    ("POST", "/identities/{id}/:issueAccessToken", _communication_user_token),
    ("POST", "/openai/deployments/{deployment}/chat/completions", _chat_completion),
    ("GET", "/subscriptions/{subscription}/resourcegroups", _resource_groups),
    ("POST", "/v1/workspaces/{workspace}/query", _logs_query),
    ("POST", "/language/:analyze-text", _sentiment),
    ("POST", "/indexes('{index}')/docs/search.post.search", _search),
    ("GET", "/kv", _key_values),
    ("GET", "/secrets/{name}/{version:.*}", _secret),
    ("GET", "/keys/{name}/{version:.*}", _key),
    ("GET", "/certificates/{name}/{version:.*}", _certificate),
    ("GET", "/devstoreaccount1/Tables", _storage(_tables)),
    ("GET", "/devstoreaccount1/{table}()", _storage(_entities)),
    ("GET", "/devstoreaccount1/", _storage(_containers)),
    # Blob containers, Data Lake file systems and queues: any account, any name.
    ("GET", "/{account}/{container}", _storage(_container_properties)),
    ("GET", "/{account}/{container}/{blob}", _storage(_blob_properties)),
    ("HEAD", "/{account}/{container}/{blob}", _storage(_blob_properties)),
]


class Services:
    """The twelve services behind one HTTPS listener on 127.0.0.1, with a throwaway certificate authority.

    ``url`` is the base URL of every service; ``ca_path`` is the PEM of the certificate authority
    that signed the server certificate, for the clients' ``connection_verify=``.
    """

    def __init__(self, workdir: Path) -> None:
        self.seen: list[Seen] = []
        self.revoked: set[str] = set()  # Authorization headers Storage and Tables refuse from now on
        self.exchanged: list[str] = []  # Entra ID tokens Container Registry's token exchange received
        self._ca = trustme.CA()
        self.ca_path = str(workdir / "services-ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def statuses(self) -> list[int]:
        """The status of every response, in order."""
        return [seen.status for seen in self.seen]

    @property
    def authorizations(self) -> list[str | None]:
        """The ``Authorization`` header of every request, in order."""
        return [seen.authorization for seen in self.seen]

    def forget(self) -> None:
        """Drop the requests (and Container Registry's token exchanges) recorded so far."""
        self.seen.clear()
        self.exchanged.clear()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app[REVOKED] = self.revoked
        app[EXCHANGED] = self.exchanged
        for method, path, handler in _ROUTES:
            app.router.add_route(method, path, handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.url = f"https://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self, *, abort: bool = False) -> None:
        """Stop listening; with ``abort``, drop open connections first (sync clients in other threads,
        or their background health checks, may hold theirs open past the end)."""
        if self._runner is not None:
            if abort:
                abort_connections(self._runner)
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        self.seen.append(Seen(request.method, request.path_qs, request.headers.get("Authorization"), response.status))
        return response
