"""A loopback Microsoft Entra ID token endpoint: client credentials, as azure-identity and MSAL use it."""

from __future__ import annotations

import asyncio
import enum
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["Fault", "IssuedToken", "TokenEndpoint"]


class Fault(enum.Enum):
    """How the token endpoint misbehaves while ``TokenEndpoint.fault`` is set."""

    NONE = "none"
    HTTP_500 = "500"
    HTTP_503 = "503"
    THROTTLED = "429"  # with Retry-After
    HANG = "hang"  # never answers
    MALFORMED_JSON = "malformed-json"
    DROP_CONNECTION = "drop-connection"


@dataclass(frozen=True)
class IssuedToken:
    expires_on: float
    claims: str | None
    tenant: str
    scope: str


@dataclass
class TokenEndpoint:
    """``POST /{tenant}/oauth2/v2.0/token`` and the OpenID metadata MSAL reads first.

    Configure per test: ``lifetime`` and ``refresh_in`` (seconds), ``latency`` (seconds before
    answering) and ``fault``. ``requests`` counts token requests; ``issued`` maps every access
    token handed out to its expiry and the claims it was requested with. A token ends with
    ``@<tenant>``, the tenant it was asked for, which the Storage emulator
    (:mod:`tests.emulator.services`) reads as a real account reads the token's claims.

    :meth:`hold` makes token requests wait until :meth:`release`, so a test can show what
    happened while one was under way (``held`` counts the requests waiting now), without
    timing anything. Both may be called from any thread.
    """

    lifetime: float = 3600
    refresh_in: float | None = None
    latency: float = 0.0
    fault: Fault = Fault.NONE
    retry_after: int = 1
    requests: int = 0
    failed: int = 0
    issued: dict[str, IssuedToken] = field(default_factory=dict)
    request_times: list[float] = field(default_factory=list)
    base_url: str = ""
    held: int = 0
    _gate: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def hold(self) -> None:
        """From now on, every token request waits, once it has been read, until :meth:`release`."""
        assert self._gate is None, "already held"
        self._gate = asyncio.Event()

    def release(self) -> None:
        """Answer the held token requests, and those that come later, as configured."""
        gate, self._gate = self._gate, None
        if gate is not None and self._loop is not None:
            # The emulator's loop may run in another thread (tests of sync clients).
            self._loop.call_soon_threadsafe(gate.set)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/{tenant}/oauth2/v2.0/token", self._token),
            web.get("/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration),
        ]

    async def _openid_configuration(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        root = f"{self.base_url}/{tenant}"
        return web.json_response(
            {
                "issuer": f"{root}/v2.0",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": None,
            }
        )

    async def _token(self, request: web.Request) -> web.StreamResponse:
        self._loop = asyncio.get_running_loop()
        self.requests += 1
        self.request_times.append(time.monotonic())
        form = await request.post()
        if form.get("grant_type") != "client_credentials" or not (
            form.get("client_secret") or form.get("client_assertion")
        ):
            return web.json_response({"error": "invalid_request"}, status=400)
        gate = self._gate
        if gate is not None:
            self.held += 1
            try:
                await gate.wait()
            finally:
                self.held -= 1
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self.fault
        if fault is not Fault.NONE:
            self.failed += 1
            return await self._misbehave(request, fault)
        tenant = request.match_info["tenant"]
        token = f"{secrets.token_urlsafe(24)}@{tenant}"
        claims = form.get("claims")
        self.issued[token] = IssuedToken(
            expires_on=time.time() + self.lifetime,
            claims=str(claims) if claims else None,
            tenant=tenant,
            scope=str(form.get("scope", "")),
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": int(self.lifetime),
            "ext_expires_in": int(self.lifetime),
            "access_token": token,
        }
        if self.refresh_in is not None:
            body["refresh_in"] = int(self.refresh_in)
        return web.json_response(body)

    async def _misbehave(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault is Fault.HANG:
            # No answer until the client gives up (its connection closes) or the server stops.
            while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110 - aiohttp has no event for it
                await asyncio.sleep(0.05)
            return web.Response(status=504)
        if fault is Fault.MALFORMED_JSON:
            return web.Response(text='{"access_token": ', content_type="application/json")
        if fault is Fault.DROP_CONNECTION:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if fault is Fault.THROTTLED:
            return web.json_response(
                {"error": "temporarily_unavailable"}, status=429, headers={"Retry-After": str(self.retry_after)}
            )
        status = 500 if fault is Fault.HTTP_500 else 503
        return web.Response(status=status, text=json.dumps({"error": "server_error"}), content_type="application/json")
