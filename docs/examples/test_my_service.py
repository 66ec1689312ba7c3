"""Does my service keep answering while its token refreshes? A complete pytest file.

``ReportService`` stands for your application: it takes a credential where it would take
``DefaultAzureCredential()``, wraps it once, and asks for a token on every request, as a
database driver, an AMQP client or an Azure SDK client given the wrapper does. The tests give
it a fake credential from ``bgrefresh_policy.testing`` and show, by order rather than by
timing, that requests go on while a refresh is held open, fails, or hangs.

Run it with ``python -m pytest test_my_service.py`` (pytest, pytest-asyncio and bgrefresh-policy
installed).
"""

from __future__ import annotations

import bgrefresh_policy.aio
import pytest
from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from bgrefresh_policy import BackgroundRefreshCredential
from bgrefresh_policy.testing import DUE, FRESH, AsyncFakeCredential, FakeCredential

SCOPE = "https://vault.azure.net/.default"


class ReportService:
    """The application under test (sync): builds each outgoing call's Authorization header."""

    def __init__(self, credential: TokenCredential) -> None:
        self.credential = BackgroundRefreshCredential(credential)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential.get_token(SCOPE).token}"}

    def ready(self) -> bool:
        statuses = self.credential.token_status()
        return bool(statuses) and all(status.healthy for status in statuses)

    def close(self) -> None:
        self.credential.close()


class AsyncReportService:
    """The same application, async (asyncio here; trio works the same way)."""

    def __init__(self, credential: AsyncTokenCredential) -> None:
        self.credential = bgrefresh_policy.aio.BackgroundRefreshCredential(credential)

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {(await self.credential.get_token(SCOPE)).token}"}

    async def close(self) -> None:
        await self.credential.close()


def test_requests_get_the_due_token_while_its_refresh_is_held_open() -> None:
    credential = FakeCredential(
        lifetime=DUE
    )  # each token is due for refresh as soon as it arrives
    service = ReportService(credential)
    try:
        assert (
            service.headers()["Authorization"] == "Bearer fake-token-1"
        )  # no token yet: this one waited
        credential.hold()  # the token endpoint stops answering
        try:
            for _ in range(
                3
            ):  # each returns while the refresh the first of them started is held open
                assert service.headers()["Authorization"] == "Bearer fake-token-1"
            credential.wait_for_calls(2)  # the one background refresh, however many requests
            credential.issue(lifetime=FRESH)  # what the held refresh will get
        finally:
            credential.release()
        assert service.credential.wait_for_refreshes(timeout=30)
        assert service.headers()["Authorization"] == "Bearer fake-token-2"
        assert credential.call_count == 2
    finally:
        service.close()
    assert credential.closed  # closing the service closed the credential it was given


def test_a_failed_refresh_leaves_requests_alone() -> None:
    credential = FakeCredential(lifetime=DUE)
    service = ReportService(credential)
    try:
        service.headers()
        credential.fail(ClientAuthenticationError("the token endpoint is down"))
        assert (
            service.headers()["Authorization"] == "Bearer fake-token-1"
        )  # and starts a refresh, which fails
        assert service.credential.wait_for_refreshes(timeout=30)
        assert (
            service.headers()["Authorization"] == "Bearer fake-token-1"
        )  # still valid: still used
        assert service.ready()
        assert credential.call_count == 2  # the next attempt waits for retry_delay (30 s)
    finally:
        service.close()


def test_with_no_token_at_all_a_request_gets_the_credentials_error() -> None:
    credential = FakeCredential()
    credential.fail(ClientAuthenticationError("no such tenant"))
    service = ReportService(credential)
    try:
        with pytest.raises(ClientAuthenticationError, match="no such tenant"):
            service.headers()
        assert not service.ready()
        credential.succeed()
        assert (
            service.headers()["Authorization"] == "Bearer fake-token-1"
        )  # the next request asks again
    finally:
        service.close()


@pytest.mark.asyncio
async def test_async_requests_go_on_while_the_refresh_hangs() -> None:
    credential = AsyncFakeCredential(lifetime=DUE)
    service = AsyncReportService(credential)
    try:
        await service.headers()
        credential.hang()  # the refresh never answers: closing the service cancels it
        for _ in range(3):
            assert (await service.headers())["Authorization"] == "Bearer fake-token-1"
        await credential.wait_for_calls(2)
    finally:
        await service.close()
    assert credential.cancelled == 1
