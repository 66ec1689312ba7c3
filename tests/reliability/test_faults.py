"""Fault injection at the token endpoint, in the background window and when a request must wait.

The real ClientSecretCredential (no retries of its own, so each attempt is one token request)
and the real ResourceManagementClient talk to the loopback emulator. Each test adds a row to the
fault table printed at the end of the run (see conftest.py and the documentation's evidence page).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import time_machine
from azure.core.exceptions import AzureError

from tests.emulator.entra import Fault
from tests.emulator.server import Emulator
from tests.integration.conftest import arm_client, background_policy, make_due, secret_credential
from tests.reliability.conftest import FaultRow
from tests.support import HANG_GUARD

pytestmark = pytest.mark.integration

RETRY_DELAY = 30.0
PERIODS = 4  # back-off periods of outage in the background phase


async def _set_fault(emulator: Emulator, fault: Fault) -> None:
    emulator.tokens.fault = fault


async def _refuse(emulator: Emulator) -> None:
    await emulator.token_endpoint_offline()


async def _untrusted(emulator: Emulator) -> None:
    await emulator.token_endpoint_online(trusted_certificate=False)


async def _restore(emulator: Emulator) -> None:
    emulator.tokens.fault = Fault.NONE
    await emulator.token_endpoint_online(trusted_certificate=True)


FAULTS: dict[str, Callable[[Emulator], Awaitable[None]]] = {
    "HTTP 500": lambda e: _set_fault(e, Fault.HTTP_500),
    "HTTP 503": lambda e: _set_fault(e, Fault.HTTP_503),
    "HTTP 429 + Retry-After": lambda e: _set_fault(e, Fault.THROTTLED),
    "hang": lambda e: _set_fault(e, Fault.HANG),
    "malformed JSON": lambda e: _set_fault(e, Fault.MALFORMED_JSON),
    "dropped connection": lambda e: _set_fault(e, Fault.DROP_CONNECTION),
    "connection refused": _refuse,
    "TLS failure": _untrusted,
}


# Python 3.10's asyncio SSL transport warns "unclosed transport" when a connection is cut under
# it (rewritten in 3.11, which does not); these faults cut connections on purpose.
_CUT_CONNECTION_MARKS = (
    [
        pytest.mark.filterwarnings("ignore:unclosed transport:ResourceWarning"),
        pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    ]
    if sys.version_info < (3, 11)
    else []
)
FAULT_CASES = [
    pytest.param(
        name, marks=_CUT_CONNECTION_MARKS if name in ("dropped connection", "connection refused", "TLS failure") else []
    )
    for name in FAULTS
]


def _token_of(emulator: Emulator, policy: Any) -> str:
    assert policy._token is not None
    return str(policy._token.token)


@pytest.mark.parametrize("fault", FAULT_CASES)
async def test_fault_in_the_background_window(
    fault: str, emulator: Emulator, wall_clock: time_machine.Traveller, record_fault_row: Any
) -> None:
    """The token is due but valid: no request fails, one attempt per retry_delay, recovery after it clears."""
    # The wall clock stands still but for the test's shifts: the recovery below is counted in the
    # policy's own time, whatever the real time the requests and refreshes take on this machine.
    wall_clock.move_to(time.time(), tick=False)
    requests = failed = 0
    async with (
        secret_credential(emulator, retry_total=0, read_timeout=2) as credential,
        background_policy(credential, retry_delay=RETRY_DELAY, refresh_timeout=0.5) as policy,
        arm_client(emulator, credential, policy, retry_total=0) as client,
    ):
        await client.resource_groups.get("rg-alpha")
        first_token = _token_of(emulator, policy)
        make_due(wall_clock, emulator)
        before = emulator.tokens.requests
        await FAULTS[fault](emulator)
        for period in range(PERIODS):
            if period:
                wall_clock.shift(RETRY_DELAY)
            for _ in range(25):
                requests += 1
                group = await client.resource_groups.get("rg-alpha")  # raises if the request fails
                assert group.name == "rg-alpha"
            await policy.wait_for_refreshes()
        attempts = emulator.tokens.requests - before
        # Cleared right after a failed attempt: the worst case, a whole retry_delay to wait.
        await _restore(emulator)
        cleared = time.time()
        while _token_of(emulator, policy) == first_token:
            requests += 1
            await client.resource_groups.get("rg-alpha")
            await policy.wait_for_refreshes()
            wall_clock.shift(1)
        recovery = time.time() - cleared
    # A refused or untrusted endpoint never sees the attempt; otherwise one attempt per period.
    unseen = fault in ("connection refused", "TLS failure")
    assert attempts == (0 if unseen else PERIODS)
    assert RETRY_DELAY - 1 <= recovery <= RETRY_DELAY + 2
    record_fault_row(FaultRow(fault, "background", requests, failed, attempts, "", recovery))


@pytest.mark.parametrize("fault", FAULT_CASES)
async def test_fault_when_the_request_must_wait(
    fault: str, emulator: Emulator, wall_clock: time_machine.Traveller, record_fault_row: Any
) -> None:
    """The token has expired: each request fails with the credential's error; the next one after recovery works."""
    requests = failed = 0
    errors: set[str] = set()
    async with (
        secret_credential(emulator, retry_total=0, read_timeout=1) as credential,
        background_policy(credential) as policy,
        arm_client(emulator, credential, policy, retry_total=0) as client,
    ):
        await client.resource_groups.get("rg-alpha")
        wall_clock.shift(3600)  # expired
        before = emulator.tokens.requests
        await FAULTS[fault](emulator)
        for _ in range(3):
            requests += 1
            try:
                await client.resource_groups.get("rg-alpha")
            except AzureError as exc:  # as the credential raised it
                failed += 1
                errors.add(type(exc).__name__)
        attempts = emulator.tokens.requests - before
        await _restore(emulator)
        cleared = time.monotonic()
        requests += 1
        group = await asyncio.wait_for(client.resource_groups.get("rg-alpha"), HANG_GUARD)
        recovery = time.monotonic() - cleared
    assert group.name == "rg-alpha"
    assert failed == 3  # every request that had to wait saw the failure
    unseen = fault in ("connection refused", "TLS failure")
    assert attempts == (0 if unseen else 3)  # one credential call per waiting request, none extra
    record_fault_row(FaultRow(fault, "inline", requests, failed, attempts, ", ".join(sorted(errors)), recovery))
