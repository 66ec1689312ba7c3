"""Test doubles that implement the Azure protocols (not mocks of Azure libraries).

``ScriptedCredential`` is a user-written credential of the kind the policy must accept;
``ScriptedTransport`` is an ``AsyncHttpTransport`` that answers in memory so unit tests run
azure-core's real pipeline without sockets. Real azure-identity credentials and the real
aiohttp transport are exercised by the integration tests.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import AsyncHttpResponse as LegacyAsyncHttpResponse
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import HttpRequest
from azure.core.utils import case_insensitive_dict


class FakeClock:
    """Unix time that moves only when the test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Call:
    scopes: tuple[str, ...]
    options: dict[str, Any]


@dataclass
class ScriptedCredential:
    """An ``AsyncSupportsTokenInfo`` credential whose answers each test scripts.

    Every call is recorded. A call waits on ``gate`` (any object with ``async wait()``:
    ``asyncio.Event`` or ``trio.Event``) when one is set, then raises the next of ``errors``
    if any, else returns ``token-N`` valid for ``lifetime`` seconds from ``clock()``.
    """

    clock: Callable[[], float]
    lifetime: float = 3600
    refresh_in: float | None = None
    gate: Any = None
    errors: list[BaseException] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    finished: int = 0
    cancelled: int = 0
    fixed_expiry: float | None = None

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        self.calls.append(Call(scopes, dict(options or {})))
        number = len(self.calls)
        try:
            if self.gate is not None:
                await self.gate.wait()
        except BaseException:
            self.cancelled += 1
            raise
        if self.errors:
            raise self.errors.pop(0)
        self.finished += 1
        now = self.clock()
        expires_on = self.fixed_expiry if self.fixed_expiry is not None else now + self.lifetime
        refresh_on = int(now + self.refresh_in) if self.refresh_in is not None else None
        return AccessTokenInfo(f"token-{number}", int(expires_on), refresh_on=refresh_on)

    def __getstate__(self) -> dict[str, Any]:
        # A gate belongs to a running loop; a copy starts ungated.
        return {**self.__dict__, "gate": None}

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> ScriptedCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


@dataclass
class LegacyCredential:
    """An ``AsyncTokenCredential`` with ``get_token`` only, as older user code has."""

    clock: Callable[[], float]
    calls: list[tuple[tuple[str, ...], dict[str, Any]]] = field(default_factory=list)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, kwargs))
        return AccessToken(f"legacy-{len(self.calls)}", int(self.clock() + 3600))

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> LegacyCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


def make_request(url: str = "https://management.example.test/subscriptions") -> PipelineRequest[HttpRequest]:
    return PipelineRequest(HttpRequest("GET", url), PipelineContext(None))


def bearer(request: PipelineRequest[HttpRequest]) -> str:
    return str(request.http_request.headers["Authorization"])


def claims_challenge(claims: str) -> str:
    encoded = base64.urlsafe_b64encode(claims.encode()).decode().rstrip("=")
    return (
        'Bearer realm="", authorization_uri="https://login.example.test", '
        f'error="insufficient_claims", claims="{encoded}"'
    )


class _Response(LegacyAsyncHttpResponse):
    def __init__(self, request: Any, status: int, headers: dict[str, str]) -> None:
        super().__init__(request, None)
        self.status_code = status
        self.headers = case_insensitive_dict(headers)
        self.reason = "scripted"
        self.content_type = None

    def body(self) -> bytes:
        return b""


Responder = Callable[[Any], Awaitable[tuple[int, dict[str, str]]]]


class ScriptedTransport(AsyncHttpTransport):  # type: ignore[type-arg]
    """Answers each request with what ``respond(request)`` says; records the Authorization headers."""

    def __init__(self, respond: Responder | None = None) -> None:
        self.respond = respond
        self.seen: list[tuple[str, str | None]] = []

    async def send(self, request: Any, **kwargs: Any) -> Any:
        self.seen.append((request.url, request.headers.get("Authorization")))
        status, headers = (200, {}) if self.respond is None else await self.respond(request)
        return _Response(request, status, headers)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> ScriptedTransport:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass
