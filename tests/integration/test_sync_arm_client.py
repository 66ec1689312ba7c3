"""The sync policy inside the real sync ResourceManagementClient, over the requests transport, on loopback.

Real azure-identity sync credentials get their tokens from the emulator's Entra ID; many
threads share one client, as a sync web app's worker threads do.
"""

from __future__ import annotations

import json
import logging
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
from tests.support import HANG_GUARD, Threads, assert_nothing_secret, eventually, in_threads

pytestmark = pytest.mark.integration

CLAIMS = json.dumps({"access_token": {"nbf": {"essential": True, "value": "1732000000"}}})


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with EmulatorThread(tmp_path) as emulator:
        try:
            yield emulator
        finally:
            emulator.tokens.release()  # a token request a failed test left held


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


def get_group(client: ResourceManagementClient) -> None:
    group = client.resource_groups.get("rg-alpha")
    assert group.name == "rg-alpha"


def gets(client: ResourceManagementClient, count: int) -> None:
    for _ in range(count):
        get_group(client)


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
    with (
        BackgroundRefreshTokenPolicy(credential, ARM_SCOPE) as ours,
        sync_arm_client(emulator, credential, ours) as client,
    ):
        get_group(client)  # the first token, inline
        (first,) = emulator.tokens.issued
        before, seen = emulator.tokens.requests, len(emulator.arm.bearer_tokens)
        emulator.tokens.hold()  # the refresh's token request waits until the test releases it
        make_due(wall_clock, emulator)
        # A thread that waited for the held token request would never return.
        in_threads(32, lambda _: gets(client, 5))
        eventually(lambda: emulator.tokens.held == 1)  # the refresh's token request, held at the endpoint
        assert emulator.tokens.requests - before == 1
        assert emulator.arm.bearer_tokens[seen:] == [first] * 160  # all sent while the refresh was held
        emulator.tokens.release()
        assert ours.wait_for_refreshes(HANG_GUARD)
        get_group(client)
        assert emulator.arm.bearer_tokens[-1] == list(emulator.tokens.issued)[-1]  # the refreshed token

    wall_clock.shift(4000)  # every cached token has expired: azure-core's policy starts afresh
    theirs: Any = BearerTokenCredentialPolicy(credential, ARM_SCOPE)
    with sync_arm_client(emulator, credential, theirs) as client:
        get_group(client)
        before, seen = emulator.tokens.requests, len(emulator.arm.bearer_tokens)
        emulator.tokens.hold()
        make_due(wall_clock, emulator)
        threads = Threads(32, lambda _: gets(client, 5))
        # Until the endpoint is released, each thread either has finished or waits on a held token request.
        eventually(lambda: threads.finished + emulator.tokens.held == 32)
        held = emulator.tokens.held
        # azure-core's sync policy has no lock: every thread that finds the token due asks for one
        # (32 of 32 here when measured), and waits for the endpoint.
        assert held > 1
        assert len(emulator.arm.bearer_tokens) - seen == 5 * (32 - held)  # a held thread's request waits
        emulator.tokens.release()
        threads.results()
        token_requests = emulator.tokens.requests - before
    assert token_requests > 1
    assert len(emulator.arm.bearer_tokens) - seen == 160
    assert emulator.arm.unauthorized == 0


def test_one_token_request_per_cycle_under_32_threads(
    emulator: Emulator, credential: ClientSecretCredential, wall_clock: time_machine.Traveller
) -> None:
    with (
        BackgroundRefreshTokenPolicy(credential, ARM_SCOPE) as policy,
        sync_arm_client(emulator, credential, policy) as client,
    ):
        get_group(client)
        for cycle in range(3):
            make_due(wall_clock, emulator)
            before = emulator.tokens.requests
            emulator.tokens.hold()  # all the threads' requests go by while the refresh is under way
            in_threads(32, lambda _: gets(client, 4))
            eventually(lambda: emulator.tokens.held == 1)
            assert emulator.tokens.requests - before == 1, f"cycle {cycle}"
            emulator.tokens.release()
            assert policy.wait_for_refreshes(HANG_GUARD)
            assert emulator.tokens.requests - before == 1, f"cycle {cycle}"
    assert len(emulator.tokens.issued) == 4
    assert emulator.arm.unauthorized == 0


def test_cae_claims_challenge_round_trip(emulator: Emulator, credential: ClientSecretCredential) -> None:
    emulator.arm.demand_claims = CLAIMS
    with (
        BackgroundRefreshTokenPolicy(credential, ARM_SCOPE, enable_cae=True) as policy,
        sync_arm_client(emulator, credential, policy) as client,
    ):
        get_group(client)  # 401 insufficient_claims, then a token with the claims, then 200
        get_group(client)  # the claims token is cached and reused
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
        get_group(client)
        make_due(wall_clock, emulator)
        emulator.tokens.fault = Fault.HTTP_503
        for _ in range(4):  # four back-off periods of outage
            in_threads(8, lambda _: get_group(client))  # raises if any request fails
            assert policy.wait_for_refreshes(10)
            wall_clock.shift(40)
        failed_attempts = emulator.tokens.failed
        emulator.tokens.fault = Fault.NONE
        get_group(client)  # the attempt that succeeds
        assert policy.wait_for_refreshes(10)
        get_group(client)
    assert failed_attempts == 4  # one background attempt per retry_delay, however many threads
    assert len(emulator.tokens.issued) == 2
    assert emulator.arm.unauthorized == 0


def test_nothing_secret_is_logged_printed_or_raised(
    emulator: Emulator, wall_clock: time_machine.Traveller, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, azure-core, azure-identity, msal, urllib3

    def printable(policy: Any) -> list[str]:
        held: list[Any] = [policy, policy._store, policy._runner, *policy._runner.threads]
        for state in policy._store.states().values():
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
        get_group(client)  # inline
        make_due(wall_clock, emulator)
        get_group(client)  # background, succeeds
        assert policy.wait_for_refreshes(10)
        printed += printable(policy)
        make_due(wall_clock, emulator)
        emulator.tokens.fault = Fault.HANG
        get_group(client)  # a background refresh that hangs
        make_due(wall_clock, emulator, left=100)  # below min_validity: waits 0.3 s, gives up, still valid
        get_group(client)
        printed += printable(policy)
        assert policy.wait_for_refreshes(10)  # the credential's 1 s read timeout ends the thread
        wall_clock.shift(3600)  # expired: the inline failure reaches the caller
        with pytest.raises(Exception) as inline_failure:  # noqa: PT011 - whatever the credential raises
            get_group(client)
        printed += [str(inline_failure.value), repr(inline_failure.value), traceback.format_exc()]
        emulator.tokens.fault = Fault.NONE
        get_group(client)
        printed += printable(policy)

    secrets = {CLIENT_SECRET, *emulator.tokens.issued}
    assert len(emulator.tokens.issued) >= 3
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("bgrefresh_policy")]
    assert any("RefreshTimedOut" in message for message in warnings)  # the give-up is logged
    assert_nothing_secret(caplog.records, printed, secrets)
