"""Fixtures: the loopback emulator, real azure-identity credentials and the real ARM client pointed at it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from azure.identity.aio import ClientAssertionCredential, ClientSecretCredential
from azure.mgmt.resource.resources.aio import ResourceManagementClient

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from tests.emulator.arm import SUBSCRIPTION_ID
from tests.emulator.server import CLIENT_ID, CLIENT_SECRET, TENANT_ID, Emulator
from tests.emulator.services import Services
from tests.emulator.threaded import ServicesThread

ARM_SCOPE = "https://management.azure.com/.default"

pytestmark = pytest.mark.integration


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    server = Emulator(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        server.tokens.release()  # a token request a failed test left held
        await server.stop()


def secret_credential(emulator: Emulator, **kwargs: Any) -> ClientSecretCredential:
    """azure-identity's real ClientSecretCredential, its authority pointed at the emulator.

    The emulator's throwaway CA is trusted through the transport (``connection_verify``).
    """
    return ClientSecretCredential(TENANT_ID, CLIENT_ID, CLIENT_SECRET, **identity_options(emulator, **kwargs))


def identity_options(emulator: Emulator, **kwargs: Any) -> dict[str, Any]:
    """What points an azure-identity credential, sync or async, at the emulator's Entra ID."""
    return {
        "authority": emulator.authority,
        "disable_instance_discovery": True,
        "connection_verify": emulator.ca_path,
        **kwargs,
    }


def assertion_credential(emulator: Emulator, **kwargs: Any) -> ClientAssertionCredential:
    """azure-identity's real ClientAssertionCredential (workload identity federation's shape)."""
    return ClientAssertionCredential(
        TENANT_ID, CLIENT_ID, lambda: "emulator-client-assertion-jwt", **identity_options(emulator, **kwargs)
    )


@pytest.fixture
async def credential(emulator: Emulator) -> AsyncIterator[ClientSecretCredential]:
    async with secret_credential(emulator) as cred:
        yield cred


def arm_client(emulator: Emulator, credential: Any, policy: Any, **kwargs: Any) -> ResourceManagementClient:
    """The real async ResourceManagementClient on the emulator's ARM, authorized by ``policy``.

    Keyword arguments go to the client (``retry_total=0`` to see each failure, ``transport=``).
    """
    if "transport" not in kwargs:
        kwargs["connection_verify"] = emulator.ca_path
    return ResourceManagementClient(
        credential, SUBSCRIPTION_ID, base_url=emulator.url, authentication_policy=policy, **kwargs
    )


def background_policy(credential: Any, **options: Any) -> Any:
    return AsyncBackgroundRefreshTokenPolicy(credential, ARM_SCOPE, **options)


@pytest.fixture
def wall_clock() -> Iterator[time_machine.Traveller]:
    """Wall-clock time the test can move forward; the monotonic clock, and so asyncio, is untouched.

    Tokens keep their real lifetime (an hour): jumping ahead makes one due, for this policy,
    azure-core's, azure-identity's and MSAL's caches alike, without the test waiting an hour.
    """
    with time_machine.travel(time.time(), tick=True) as traveller:
        yield traveller


def make_due(wall_clock: time_machine.Traveller, emulator: Emulator, *, left: float = 239) -> None:
    """Jump ahead until the newest token has ``left`` seconds to live: due whatever the 0-60 s jitter."""
    newest = max(token.expires_on for token in emulator.tokens.issued.values())
    wall_clock.shift(newest - time.time() - left)


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    """The loopback services, on the test's event loop, for async clients."""
    server = Services(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def sync_services(tmp_path: Path) -> Iterator[Services]:
    """The loopback services, on an event loop of their own thread, for sync clients."""
    with ServicesThread(tmp_path) as server:
        yield server
