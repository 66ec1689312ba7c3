"""What every benchmark scenario shares: a settable clock, a slow credential, both policies, a no-op transport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from azure.core.credentials import AccessTokenInfo, TokenRequestOptions
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy
from azure.core.pipeline.transport import AsyncHttpResponse, AsyncHttpTransport
from azure.core.utils import case_insensitive_dict

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy

SCOPE = "https://management.azure.com/.default"
# A realistic Entra ID access token is a JWT of 1.5-2.5 KB.
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + "x" * 2000


@dataclass
class SlowCredential:
    """Answers after ``latency`` seconds with a token valid ``lifetime`` seconds from ``clock()``."""

    clock: Callable[[], float] = time.time
    latency: float = 0.0
    lifetime: float = 3600.0
    calls: int = 0

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        self.calls += 1
        await asyncio.sleep(self.latency)
        expires_on: Any = self.clock() + self.lifetime  # fractional: compressed lifetimes
        return AccessTokenInfo(f"{TOKEN}-{self.calls}", expires_on)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> SlowCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


POLICIES: dict[str, Callable[[Any], Any]] = {
    "azure-core": lambda credential: AsyncBearerTokenCredentialPolicy(credential, SCOPE),
    "bgrefresh": lambda credential: AsyncBackgroundRefreshTokenPolicy(credential, SCOPE),
}


class OkResponse:
    """200, no body; mixed into azure-core's async and sync response types."""

    def __init__(self, request: Any) -> None:
        super().__init__(request, None)  # type: ignore[call-arg]
        self.status_code = 200
        self.headers = case_insensitive_dict()
        self.reason: str | None = "OK"

    def body(self) -> bytes:
        return b""


class _Ok(OkResponse, AsyncHttpResponse):
    pass


def ok_response(request: Any) -> Any:
    """A 200 response with no body, for a policy whose next step answers at once."""
    return _Ok(request)


class NoopTransport(AsyncHttpTransport):  # type: ignore[type-arg]
    """Answers 200 at once, so only the pipeline and the policy are measured."""

    async def send(self, request: Any, **kwargs: Any) -> Any:
        return _Ok(request)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> NoopTransport:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


class LoopbackService:
    """An aiohttp server on 127.0.0.1 that answers every GET with 200."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> LoopbackService:
        app = web.Application()

        async def ok(request: web.Request) -> web.Response:
            return web.json_response({"value": []})

        app.router.add_get("/resource", ok)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/resource"
        return self

    async def __aexit__(self, *args: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
