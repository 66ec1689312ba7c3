"""A FastAPI service on one background-refreshing credential: Key Vault, Blob and Azure OpenAI.

``uvicorn service_fastapi:app`` from this directory, configured as ``service_azure.py``
describes. ``/live`` answers while the process serves; ``/ready`` once every token the clients
need is warm.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel

from service_azure import AzureServices, Settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The clients for the application's lifetime: warmed at start-up, closed in order at
    shutdown."""
    services = AzureServices(Settings.from_environment())
    services.start_warm_up()
    app.state.azure = services
    try:
        yield
    finally:
        await services.close()


app = FastAPI(lifespan=lifespan)


def azure(request: Request) -> AzureServices:
    services: AzureServices = request.app.state.azure
    return services


Azure = Annotated[AzureServices, Depends(azure)]


class ChatRequest(BaseModel):
    message: str


@app.get("/live")
async def live() -> dict[str, bool]:
    """Liveness: the process serves. Never reads tokens, so a slow token endpoint restarts
    nothing."""
    return {"live": True}


@app.get("/ready")
async def ready(services: Azure, response: Response) -> dict[str, Any]:
    """Readiness: 200 once every token the clients need is valid, 503 (and which) before."""
    readiness = services.readiness()
    response.status_code = readiness.status
    return readiness.body()


@app.get("/secrets/{name}")
async def secret(name: str, services: Azure) -> dict[str, str | None]:
    return {"value": await services.secret(name)}


@app.get("/containers")
async def containers(services: Azure) -> dict[str, list[str]]:
    return {"containers": await services.containers()}


@app.post("/chat")
async def chat(body: ChatRequest, services: Azure) -> dict[str, str | None]:
    return {"reply": await services.chat(body.message)}
