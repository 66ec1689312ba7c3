"""``get_bearer_token_provider`` (sync, and ``bgrefresh_policy.aio``) under the real OpenAI SDK's Azure clients.

``AzureOpenAI`` and ``AsyncAzureOpenAI`` call the provider before every request. The loopback
service answers chat completions over HTTPS (a throwaway CA, trusted through the SDK's own httpx
client) and records the ``Authorization`` header; the credential holds its call open until the
test releases it. Time moves with time-machine.
"""

from __future__ import annotations

import asyncio
import inspect
import ssl
import threading
from typing import Any

import openai
import pytest
import time_machine
from azure.identity.aio import get_bearer_token_provider as identity_async_provider

import bgrefresh_policy
import bgrefresh_policy.aio
from tests.emulator.services import Services
from tests.integration.test_client_families import DUE, Issuer, SyncIssuer, bearers
from tests.support import HANG_GUARD, eventually, loop_until

pytestmark = pytest.mark.integration

SCOPE = "https://cognitiveservices.azure.com/.default"
MESSAGES: Any = [{"role": "user", "content": "hello"}]


def _trust(services: Services) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=services.ca_path)


def _options(services: Services, provider: Any, http_client: type) -> dict[str, Any]:
    return {
        "azure_endpoint": services.url,
        "api_version": "2024-10-21",
        "azure_ad_token_provider": provider,
        "http_client": http_client(verify=_trust(services)),
        "max_retries": 0,
    }


def async_openai(services: Services, provider: Any) -> openai.AsyncAzureOpenAI:
    return openai.AsyncAzureOpenAI(**_options(services, provider, openai.DefaultAsyncHttpxClient))


def sync_openai(services: Services, provider: Any) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(**_options(services, provider, openai.DefaultHttpxClient))


async def chat(client: openai.AsyncAzureOpenAI) -> str | None:
    completion = await client.chat.completions.create(model="gpt", messages=MESSAGES)
    return completion.choices[0].message.content


def test_the_providers_keep_azure_identitys_contract() -> None:
    async_provider = bgrefresh_policy.aio.get_bearer_token_provider(Issuer(), SCOPE)
    sync_provider = bgrefresh_policy.get_bearer_token_provider(SyncIssuer(), SCOPE)
    assert inspect.iscoroutinefunction(async_provider)
    assert isinstance(sync_provider(), str)
    with pytest.raises(TypeError, match="async credential"):
        bgrefresh_policy.get_bearer_token_provider(Issuer(), SCOPE)  # type: ignore[arg-type]


async def test_async_openai_calls_go_on_while_the_provider_refreshes(
    services: Services, wall_clock: time_machine.Traveller
) -> None:
    credential = Issuer()
    async with async_openai(services, bgrefresh_policy.aio.get_bearer_token_provider(credential, SCOPE)) as client:
        assert await chat(client) == "hi"
        wall_clock.shift(DUE)
        credential.gate = asyncio.Event()
        services.forget()
        for _ in range(3):  # each returns while the refresh's token request is held open
            assert await asyncio.wait_for(chat(client), HANG_GUARD) == "hi"
        assert len(credential.asked) == 2
        assert credential.finished == 1
        assert bearers(services) == {"Bearer token-1@home"}
        credential.gate.set()
        await loop_until(lambda: credential.finished == 2)
        services.forget()
        assert await chat(client) == "hi"
        assert bearers(services) == {"Bearer token-2@home"}


async def test_azure_identitys_provider_makes_the_call_wait_for_the_refresh(
    services: Services, wall_clock: time_machine.Traveller
) -> None:
    """The behaviour the library replaces: the same call, through azure-identity's provider, waits."""
    credential = Issuer()
    async with async_openai(services, identity_async_provider(credential, SCOPE)) as client:
        assert await chat(client) == "hi"
        wall_clock.shift(DUE)
        credential.gate = asyncio.Event()
        waiting = asyncio.create_task(chat(client))
        await loop_until(lambda: len(credential.asked) == 2)
        for _ in range(100):
            await asyncio.sleep(0)
        assert not waiting.done()  # held in the credential call, with the token still valid
        credential.gate.set()
        assert await asyncio.wait_for(waiting, HANG_GUARD) == "hi"


def test_sync_openai_calls_go_on_while_the_provider_refreshes(
    sync_services: Services, wall_clock: time_machine.Traveller
) -> None:
    credential = SyncIssuer()
    client = sync_openai(sync_services, bgrefresh_policy.get_bearer_token_provider(credential, SCOPE))
    with client:
        client.chat.completions.create(model="gpt", messages=MESSAGES)
        wall_clock.shift(DUE)
        gate = credential.gate = threading.Event()
        sync_services.forget()
        try:
            for _ in range(3):  # each returns while the refresh's token request is held open
                client.chat.completions.create(model="gpt", messages=MESSAGES)
            eventually(lambda: len(credential.asked) == 2)
            assert credential.finished == 1
            assert bearers(sync_services) == {"Bearer token-1@home"}
        finally:
            gate.set()
        eventually(lambda: credential.finished == 2)
        sync_services.forget()
        client.chat.completions.create(model="gpt", messages=MESSAGES)
        assert bearers(sync_services) == {"Bearer token-2@home"}


async def test_a_provider_and_clients_on_one_credential_share_one_token(
    services: Services, wall_clock: time_machine.Traveller
) -> None:
    from azure.ai.textanalytics.aio import TextAnalyticsClient

    credential = Issuer()
    provider = bgrefresh_policy.aio.get_bearer_token_provider(credential, SCOPE)
    language = bgrefresh_policy.enable_background_refresh(
        TextAnalyticsClient(services.url, credential, connection_verify=services.ca_path)
    )
    async with language, async_openai(services, provider) as client:
        assert await chat(client) == "hi"
        await language.analyze_sentiment(["hello"])
        assert await provider() == "token-1@home"
    assert len(credential.asked) == 1
