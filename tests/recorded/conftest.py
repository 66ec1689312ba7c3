"""Where recorded tests send their traffic: replayed from recordings/, or recorded anew.

``BGREFRESH_RECORD`` picks the mode:

- unset: replay ``recordings/*.yaml``; no server runs and nothing leaves the process;
- ``emulator``: record against the loopback Entra ID / ARM emulator;
- ``azure``: record against real Azure with ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``,
  ``AZURE_CLIENT_SECRET`` and ``AZURE_SUBSCRIPTION_ID`` (the subscription needs a resource group).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import time_machine
import vcr

from tests.emulator.arm import SUBSCRIPTION_ID
from tests.emulator.server import CLIENT_ID, CLIENT_SECRET, TENANT_ID, Emulator
from tests.emulator.threaded import EmulatorThread
from tests.recorded.sanitize import ARM_HOST, LOGIN_HOST, Sanitizer

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
MODE = os.environ.get("BGREFRESH_RECORD", "")
if MODE not in ("", "emulator", "azure"):
    raise pytest.UsageError(f"BGREFRESH_RECORD must be unset, 'emulator' or 'azure', not {MODE!r}")


@dataclass
class Target:
    """The endpoints and identity a recorded flow uses, in the current mode."""

    login: str
    arm: str
    tenant_id: str
    client_id: str
    client_secret: str
    subscription_id: str
    transport: dict[str, Any] = field(default_factory=dict)  # e.g. connection_verify
    emulator: Emulator | None = None


def _authorization(r1: Any, r2: Any) -> None:
    """vcrpy matcher: the request carries the same (sanitized) bearer token as the recorded one."""
    assert r1.headers.get("Authorization") == r2.headers.get("Authorization")


def _target(emulator: Emulator | None) -> Target:
    if emulator is not None:
        return Target(
            emulator.authority,
            emulator.url,
            TENANT_ID,
            CLIENT_ID,
            CLIENT_SECRET,
            SUBSCRIPTION_ID,
            {"connection_verify": emulator.ca_path},
            emulator,
        )
    if MODE == "azure":
        return Target(
            "https://login.microsoftonline.com",
            "https://management.azure.com",
            os.environ["AZURE_TENANT_ID"],
            os.environ["AZURE_CLIENT_ID"],
            os.environ["AZURE_CLIENT_SECRET"],
            os.environ["AZURE_SUBSCRIPTION_ID"],
        )
    return Target(f"https://{LOGIN_HOST}", f"https://{ARM_HOST}", TENANT_ID, CLIENT_ID, "REDACTED", SUBSCRIPTION_ID)


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[Target]:
    """The target for async flows; in ``emulator`` mode the emulator runs on the test's loop."""
    if MODE != "emulator":
        yield _target(None)
        return
    emulator = Emulator(tmp_path)
    await emulator.start()
    try:
        yield _target(emulator)
    finally:
        await emulator.stop()


@pytest.fixture
def sync_target(tmp_path: Path) -> Iterator[Target]:
    """The target for sync flows; in ``emulator`` mode the emulator runs on a thread of its own."""
    if MODE != "emulator":
        yield _target(None)
        return
    with EmulatorThread(tmp_path) as emulator:
        yield _target(emulator)


def recorder(target: Target) -> vcr.VCR:
    """A vcrpy recorder for ``target``: replays only (``none``) unless a recording mode is set."""
    live_hosts = {target.login.split("//", 1)[1], target.arm.split("//", 1)[1]}
    replacements = {
        target.tenant_id: TENANT_ID,
        target.client_id: CLIENT_ID,
        target.subscription_id: SUBSCRIPTION_ID,
    }
    sanitizer = Sanitizer(live_hosts, {real: fake for real, fake in replacements.items() if real != fake})
    recording = vcr.VCR(
        cassette_library_dir=str(RECORDINGS),
        record_mode="all" if MODE else "none",
        match_on=["method", "scheme", "host", "port", "path", "query", "authorization"],
        before_record_request=sanitizer.request,
        before_record_response=sanitizer.response,
        decode_compressed_response=True,
    )
    recording.register_matcher("authorization", _authorization)
    return recording


@pytest.fixture
def wall_clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(1_800_000_000.0, tick=True) as traveller:
        yield traveller
