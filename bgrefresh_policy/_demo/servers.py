"""A token endpoint with a slow refresh and a service that checks bearer tokens, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["DemoServers"]


@dataclass
class DemoServers:
    """Both servers in one aiohttp app.

    :param float token_latency: seconds the token endpoint takes to answer.
    :param float token_lifetime: seconds a token is valid.
    """

    token_latency: float
    token_lifetime: float
    token_requests: int = 0
    # token -> expiry (Unix time); only tokens issued here are accepted.
    _issued: dict[str, float] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_get("/resource", self._resource)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        await asyncio.sleep(self.token_latency)
        token = f"demo-token-{next(self._numbers)}"
        self._issued[token] = time.time() + self.token_lifetime
        return web.json_response({"token_type": "Bearer", "expires_in": self.token_lifetime, "access_token": token})

    async def _resource(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self._issued.get(token)
        if scheme != "Bearer" or expiry is None or expiry <= time.time():
            return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return web.json_response({"value": []})
