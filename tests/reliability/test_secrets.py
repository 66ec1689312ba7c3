"""No token or client secret in any log record, repr, str or error message, with everything logging at DEBUG.

Also: a token obtained for one key (scopes, tenant) is never attached to a request for another.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from typing import Any

import pytest
import time_machine
from azure.core.credentials import AccessTokenInfo

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from tests.emulator.arm import ARM_SCOPE
from tests.emulator.entra import Fault
from tests.emulator.server import CLIENT_SECRET, TENANT_ID, Emulator
from tests.integration.conftest import arm_client, background_policy, make_due, secret_credential
from tests.support import assert_nothing_secret, make_request

pytestmark = pytest.mark.integration

VAULT_SCOPE = "https://vault.azure.net/.default"


def _objects_of(policy: Any) -> list[Any]:
    """The policy and everything it holds that a debugger or a log line might print."""
    found: list[Any] = [policy, policy._store, policy._store.options]
    for state in policy._store.states().values():
        found += [state, state.current]
    runner = policy._runners.existing()
    if runner is not None:
        found += [runner, runner.flights, *runner.flights.values()]
        found += [flight.verdict for flight in runner.flights.values()]
    return found


async def test_nothing_secret_is_logged_printed_or_raised(
    emulator: Emulator, wall_clock: time_machine.Traveller, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, azure-core, azure-identity, msal
    printed: list[str] = []
    events: list[Any] = []
    async with (
        secret_credential(emulator, retry_total=0, read_timeout=1) as credential,
        background_policy(
            credential, min_validity=120, refresh_timeout=0.3, retry_delay=5, on_refresh=events.append
        ) as policy,
        arm_client(emulator, credential, policy) as client,
    ):
        await client.resource_groups.get("rg-alpha")  # inline
        make_due(wall_clock, emulator)
        await client.resource_groups.get("rg-alpha")  # background, succeeds
        await policy.wait_for_refreshes()
        printed += [repr(o) for o in _objects_of(policy)] + [str(o) for o in _objects_of(policy)]
        make_due(wall_clock, emulator)
        emulator.tokens.fault = Fault.HANG  # background refresh times out: WARNING
        await client.resource_groups.get("rg-alpha")
        await policy.wait_for_refreshes()  # it ends at refresh_timeout, however long that takes here
        printed += [repr(o) for o in _objects_of(policy)]
        make_due(wall_clock, emulator, left=100)  # below min_validity: inline, fails, token still valid
        emulator.tokens.fault = Fault.HTTP_500
        wall_clock.shift(6)
        await client.resource_groups.get("rg-alpha")
        wall_clock.shift(3600)  # expired: the inline failure reaches the caller
        with pytest.raises(Exception) as inline_failure:  # noqa: PT011 - whatever the credential raises
            await client.resource_groups.get("rg-alpha")
        printed += [str(inline_failure.value), repr(inline_failure.value), traceback.format_exc()]
        emulator.tokens.fault = Fault.NONE
        emulator.arm.demand_claims = json.dumps({"access_token": {"nbf": {"essential": True, "value": "1"}}})
        await client.resource_groups.get("rg-alpha")  # CAE round trip
        printed += [repr(o) for o in _objects_of(policy)]

    class ReturnsAString:
        async def get_token_info(self, *scopes: str, options: Any = None) -> Any:
            return "a-bare-token-string-from-a-broken-credential"

    broken: Any = AsyncBackgroundRefreshTokenPolicy(ReturnsAString(), ARM_SCOPE)  # type: ignore[arg-type]
    with pytest.raises(TypeError) as type_error:
        await broken.on_request(make_request())
    printed += [str(type_error.value), repr(type_error.value)]

    printed += [repr(event) for event in events] + [repr(policy.token_status())]
    assert len(events) >= 4  # every credential call, each told: what an operator's dashboard would keep
    secrets = {CLIENT_SECRET, "a-bare-token-string-from-a-broken-credential", *emulator.tokens.issued}
    assert len(emulator.tokens.issued) >= 3
    warnings = [r for r in caplog.records if r.name.startswith("bgrefresh_policy") and r.levelno >= logging.WARNING]
    # The timeout is logged. (With a valid token, azure-identity answers a failed refresh with
    # its cached token, so the inline failure with a valid token is not an error here.)
    assert any("refresh_timeout" in r.getMessage() for r in warnings)
    assert_nothing_secret(caplog.records, printed, secrets)


async def test_a_token_assigned_through_the_private_token_attribute_is_never_logged(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, azure-core, azure-identity, msal
    assigned = {"assigned-secret-" + "a" * 40, "assigned-secret-" + "b" * 40}
    first, second = sorted(assigned)
    printed: list[str] = []
    async with (
        secret_credential(emulator, retry_total=0) as credential,
        background_policy(credential) as policy,
        arm_client(emulator, credential, policy) as client,
    ):
        # Due (200 s left): the request carries it and starts a background refresh; ARM answers 401.
        policy._token = AccessTokenInfo(first, int(time.time()) + 200)
        printed += [repr(o) for o in _objects_of(policy)] + [repr(policy._refresh_jitter)]
        with pytest.raises(Exception) as rejected:  # noqa: PT011 - whatever the client makes of the 401
            await client.resource_groups.get("rg-alpha")
        printed += [str(rejected.value), repr(rejected.value), traceback.format_exc()]
        await policy.wait_for_refreshes()
        await client.resource_groups.get("rg-alpha")  # the emulator's token, refreshed
        policy._token = AccessTokenInfo(second, int(time.time()) + 3600)
        printed += [repr(o) for o in _objects_of(policy)] + [repr(policy._need_new_token())]
        policy._token = None
        for _ in range(10):
            await client.resource_groups.get("rg-alpha")
    assert emulator.arm.unauthorized >= 1  # the assigned token reached ARM: the paths ran
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("bgrefresh_policy")]
    assert any("refreshing in the background" in m for m in ours)
    assert_nothing_secret(caplog.records, printed, {*assigned, CLIENT_SECRET, *emulator.tokens.issued})


async def test_a_token_for_one_key_is_never_attached_for_another(emulator: Emulator) -> None:
    async with (
        secret_credential(emulator, additionally_allowed_tenants=["another-tenant"]) as credential,
        background_policy(credential) as policy,
        arm_client(emulator, credential, policy) as client,
    ):

        async def other_keys() -> None:
            for _ in range(10):
                await policy.authorize_request(make_request(), VAULT_SCOPE)
                await policy.authorize_request(make_request(), ARM_SCOPE, tenant_id="another-tenant")
                await asyncio.sleep(0)

        async def arm_requests() -> None:
            for _ in range(30):
                await client.resource_groups.get("rg-alpha")
                await asyncio.sleep(0)

        await asyncio.gather(other_keys(), arm_requests(), arm_requests())
    assert emulator.arm.unauthorized == 0
    for token in emulator.arm.bearer_tokens:
        issued = emulator.tokens.issued[token]
        assert issued.scope.split() == [ARM_SCOPE]
        assert issued.tenant == TENANT_ID
    assert {t.scope for t in emulator.tokens.issued.values()} >= {VAULT_SCOPE, ARM_SCOPE}
    assert {t.tenant for t in emulator.tokens.issued.values()} == {TENANT_ID, "another-tenant"}


def test_cached_token_repr_hides_the_token() -> None:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(_Credential(), ARM_SCOPE)  # type: ignore[arg-type]
    cached = policy._store.cache(AccessTokenInfo("super-secret-token", 2_000_000_000))
    assert "super-secret-token" not in repr(cached)
    assert "super-secret-token" in repr(cached.token)  # azure-core's own repr shows it: why we wrap it


class _Credential:
    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo("t", 2_000_000_000)
