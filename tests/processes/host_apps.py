"""A WSGI app (gunicorn) and an ASGI app (uvicorn) whose workers share tokens across processes.

Each worker builds a ``BackgroundRefreshCredential`` with ``share_across_processes`` on
azure-identity's real ClientSecretCredential, pointed at the test's loopback Entra ID emulator
(``BGREFRESH_AUTHORITY``, ``BGREFRESH_CA``). At start-up it marks its arrival (a file named by its
pid in ``BGREFRESH_ARRIVALS``) and then fetches its token; each response tells the worker's pid
and the token it holds (the emulator's throwaway tokens).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential

import bgrefresh_policy
import bgrefresh_policy.aio
from tests.emulator.server import CLIENT_ID, CLIENT_SECRET, TENANT_ID

SCOPE = "https://vault.azure.net/.default"
NAME = "the-test-service"


def _identity() -> dict[str, Any]:
    return {
        "authority": os.environ["BGREFRESH_AUTHORITY"],
        "disable_instance_discovery": True,
        "connection_verify": os.environ["BGREFRESH_CA"],
    }


def _arrived() -> None:
    Path(os.environ["BGREFRESH_ARRIVALS"], str(os.getpid())).touch()


def _body(token: str) -> bytes:
    return json.dumps({"pid": os.getpid(), "token": token}).encode()


# --- gunicorn: imported by each sync worker (no --preload) --------------------------------------

_sync_credential: Any = None


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = _body(_sync_credential.get_token(SCOPE).token)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn's hook, in each worker: build the credential, arrive, fetch the token."""
    global _sync_credential
    inner = ClientSecretCredential(TENANT_ID, CLIENT_ID, CLIENT_SECRET, **_identity())
    _sync_credential = bgrefresh_policy.BackgroundRefreshCredential(inner, share_across_processes=NAME)
    _arrived()
    _sync_credential.prefetch(SCOPE)


# --- uvicorn: imported by each worker process --------------------------------------------------


async def asgi(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = _body((await _async_credential.get_token(SCOPE)).token)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_async_credential: Any = None


async def _lifespan(receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    global _async_credential
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            inner = AsyncClientSecretCredential(TENANT_ID, CLIENT_ID, CLIENT_SECRET, **_identity())
            _async_credential = bgrefresh_policy.aio.BackgroundRefreshCredential(inner, share_across_processes=NAME)
            _arrived()
            await _async_credential.prefetch(SCOPE)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await _async_credential.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
