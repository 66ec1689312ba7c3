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
from bgrefresh_policy._decision import CachedToken

SCOPE = "https://management.azure.com/.default"


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
        return AccessTokenInfo(f"bench-{self.calls}", expires_on)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> SlowCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


class AzureCorePolicy(AsyncBearerTokenCredentialPolicy):  # type: ignore[type-arg]
    """azure-core's policy, unchanged except that it can read a settable clock.

    With the default clock it is azure-core's own code path; with another one, the same due
    rule (jitter 0) is evaluated against it, so compressed cycles compare like with like.
    """

    def __init__(self, credential: Any, *scopes: str, clock: Callable[[], float] | None = None) -> None:
        super().__init__(credential, *scopes)
        self._bench_clock = clock

    def _need_new_token(self) -> bool:
        if self._bench_clock is None:
            return bool(super()._need_new_token())
        return self._token is None or CachedToken(self._token, jitter=0, serial=0).is_due(self._bench_clock())


def background_policy(credential: Any, *, clock: Callable[[], float] | None = None) -> Any:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(credential, SCOPE)
    if clock is not None:
        policy._store.clock = clock
        policy._store.draw_jitter = lambda: 0
    return policy


POLICIES: dict[str, Callable[..., Any]] = {
    "azure-core": lambda credential, clock=None: AzureCorePolicy(credential, SCOPE, clock=clock),
    "bgrefresh": background_policy,
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
