"""``enable_background_refresh`` on the real async and sync clients of twelve Azure SDK families.

Every client is the real SDK client, talking HTTPS to a loopback emulator of its service
(``tests.emulator.services``) that records each request's ``Authorization`` header and plays the
family's own challenge. The credential is user-written: it issues ``token-N@<tenant>``, valid an
hour, and can hold a call open until the test releases it. Time moves with time-machine.

Per family, async and sync:
- a due token is attached while one background refresh runs: the call returns while the test
  still holds the credential call open;
- the family's challenge still works: Key Vault's tenant, and Storage's and Tables', reach the
  credential, for the first token and for the background refresh;
- ten clients on one credential make one token request per refresh cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import time_machine
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

from bgrefresh_policy import enable_background_refresh
from bgrefresh_policy._enable import bearer_policies
from tests.emulator.services import STORAGE_TENANT, VAULT_TENANT, Services
from tests.integration.families import FAMILIES, Family
from tests.support import HANG_GUARD, eventually

pytestmark = pytest.mark.integration

DUE = 3400  # seconds after a token was issued: 200 s left, inside azure-core's 300 s refresh window


@dataclass
class Asked:
    scopes: tuple[str, ...]
    tenant_id: str | None
    enable_cae: bool


@dataclass
class _Issuing:
    """What both credentials record and issue: ``token-N@<tenant>``, valid an hour from now."""

    asked: list[Asked] = field(default_factory=list)
    finished: int = 0

    def _ask(self, scopes: tuple[str, ...], options: TokenRequestOptions | dict[str, Any]) -> int:
        self.asked.append(Asked(scopes, options.get("tenant_id"), bool(options.get("enable_cae"))))
        return len(self.asked)

    def _issue(self, number: int) -> AccessTokenInfo:
        self.finished += 1
        tenant = self.asked[number - 1].tenant_id or "home"
        return AccessTokenInfo(f"token-{number}@{tenant}", int(time.time()) + 3600)


@dataclass
class Issuer(_Issuing):
    gate: asyncio.Event | None = None

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        number = self._ask(scopes, options or {})
        if self.gate is not None:
            await self.gate.wait()
        return self._issue(number)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # how Storage tells a token credential
        info = await self.get_token_info(*scopes, options=kwargs)  # type: ignore[arg-type]
        return AccessToken(info.token, info.expires_on)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> Issuer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        pass


@dataclass
class SyncIssuer(_Issuing):
    gate: threading.Event | None = None

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        number = self._ask(scopes, options or {})
        if self.gate is not None:
            self.gate.wait(HANG_GUARD)
        return self._issue(number)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        info = self.get_token_info(*scopes, options=kwargs)  # type: ignore[arg-type]
        return AccessToken(info.token, info.expires_on)

    def close(self) -> None:
        pass


def bearers(services: Services) -> set[str]:
    """The tokens the services received since the last ``forget()``."""
    return {header for header in services.authorizations if header is not None}


def expect_tenant(credential: _Issuing, family: Family) -> None:
    """Every token was asked for the tenant the family's challenge names (the home tenant first, for Storage)."""
    tenants = [asked.tenant_id for asked in credential.asked]
    if family.tenant is not None and family.tenant != tenants[0]:
        tenants = tenants[1:]  # Storage and Tables: a first token for the home tenant, refused with a challenge
    assert set(tenants) == {family.tenant}, tenants
    if family.tenant == VAULT_TENANT:  # Key Vault's policy asks for CAE tokens, and still does
        assert all(asked.enable_cae for asked in credential.asked)


def discovery_calls(family: Family) -> int:
    """Token requests before the first call succeeds: Storage and Tables refuse a home-tenant token first."""
    return 2 if family.tenant == STORAGE_TENANT else 1


# --- async -------------------------------------------------------------------------------


async def wait_for_refreshes(client: Any) -> None:
    for policy in bearer_policies(client):
        await policy.wait_for_refreshes()


@pytest.mark.parametrize("family", FAMILIES)
async def test_a_due_token_is_attached_while_one_background_refresh_runs(
    services: Services, wall_clock: time_machine.Traveller, family: Family
) -> None:
    credential = Issuer()
    async with enable_background_refresh(family.make(services, credential)) as client:
        assert await family.call(client) == family.expected
        issued = len(credential.asked)
        wall_clock.shift(DUE)
        credential.gate = asyncio.Event()
        services.forget()
        assert await asyncio.wait_for(family.call(client), HANG_GUARD) == family.expected
        await asyncio.sleep(0)  # on 3.10 and 3.11 the refresh's first step is on the next loop pass
        assert len(credential.asked) == issued + 1  # one background call, under way ...
        assert credential.finished == issued  # ... and held open while the call above finished
        assert bearers(services) == {f"Bearer token-{issued}@{family.tenant or 'home'}"}
        credential.gate.set()
        await wait_for_refreshes(client)
        services.forget()
        assert await family.call(client) == family.expected
        assert bearers(services) == {f"Bearer token-{issued + 1}@{family.tenant or 'home'}"}
    expect_tenant(credential, family)


@pytest.mark.parametrize("family", FAMILIES)
async def test_ten_clients_on_one_credential_make_one_token_request_per_cycle(
    services: Services, wall_clock: time_machine.Traveller, family: Family
) -> None:
    credential = Issuer()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(family.make(services, credential)) for _ in range(10)]
        for client in clients:
            enable_background_refresh(client)
        per_cycle = []
        for _ in range(3):
            before = len(credential.asked)
            for client in clients:
                assert await family.call(client) == family.expected
            await wait_for_refreshes(clients[0])
            per_cycle.append(len(credential.asked) - before)
            wall_clock.shift(DUE)
    assert per_cycle == [discovery_calls(family), 1, 1]
    expect_tenant(credential, family)


# --- sync --------------------------------------------------------------------------------


def wait_for_refreshes_sync(client: Any) -> None:
    for policy in bearer_policies(client):
        assert policy.wait_for_refreshes(HANG_GUARD)


@pytest.mark.parametrize("family", FAMILIES)
def test_sync_a_due_token_is_attached_while_one_background_refresh_runs(
    sync_services: Services, wall_clock: time_machine.Traveller, family: Family
) -> None:
    credential = SyncIssuer()
    with enable_background_refresh(family.make_sync(sync_services, credential)) as client:
        assert family.call_sync(client) == family.expected
        issued = len(credential.asked)
        wall_clock.shift(DUE)
        gate = credential.gate = threading.Event()
        sync_services.forget()
        try:
            assert family.call_sync(client) == family.expected  # returns with the refresh held open
            eventually(lambda: len(credential.asked) == issued + 1)
            assert credential.finished == issued
            assert bearers(sync_services) == {f"Bearer token-{issued}@{family.tenant or 'home'}"}
        finally:
            gate.set()
        wait_for_refreshes_sync(client)
        sync_services.forget()
        assert family.call_sync(client) == family.expected
        assert bearers(sync_services) == {f"Bearer token-{issued + 1}@{family.tenant or 'home'}"}
    expect_tenant(credential, family)


@pytest.mark.parametrize("family", FAMILIES)
def test_sync_ten_clients_on_one_credential_make_one_token_request_per_cycle(
    sync_services: Services, wall_clock: time_machine.Traveller, family: Family
) -> None:
    credential = SyncIssuer()
    with contextlib.ExitStack() as stack:
        clients = [
            stack.enter_context(enable_background_refresh(family.make_sync(sync_services, credential)))
            for _ in range(10)
        ]
        per_cycle = []
        for _ in range(3):
            before = len(credential.asked)
            for client in clients:
                assert family.call_sync(client) == family.expected
            wait_for_refreshes_sync(clients[0])
            per_cycle.append(len(credential.asked) - before)
            wall_clock.shift(DUE)
    assert per_cycle == [discovery_calls(family), 1, 1]
    expect_tenant(credential, family)
