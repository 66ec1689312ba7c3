"""Microsoft Entra ID's two endpoints a client-secret credential calls, answered in memory.

azure-identity's ``ClientSecretCredential`` (sync and ``aio``) takes a ``transport``: given one
of these, it reads the tenant's OpenID configuration and asks for a token as it would from
``login.microsoftonline.com``, and then serves its later calls from MSAL's own token cache, which
is what the benchmark compares with. No socket and no TLS: only the credential's own work is timed.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline.transport import AsyncHttpResponse, HttpResponse
from azure.core.utils import case_insensitive_dict

from .harness import TOKEN, NoopTransport
from .sync_scenarios import SyncNoopTransport

__all__ = ["AUTHORITY", "CLIENT_ID", "TENANT_ID", "AsyncEntraTransport", "EntraTransport", "identity_kwargs"]

AUTHORITY = "login.bench.invalid"
TENANT_ID = "72f988bf-0000-4000-8000-00000000beef"
CLIENT_ID = "0c0ffee0-0000-4000-8000-00000000cafe"


def _answer(url: str) -> dict[str, Any]:
    """The body Entra ID gives for ``url``: the OpenID configuration, or a token valid an hour."""
    path = urlsplit(url).path
    if path.endswith("/openid-configuration"):
        root = f"https://{AUTHORITY}/{TENANT_ID}"
        return {
            "issuer": f"{root}/v2.0",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "tenant_region_scope": None,
        }
    return {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": TOKEN}


class _Json:
    """200 with a JSON body; mixed into azure-core's sync and async response types."""

    def __init__(self, request: Any) -> None:
        super().__init__(request, None)  # type: ignore[call-arg]
        self._body = json.dumps(_answer(request.url)).encode()
        self.status_code = 200
        self.headers = case_insensitive_dict({"Content-Type": "application/json"})
        self.reason: str | None = "OK"
        self.content_type: str | None = "application/json"

    def body(self) -> bytes:
        return self._body


class _SyncJson(_Json, HttpResponse):
    pass


class _AsyncJson(_Json, AsyncHttpResponse):
    pass


class EntraTransport(SyncNoopTransport):
    """Answers a sync credential's requests."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        return _SyncJson(request)


class AsyncEntraTransport(NoopTransport):
    """Answers an async credential's requests."""

    async def send(self, request: Any, **kwargs: Any) -> Any:
        return _AsyncJson(request)


def identity_kwargs(transport: Any) -> dict[str, Any]:
    """What ``ClientSecretCredential`` (sync or aio) takes besides its ids and secret, for ``transport``."""
    return {"authority": AUTHORITY, "disable_instance_discovery": True, "transport": transport}
