"""An aiohttp service on one background-refreshing credential: Key Vault, Blob and Azure OpenAI.

``python docs/examples/service_aiohttp.py`` serves on ``PORT`` (8080), configured as
``service_azure.py`` describes. ``/live`` answers while the process serves; ``/ready`` once
every token the clients need is warm.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web

from service_azure import AzureServices, Settings

AZURE = web.AppKey("azure", AzureServices)


async def azure_services(app: web.Application) -> AsyncIterator[None]:
    """The clients for the application's lifetime: warmed at start-up, closed in order at
    shutdown."""
    services = AzureServices(Settings.from_environment())
    services.start_warm_up()
    app[AZURE] = services
    yield
    await services.close()


async def live(request: web.Request) -> web.Response:
    """Liveness: the process serves. Never reads tokens, so a slow token endpoint restarts
    nothing."""
    return web.json_response({"live": True})


async def ready(request: web.Request) -> web.Response:
    """Readiness: 200 once every token the clients need is valid, 503 (and which) before."""
    readiness = request.app[AZURE].readiness()
    return web.json_response(readiness.body(), status=readiness.status)


async def secret(request: web.Request) -> web.Response:
    value = await request.app[AZURE].secret(request.match_info["name"])
    return web.json_response({"value": value})


async def containers(request: web.Request) -> web.Response:
    return web.json_response({"containers": await request.app[AZURE].containers()})


async def chat(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"reply": await request.app[AZURE].chat(str(body["message"]))})


def create_app() -> web.Application:
    """The application, its routes, and the Azure clients' lifetime as a cleanup context."""
    app = web.Application()
    app.cleanup_ctx.append(azure_services)
    app.add_routes(
        [
            web.get("/live", live),
            web.get("/ready", ready),
            web.get("/secrets/{name}", secret),
            web.get("/containers", containers),
            web.post("/chat", chat),
        ]
    )
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
