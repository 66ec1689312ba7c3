"""A loopback Azure Resource Manager: resource groups, bearer checks, 401s and CAE claims challenges."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from .entra import TokenEndpoint

__all__ = ["SUBSCRIPTION_ID", "ArmService"]

SUBSCRIPTION_ID = "00000000-0000-0000-0000-00000000c0de"
ARM_SCOPE = "https://management.azure.com/.default"
_AUTHORITY = 'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"'


def _has_claims(requested: str | None, demanded: str) -> bool:
    """Whether a token requested with ``requested`` claims satisfies the ``demanded`` challenge claims.

    MSAL merges client capabilities (``xms_cc``) into the claims it sends, so compare per claim.
    """
    if not requested:
        return False
    sent = json.loads(requested).get("access_token", {})
    wanted = json.loads(demanded).get("access_token", {})
    return all(sent.get(name) == value for name, value in wanted.items())


@dataclass
class ArmService:
    """ARM-shaped routes that accept only unexpired tokens issued by ``tokens``.

    Set ``demand_claims`` to a claims JSON to answer requests whose token was not requested with
    those claims by a CAE ``insufficient_claims`` challenge.
    """

    tokens: TokenEndpoint
    demand_claims: str | None = None
    requests: int = 0
    unauthorized: int = 0
    bearer_tokens: list[str] = field(default_factory=list)  # as received, in order
    request_times: list[tuple[float, float]] = field(default_factory=list)  # (monotonic start, seconds)
    resource_groups: tuple[str, ...] = ("rg-alpha", "rg-beta")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/subscriptions", self._subscriptions),
            web.get("/subscriptions/{subscription}/resourcegroups", self._resource_groups),
            web.get("/subscriptions/{subscription}/resourcegroups/{name}", self._resource_group),
        ]

    def _reject(self, request: web.Request) -> web.Response | None:
        self.requests += 1
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        self.bearer_tokens.append(token)
        issued = self.tokens.issued.get(token) if scheme == "Bearer" else None
        # Only ARM's own tokens: one issued for another scope is as good as none.
        if issued is None or issued.expires_on <= time.time() or ARM_SCOPE not in issued.scope.split():
            self.unauthorized += 1
            challenge = f'Bearer {_AUTHORITY}, error="invalid_token", error_description="token missing or expired"'
            return web.json_response(
                {"error": {"code": "InvalidAuthenticationToken", "message": "The access token is invalid."}},
                status=401,
                headers={"WWW-Authenticate": challenge},
            )
        if self.demand_claims is not None and not _has_claims(issued.claims, self.demand_claims):
            self.unauthorized += 1
            encoded = base64.urlsafe_b64encode(self.demand_claims.encode()).decode().rstrip("=")
            challenge = f'Bearer realm="", {_AUTHORITY}, error="insufficient_claims", claims="{encoded}"'
            return web.json_response(
                {"error": {"code": "InvalidAuthenticationToken", "message": "Claims challenge."}},
                status=401,
                headers={"WWW-Authenticate": challenge},
            )
        return None

    def _group(self, subscription: str, name: str) -> dict[str, object]:
        return {
            "id": f"/subscriptions/{subscription}/resourceGroups/{name}",
            "name": name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": "westeurope",
            "properties": {"provisioningState": "Succeeded"},
        }

    async def _subscriptions(self, request: web.Request) -> web.Response:
        rejected = self._reject(request)
        if rejected is not None:
            return rejected
        return web.json_response({"value": [{"subscriptionId": SUBSCRIPTION_ID, "state": "Enabled"}]})

    async def _resource_groups(self, request: web.Request) -> web.Response:
        rejected = self._reject(request)
        if rejected is not None:
            return rejected
        subscription = request.match_info["subscription"]
        return web.json_response({"value": [self._group(subscription, name) for name in self.resource_groups]})

    async def _resource_group(self, request: web.Request) -> web.Response:
        rejected = self._reject(request)
        if rejected is not None:
            return rejected
        name = request.match_info["name"]
        if name not in self.resource_groups:
            return web.json_response({"error": {"code": "ResourceGroupNotFound", "message": name}}, status=404)
        return web.json_response(self._group(request.match_info["subscription"], name))
