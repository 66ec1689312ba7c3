"""Eight Azure data-plane and management services, just enough of each for one call, on loopback HTTPS.

Each answer is the smallest body the real async client of that service parses without error:
ARM resource groups, Log Analytics query, Language sentiment, AI Search query, App Configuration
key-values, Tables (service and one table), Blob (container list and properties) and Key Vault
secrets. Every request's method, path with query and ``Authorization`` header is recorded, so a
test can tell which credential's token reached the service.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["Seen", "Services"]

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
    return web.Response(headers={"ETag": '"0x1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"})


async def _secret(request: web.Request) -> web.Response:
    if "Authorization" not in request.headers:
        # Key Vault's own policy first sends no token and waits for this challenge.
        challenge = (
            'Bearer authorization="https://login.microsoftonline.com/tenant", resource="https://vault.azure.net"'
        )
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})
    name = request.match_info["name"]
    secret_id = f"https://{request.host}/secrets/{name}/v1"
    return _json({"id": secret_id, "value": f"value-of-{name}", "attributes": {"enabled": True}})


_ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/subscriptions/{subscription}/resourcegroups", _resource_groups),
    ("POST", "/v1/workspaces/{workspace}/query", _logs_query),
    ("POST", "/language/:analyze-text", _sentiment),
    ("POST", "/indexes('{index}')/docs/search.post.search", _search),
    ("GET", "/kv", _key_values),
    ("GET", "/devstoreaccount1/Tables", _tables),
    ("GET", "/devstoreaccount1/{table}()", _entities),
    ("GET", "/devstoreaccount1/", _containers),
    ("GET", "/devstoreaccount1/{container}", _container_properties),
    ("GET", "/secrets/{name}/{version:.*}", _secret),
]


class Services:
    """The eight services behind one HTTPS listener on 127.0.0.1, with a throwaway certificate authority.

    ``url`` is the base URL of every service; ``ca_path`` is the PEM of the certificate authority
    that signed the server certificate, for the clients' ``connection_verify=``.
    """

    def __init__(self, workdir: Path) -> None:
        self.seen: list[Seen] = []
        self._ca = trustme.CA()
        self.ca_path = str(workdir / "services-ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def authorizations(self) -> list[str | None]:
        """The ``Authorization`` header of every request, in order."""
        return [seen.authorization for seen in self.seen]

    def forget(self) -> None:
        """Drop the requests recorded so far."""
        self.seen.clear()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        for method, path, handler in _ROUTES:
            app.router.add_route(method, path, handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.url = f"https://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.path_qs, request.headers.get("Authorization")))
        return await handler(request)
