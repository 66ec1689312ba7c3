"""Seven more services, just enough of each for one call: what ``BackgroundRefreshCredential``'s reach tests use.

Cosmos DB (the account, and one database read), Container Registry (its challenge, the token
exchange, the catalog), AI Inference (chat completions), Monitor ingestion (an upload), Service
Bus administration (a queue's description, in Atom), Kusto (a management command) and
Microsoft Graph (a user). Served by :class:`~tests.emulator.services.Services` beside the others.

Container Registry is the one whose requests never carry the Entra ID token: it answers each
request without a token with a challenge, and the client exchanges the Entra ID token at
``/oauth2/exchange`` for a registry refresh token, then that at ``/oauth2/token`` for a registry
access token. The Entra ID tokens presented at ``/oauth2/exchange`` are recorded in the app's
``EXCHANGED`` list, as the others' ``Authorization`` headers are.
"""

from __future__ import annotations

import base64
import json

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["EXCHANGED", "QUEUE", "ROUTES", "unsigned_jwt"]

# The Entra ID tokens Container Registry's token exchange received, in order.
EXCHANGED: web.AppKey[list[str]] = web.AppKey("exchanged", list)

FAR_FUTURE = 4_000_000_000  # an ``exp`` no test reaches
QUEUE = "orders"  # the Service Bus queue whose description the administration client reads


def unsigned_jwt(claims: dict[str, object]) -> str:
    """A JWT of ``claims`` with no signature: what the clients that read a token's claims parse."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


# --- Cosmos DB ------------------------------------------------------------------------------


async def _cosmos_account(request: web.Request) -> web.Response:
    # The client reads the account first, and sends each later request to a region it names.
    region = [{"name": "West US", "databaseAccountEndpoint": f"https://{request.host}/"}]
    return web.json_response(
        {
            "id": "emulator",
            "_rid": "emulator.documents.azure.com",
            "writableLocations": region,
            "readableLocations": region,
            "enableMultipleWriteLocations": False,
            "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
            "systemReplicationPolicy": {"minReplicaSetSize": 1, "maxReplicasetSize": 4},
            "readPolicy": {"primaryReadCoefficient": 1, "secondaryReadCoefficient": 1},
            "queryEngineConfiguration": "{}",
        }
    )


async def _cosmos_database(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return web.json_response({"id": name, "_rid": "AAAAAA==", "_self": "dbs/AAAAAA==/", "_etag": '"0"', "_ts": 0})


# --- Container Registry ---------------------------------------------------------------------


async def _catalog(request: web.Request) -> web.Response:
    if not request.headers.get("Authorization", "").startswith("Bearer acr-access-"):
        challenge = (
            f'Bearer realm="https://{request.host}/oauth2/token",service="{request.host}",scope="registry:catalog:*"'
        )
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})
    return web.json_response({"repositories": ["hello-world"]})


async def _exchange(request: web.Request) -> web.Response:
    form = await request.post()
    request.app[EXCHANGED].append(str(form["access_token"]))
    # The client reads the refresh token's expiry from its claims.
    return web.json_response({"refresh_token": unsigned_jwt({"exp": FAR_FUTURE})})


async def _registry_token(request: web.Request) -> web.Response:
    form = await request.post()
    if form.get("grant_type") != "refresh_token":
        return web.Response(status=400)
    return web.json_response({"access_token": "acr-access-" + str(form["scope"])})


# --- AI Inference, Monitor ingestion, Kusto, Graph -------------------------------------------------


async def _inference_chat(request: web.Request) -> web.Response:
    message = {"role": "assistant", "content": "hi"}
    choice = {"index": 0, "finish_reason": "stop", "message": message}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    return web.json_response({"id": "c", "created": 0, "model": "m", "choices": [choice], "usage": usage})


async def _ingest(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=204)


async def _kusto_mgmt(request: web.Request) -> web.Response:
    await request.read()
    table = {"TableName": "Table_0", "Columns": [{"ColumnName": "x", "DataType": "Int32", "ColumnType": "int"}]}
    return web.json_response({"Tables": [{**table, "Rows": [[1]]}]})


async def _graph_user(request: web.Request) -> web.Response:
    return web.json_response({"id": request.match_info["id"], "displayName": "Ada"})


# --- Service Bus administration -------------------------------------------------------------

_QUEUE_ENTRY = (
    '<entry xmlns="http://www.w3.org/2005/Atom"><id>https://{host}/{name}</id><title type="text">{name}</title>'
    "<updated>2024-01-01T00:00:00Z</updated>"
    '<content type="application/xml"><QueueDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/'
    'servicebus/connect" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><MaxSizeInMegabytes>1024'
    "</MaxSizeInMegabytes><Status>Active</Status></QueueDescription></content></entry>"
)


async def _queue_description(request: web.Request) -> web.Response:
    body = _QUEUE_ENTRY.format(host=request.host, name=QUEUE)
    return web.Response(body=body.encode(), content_type="application/atom+xml")


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/", _cosmos_account),
    ("GET", "/dbs/{name}/", _cosmos_database),
    ("GET", "/acr/v1/_catalog", _catalog),
    ("POST", "/oauth2/exchange", _exchange),
    ("POST", "/oauth2/token", _registry_token),
    ("POST", "/chat/completions", _inference_chat),
    ("POST", "/dataCollectionRules/{rule}/streams/{stream}", _ingest),
    ("GET", "/v1.0/users/{id}", _graph_user),
    ("POST", "/v1/rest/mgmt", _kusto_mgmt),
    ("GET", f"/{QUEUE}", _queue_description),  # the only queue: its name is the whole path
]
