"""What the reach tests of ``BackgroundRefreshCredential`` share: the new clients, the two facts, the tokens seen.

``SDK_FAMILIES`` are the clients beyond the twelve families (``families.py``), in the same
shape: Cosmos DB, Container Registry, AI Inference, Monitor ingestion, Communication Identity and
Service Bus administration, async and sync, against ``tests.emulator.services``.

:func:`shows_reach` (and :func:`shows_reach_sync`) drive any consumer of a credential through
the two facts every row must show, on one wrapper over an :class:`Issuer`: the consumers' first
calls make one call of the wrapped credential per key; once the token is due, every consumer's
call completes with the still-valid token while the one refresh is held open at the Issuer's
gate, and after the gate opens the new token is what arrives.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest
import time_machine
from azure.ai.inference import ChatCompletionsClient
from azure.ai.inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient
from azure.ai.inference.models import UserMessage
from azure.communication.identity import CommunicationIdentityClient
from azure.communication.identity.aio import CommunicationIdentityClient as AsyncCommunicationIdentityClient
from azure.containerregistry import ContainerRegistryClient
from azure.containerregistry.aio import ContainerRegistryClient as AsyncContainerRegistryClient
from azure.core.credentials import AccessTokenInfo
from azure.cosmos import CosmosClient
from azure.cosmos.aio import CosmosClient as AsyncCosmosClient
from azure.monitor.ingestion import LogsIngestionClient
from azure.monitor.ingestion.aio import LogsIngestionClient as AsyncLogsIngestionClient
from azure.servicebus.aio.management import ServiceBusAdministrationClient as AsyncServiceBusAdministrationClient
from azure.servicebus.management import ServiceBusAdministrationClient

from tests.emulator.sdk_services import QUEUE, unsigned_jwt
from tests.emulator.services import Services
from tests.integration.families import Family
from tests.integration.test_client_families import DUE, Asked, Issuer, SyncIssuer, _Issuing
from tests.support import HANG_GUARD, eventually, refresh_begins

__all__ = [
    "SDK_FAMILIES",
    "JwtIssuer",
    "Reach",
    "SyncJwtIssuer",
    "claims_of",
    "presented",
    "shows_reach",
    "shows_reach_sync",
    "token_number",
]

ACR_AUDIENCE = "https://containerregistry.azure.net"


# --- the two facts ---------------------------------------------------------------------------


@dataclass
class Reach:
    """Consumers of one wrapper, and what reached the other side of each.

    :ivar calls: one call per consumer; each returns its result (a coroutine, for async ones).
    :ivar expected: what every call returns, or None when a call returns a token (not compared).
    :ivar presented: the token values the other side received since the last ``forget()``.
    :ivar forget: drops what was received so far.
    :ivar tenant: the tenant of the token the calls end up with; None for the home tenant.
    """

    calls: Sequence[Callable[[], Any]]
    expected: object
    presented: Callable[[], set[str]]
    forget: Callable[[], None]
    tenant: str | None = None

    def check(self, result: object) -> None:
        if self.expected is not None:
            assert result == self.expected


def _issued(asked: Sequence[Asked]) -> list[str]:
    """The values of the tokens the Issuer gave for these calls, in order."""
    return [f"token-{number}@{call.tenant_id or 'home'}" for number, call in enumerate(asked, 1)]


def _newest(inner: _Issuing, tenant: str | None) -> str:
    """The token the Issuer gave last for ``tenant``'s key."""
    return [token for token, call in zip(_issued(inner.asked), inner.asked, strict=True) if call.tenant_id == tenant][
        -1
    ]


def one_call_per_key(inner: _Issuing, wrapper: Any) -> int:
    """The consumers' first calls called the wrapped credential once for each key the wrapper holds."""
    issued = len(inner.asked)
    assert issued == len(wrapper.token_status()), (inner.asked, wrapper.token_status())
    return issued


def held_open(reach: Reach, inner: _Issuing, issued: int, before: str) -> None:
    """Every consumer's call has completed, and the refreshes they started are still held open:
    one per key (Storage's consumers, with a child client, refresh their home-tenant key too),
    and the consumers sent the still-valid tokens, ``before`` among them."""
    started = [(call.scopes, call.tenant_id, call.enable_cae) for call in inner.asked[issued:]]
    assert started, "no refresh started"
    assert len(set(started)) == len(started), started  # one refresh per key, however many consumers
    assert inner.finished == issued  # none has returned yet
    seen = reach.presented()
    assert before in seen
    assert seen <= set(_issued(inner.asked[:issued])), seen


def refreshed(reach: Reach, inner: _Issuing, asked: int, before: str) -> None:
    """After the refreshes: the consumers send the new token, and asked for no more."""
    after = _newest(inner, reach.tenant)
    assert after != before
    assert after in reach.presented()
    assert len(inner.asked) == asked


async def shows_reach(reach: Reach, inner: Issuer, wrapper: Any, wall_clock: time_machine.Traveller) -> None:
    """The two facts, for async consumers of ``wrapper`` (which wraps ``inner``)."""
    for call in reach.calls:
        reach.check(await call())
    issued = one_call_per_key(inner, wrapper)
    before = _newest(inner, reach.tenant)
    wall_clock.shift(DUE)
    inner.gate = asyncio.Event()
    reach.forget()
    for call in reach.calls:
        reach.check(await asyncio.wait_for(call(), HANG_GUARD))
    await refresh_begins()
    held_open(reach, inner, issued, before)
    inner.gate.set()
    await wrapper.wait_for_refreshes()
    asked = len(inner.asked)
    reach.forget()
    for call in reach.calls:
        reach.check(await call())
    refreshed(reach, inner, asked, before)


def shows_reach_sync(reach: Reach, inner: SyncIssuer, wrapper: Any, wall_clock: time_machine.Traveller) -> None:
    """The two facts, for sync consumers of ``wrapper`` (which wraps ``inner``)."""
    for call in reach.calls:
        reach.check(call())
    issued = one_call_per_key(inner, wrapper)
    before = _newest(inner, reach.tenant)
    wall_clock.shift(DUE)
    gate = inner.gate = threading.Event()
    reach.forget()
    try:
        for call in reach.calls:
            reach.check(call())  # returns while the refresh it started is held open
        eventually(lambda: len(inner.asked) > issued)
        held_open(reach, inner, issued, before)
    finally:
        gate.set()
    assert wrapper.wait_for_refreshes(HANG_GUARD)
    asked = len(inner.asked)
    reach.forget()
    for call in reach.calls:
        reach.check(call())
    refreshed(reach, inner, asked, before)


# --- the tokens that reached a service --------------------------------------------------------


def presented(services: Services) -> set[str]:
    """The Entra ID tokens the services received since the last ``forget()``, however each carries it:
    a bearer header, Cosmos DB's ``type=aad&ver=1.0&sig=...``, Container Registry's token exchange."""
    tokens = set(services.exchanged)
    for header in services.authorizations:
        if header is None or header.startswith("Bearer acr-access-"):
            continue  # no token, or Container Registry's own token
        if header.startswith("type=aad"):
            tokens.add(parse_qs(unquote(header))["sig"][0])
        else:
            tokens.add(header.removeprefix("Bearer "))
    return tokens


# --- consumers that read a token's claims -------------------------------------------------------

USER = "app@contoso.example"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def token_number(token: str) -> str:
    """What an Issuer's JWT stands for: ``token-N@<tenant>``, its ``jti``."""
    return str(claims_of(token)["jti"])


class _Jwt(_Issuing):
    def _issue(self, number: int) -> AccessTokenInfo:
        info = super()._issue(number)
        claims = {"jti": info.token, "upn": USER, "oid": "oid-1", "exp": info.expires_on, "iat": info.expires_on - 3600}
        return AccessTokenInfo(unsigned_jwt(claims), info.expires_on)


@dataclass
class JwtIssuer(_Jwt, Issuer):
    """An :class:`Issuer` whose tokens are unsigned JWTs, for consumers that read the user or the expiry from them."""


@dataclass
class SyncJwtIssuer(_Jwt, SyncIssuer):
    """A :class:`SyncIssuer` whose tokens are unsigned JWTs."""


# --- the clients beyond the twelve families -----------------------------------------------------


def _tls(services: Services) -> dict[str, Any]:
    return {"connection_verify": services.ca_path}


def _namespace(services: Services) -> str:
    return services.url.removeprefix("https://")  # the administration client adds the scheme


async def _all(items: Any) -> list[Any]:
    return [item async for item in items]


async def _chat(client: Any) -> object:
    return (await client.complete(messages=[UserMessage("hello")])).choices[0].message.content


async def _read_database(client: Any) -> object:
    return (await client.get_database_client("db").read())["id"]


async def _queue_name(client: Any) -> object:
    return (await client.get_queue(QUEUE)).name


async def _user_id(client: Any) -> object:
    return (await client.create_user()).properties["id"]


SDK_FAMILIES = [
    pytest.param(
        Family(
            lambda s, c: AsyncCosmosClient(s.url, credential=c, **_tls(s)),
            lambda s, c: CosmosClient(s.url, credential=c, **_tls(s)),
            _read_database,
            lambda client: client.get_database_client("db").read()["id"],
            "db",
        ),
        id="cosmos",
        # Cosmos DB turns TLS verification off for 127.0.0.1, its emulator's address
        # (azure/cosmos/_synchronized_request.py, is_ssl_enabled): still HTTPS, and urllib3 says so.
        marks=pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
    ),
    pytest.param(
        Family(
            lambda s, c: AsyncContainerRegistryClient(s.url, c, audience=ACR_AUDIENCE, **_tls(s)),
            lambda s, c: ContainerRegistryClient(s.url, c, audience=ACR_AUDIENCE, **_tls(s)),
            lambda client: _all(client.list_repository_names()),
            lambda client: list(client.list_repository_names()),
            ["hello-world"],
        ),
        id="containerregistry",
    ),
    pytest.param(
        Family(
            lambda s, c: AsyncChatCompletionsClient(s.url, c, **_tls(s)),
            lambda s, c: ChatCompletionsClient(s.url, c, **_tls(s)),
            _chat,
            lambda client: client.complete(messages=[UserMessage("hello")]).choices[0].message.content,
            "hi",
        ),
        id="ai-inference",
    ),
    pytest.param(
        Family(
            lambda s, c: AsyncLogsIngestionClient(s.url, c, **_tls(s)),
            lambda s, c: LogsIngestionClient(s.url, c, **_tls(s)),
            lambda client: client.upload("dcr-1", "Custom-Rows", [{"x": 1}]),
            lambda client: client.upload("dcr-1", "Custom-Rows", [{"x": 1}]),
            None,  # upload returns nothing: the request that reached the service is the evidence
        ),
        id="monitor-ingestion",
    ),
    pytest.param(
        Family(
            lambda s, c: AsyncCommunicationIdentityClient(s.url, c, **_tls(s)),
            # The sync client is no context manager.
            lambda s, c: contextlib.nullcontext(CommunicationIdentityClient(s.url, c, **_tls(s))),
            _user_id,
            lambda client: client.create_user().properties["id"],
            "8:acs:user-1",
        ),
        id="communication-identity",
    ),
    pytest.param(
        Family(
            lambda s, c: AsyncServiceBusAdministrationClient(_namespace(s), c, **_tls(s)),
            lambda s, c: ServiceBusAdministrationClient(_namespace(s), c, **_tls(s)),
            _queue_name,
            lambda client: client.get_queue(QUEUE).name,
            QUEUE,
        ),
        id="servicebus-administration",
    ),
]
