"""The demo's credential: asks the loopback token endpoint on every call, as a cache miss would."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from azure.core.credentials import AccessTokenInfo, TokenRequestOptions

__all__ = ["TokenEndpointCredential"]


class TokenEndpointCredential:
    """An ``AsyncSupportsTokenInfo`` for the demo's token endpoint.

    :param str token_url: the endpoint.
    """

    def __init__(self, token_url: str) -> None:
        self._token_url = token_url
        self._session: aiohttp.ClientSession | None = None
        # The event loop's time at which each call returned a token: when a new token arrived.
        self.arrivals: list[float] = []

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        form = {"grant_type": "client_credentials", "scope": " ".join(scopes)}
        async with self._session.post(self._token_url, data=form) as response:
            response.raise_for_status()
            body: dict[str, Any] = await response.json()
        # Fractional expiry: the demo's compressed lifetimes are shorter than a second's rounding.
        expires_on: Any = time.time() + float(body["expires_in"])
        self.arrivals.append(asyncio.get_running_loop().time())
        return AccessTokenInfo(body["access_token"], expires_on)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> TokenEndpointCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()
