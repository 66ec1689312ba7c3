"""The sync policy inside the real sync ResourceManagementClient, over the requests transport, on loopback.

Real azure-identity sync credentials get their tokens from the emulator's Entra ID; many
threads share one client, as a sync web app's worker threads do.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.identity import ClientSecretCredential
from azure.mgmt.resource.resources import ResourceManagementClient

from bgrefresh_policy import BackgroundRefreshTokenPolicy
from tests.emulator.arm import SUBSCRIPTION_ID
from tests.emulator.entra import Fault
from tests.emulator.server import CLIENT_ID, CLIENT_SECRET, TENANT_ID, Emulator
from tests.emulator.threaded import EmulatorThread
from tests.integration.conftest import ARM_SCOPE, identity_options, make_due
from tests.support import assert_nothing_secret, in_threads

pytestmark = pytest.mark.integration

CLAIMS = json.dumps({"access_token": {"nbf": {"essential": True, "value": "1732000000"}}})


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with EmulatorThread(tmp_path) as emulator:
        yield emulator


@pytest.fixture
def credential(emulator: Emulator) -> Iterator[ClientSecretCredential]:
    with sync_credential(emulator) as credential:
        yield credential


def sync_credential(emulator: Emulator, **kwargs: Any) -> ClientSecretCredential:
    """azure-identity's real sync ClientSecretCredential, its authority pointed at the emulator."""
    return ClientSecretCredential(TENANT_ID, CLIENT_ID, CLIENT_SECRET, **identity_options(emulator, **kwargs))


def sync_arm_client(emulator: Emulator, credential: Any, policy: Any) -> ResourceManagementClient:
    """The real sync ResourceManagementClient (requests transport) on the emulator's ARM."""
    return ResourceManagementClient(
        credential,
        SUBSCRIPTION_ID,
        base_url=emulator.url,
        authentication_policy=policy,
        connection_verify=emulator.ca_path,
        retry_total=0,
    )


def timed_get(client: ResourceManagementClient) -> float:
    start = time.perf_counter()
    group = client.resource_groups.get("rg-alpha")
    assert group.name == "rg-alpha"
    return time.perf_counter() - start


def test_resource_groups_through_the_sync_policy(emulator: Emulator, credential: ClientSecretCredential) -> None:
    with (
        BackgroundRefreshTokenPolicy(credential, ARM_SCOPE) as policy,
        sync_arm_client(emulator, credential, policy) as client,
    ):
        assert type(client._client._pipeline._transport).__name__ == "RequestsTransport"
        names = [group.name for group in client.resource_groups.list()]
    assert names == ["rg-alpha", "rg-beta"]
    assert emulator.tokens.requests == 1
    assert emulator.arm.unauthorized == 0


def test_threads_keep_flowing_across_a_refresh_while_azure_cores_policy_blocks_them(
    emulator: Emulator, credential: ClientSecretCredential, wall_clock: time_machine.Traveller
) -> None:
    def burst(policy: Any) -> tuple[list[float], int]:
        with sync_arm_client(emulator, credential, policy) as client:
            timed_get(client)  # the first token, inline
            emulator.tokens.latency = 1.0  # the refresh takes a second
            before = emulator.tokens.requests
            make_due(wall_clock, emulator)
            latencies = in_threads(32, lambda _: max(timed_get(client) for _ in range(5)), timeout=60)
            emulator.tokens.latency = 0.0
            return latencies, emulator.tokens.requests - before

    with BackgroundRefreshTokenPolicy(credential, ARM_SCOPE) as ours:
        latencies, token_requests = burst(ours)
        assert ours.wait_for_refreshes(10)
    # A request that waited for the token endpoint would have taken at least its 1 s latency.
    assert max(latencies) < 0.9, f"slowest request {max(latencies):.3f} s"
    assert token_requests == 1

    wall_clock.shift(4000)  # every cached token has expired: azure-core's policy starts afresh
    theirs: Any = BearerTokenCredentialPolicy(credential, ARM_SCOPE)
    latencies, token_requests = burst(theirs)
    assert max(latencies) >= 1.0  # the threads that found the token due waited for the endpoint
    # azure-core's sync policy has no lock: every thread that finds the token due asks for one
    # (32 of 32 here when measured).
    assert token_requests > 1
    assert emulator.arm.unauthorized == 0


def test_one_token_request_per_cycle_under_32_threads(
    emulator: Emulator, credential: ClientSecretCredential, wall_clock: time_machine.Traveller
) -> None:
    emulator.tokens.latency = 0.2
    with (
        BackgroundRefreshTokenPolicy(credential, ARM_SCOPE) as policy,
        sync_arm_client(emulator, credential, policy) as client,
    ):
        timed_get(client)
        for cycle in range(3):
            make_due(wall_clock, emulator)
            before = emulator.tokens.requests
            in_threads(32, lambda _: [timed_get(client) for _ in range(4)], timeout=60)
            assert policy.wait_for_refreshes(10)
            assert emulator.tokens.requests - before == 1, f"cycle {cycle}"
    assert len(emulator.tokens.issued) == 4
    assert emulator.arm.unauthorized == 0


def test_cae_claims_challenge_round_trip(emulator: Emulator, credential: ClientSecretCredential) -> None:
    emulator.arm.demand_claims = CLAIMS
    with (
        BackgroundRefreshTokenPolicy(credential, ARM_SCOPE, enable_cae=True) as policy,
        sync_arm_client(emulator, credential, policy) as client,
    ):
        timed_get(client)  # 401 insufficient_claims, then a token with the claims, then 200
        timed_get(client)  # the claims token is cached and reused
    assert emulator.arm.unauthorized == 1
    assert emulator.tokens.requests == 2
    requested_claims = [json.loads(t.claims) if t.claims else {} for t in emulator.tokens.issued.values()]
    assert requested_claims[1]["access_token"]["xms_cc"] == {"values": ["CP1"]}  # enable_cae reached MSAL


def test_token_endpoint_outage_in_the_background_window_then_recovery(
    emulator: Emulator, wall_clock: time_machine.Traveller
) -> None:
    with (
        sync_credential(emulator, retry_total=0) as credential,
        BackgroundRefreshTokenPolicy(credential, ARM_SCOPE, retry_delay=40) as policy,
        sync_arm_client(emulator, credential, policy) as client,
    ):
        timed_get(client)
        make_due(wall_clock, emulator)
        emulator.tokens.fault = Fault.HTTP_503
        for _ in range(4):  # four back-off periods of outage
            in_threads(8, lambda _: timed_get(client))  # raises if any request fails
            assert policy.wait_for_refreshes(10)
            wall_clock.shift(40)
        failed_attempts = emulator.tokens.failed
        emulator.tokens.fault = Fault.NONE
        timed_get(client)  # the attempt that succeeds
        assert policy.wait_for_refreshes(10)
        timed_get(client)
    assert failed_attempts == 4  # one background attempt per retry_delay, however many threads
    assert len(emulator.tokens.issued) == 2
    assert emulator.arm.unauthorized == 0


def test_nothing_secret_is_logged_printed_or_raised(
    emulator: Emulator, wall_clock: time_machine.Traveller, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, azure-core, azure-identity, msal, urllib3

    def printable(policy: Any) -> list[str]:
        held: list[Any] = [policy, policy._store, policy._runner, *policy._runner.threads]
        for state in policy._store._states.values():
            held += [state, state.current]
        for flight in policy._runner.flights.values():
            held += [flight, flight.verdict]
        return [repr(o) for o in held] + [str(o) for o in held]

    printed: list[str] = []
    with (
        sync_credential(emulator, retry_total=0, read_timeout=1) as credential,
        BackgroundRefreshTokenPolicy(
            credential, ARM_SCOPE, min_validity=120, refresh_timeout=0.3, retry_delay=5
        ) as policy,
        sync_arm_client(emulator, credential, policy) as client,
    ):
        timed_get(client)  # inline
        make_due(wall_clock, emulator)
        timed_get(client)  # background, succeeds
        assert policy.wait_for_refreshes(10)
        printed += printable(policy)
        make_due(wall_clock, emulator)
        emulator.tokens.fault = Fault.HANG
        timed_get(client)  # a background refresh that hangs
        make_due(wall_clock, emulator, left=100)  # below min_validity: waits 0.3 s, gives up, still valid
        timed_get(client)
        printed += printable(policy)
        assert policy.wait_for_refreshes(10)  # the credential's 1 s read timeout ends the thread
        wall_clock.shift(3600)  # expired: the inline failure reaches the caller
        with pytest.raises(Exception) as inline_failure:  # noqa: PT011 - whatever the credential raises
            timed_get(client)
        printed += [str(inline_failure.value), repr(inline_failure.value), traceback.format_exc()]
        emulator.tokens.fault = Fault.NONE
        timed_get(client)
        printed += printable(policy)

    secrets = {CLIENT_SECRET, *emulator.tokens.issued}
    assert len(emulator.tokens.issued) >= 3
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("bgrefresh_policy")]
    assert any("RefreshTimedOut" in message for message in warnings)  # the give-up is logged
    assert_nothing_secret(caplog.records, printed, secrets)
