"""A throttled token endpoint over loopback HTTPS: its 429 with ``Retry-After: 7``, and the back-off it sets.

azure-identity's credentials do not raise while their cached token is valid: a refresh they
only recommend swallows the error (``GetTokenMixin._get_token_base``), so the policy sees "no
newer token" and backs off ``retry_delay``. A credential that does raise, with azure-core's
``HttpResponseError`` carrying the response, is written here on azure-core's real pipeline.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import time_machine
from azure.core import AsyncPipelineClient
from azure.core.credentials import AccessTokenInfo, TokenRequestOptions
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from bgrefresh_policy import RefreshEvent, RefreshOutcome
from tests.emulator.entra import Fault
from tests.emulator.server import CLIENT_ID, CLIENT_SECRET, TENANT_ID, Emulator
from tests.integration.conftest import arm_client, background_policy

pytestmark = pytest.mark.integration


class TokenEndpointCredential:
    """Asks the token endpoint on every call, through azure-core, and raises its errors as azure-core does."""

    def __init__(self, emulator: Emulator) -> None:
        self._url = f"{emulator.authority}/{TENANT_ID}/oauth2/v2.0/token"
        self._client: AsyncPipelineClient[Any, Any] = AsyncPipelineClient(
            emulator.authority, connection_verify=emulator.ca_path, retry_total=0
        )

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        request = HttpRequest("POST", self._url, data={**form, "scope": " ".join(scopes)})
        response = await self._client.send_request(request)
        if response.status_code != 200:
            raise HttpResponseError(message="token request refused", response=response)
        body = response.json()
        return AccessTokenInfo(body["access_token"], int(time.time() + body["expires_in"]))

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> TokenEndpointCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def test_a_throttled_endpoint_gets_one_attempt_per_retry_after(
    emulator: Emulator, wall_clock: time_machine.Traveller, caplog: pytest.LogCaptureFixture
) -> None:
    wall_clock.move_to(time.time(), tick=False)  # the policy's time moves only with the test
    events: list[RefreshEvent] = []
    async with (
        TokenEndpointCredential(emulator) as credential,
        background_policy(credential, retry_delay=1, on_refresh=events.append) as policy,
        arm_client(emulator, credential, policy, retry_total=0) as client,
    ):
        await client.resource_groups.get("rg-alpha")
        wall_clock.shift(emulator.tokens.lifetime - 239)  # due, 239 s left
        emulator.tokens.fault, emulator.tokens.retry_after = Fault.THROTTLED, 7
        before = emulator.tokens.requests
        attempts = []
        for _ in range(15):  # a request every second, none failing
            assert (await client.resource_groups.get("rg-alpha")).name == "rg-alpha"
            await policy.wait_for_refreshes()
            attempts.append(emulator.tokens.requests - before)
            wall_clock.shift(1)
    assert attempts == [1] * 7 + [2] * 7 + [3]  # at 0, 7 and 14 s: not every retry_delay (1 s)
    throttled = [event for event in events if event.outcome is RefreshOutcome.FAILED]
    assert len(throttled) == 3
    assert all(event.next_attempt_at == pytest.approx(event.ended_at + 7) for event in throttled)
    assert "next attempt in 7 s" in caplog.text
