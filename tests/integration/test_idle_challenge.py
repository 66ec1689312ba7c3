"""A key a challenge taught (Key Vault's scope and tenant, Storage's tenant) is refreshed while idle.

The first token of such a key comes through authorize_request, before the key becomes the policy's
own: the timer is armed when it does. Real clients over HTTPS on loopback; time moved by the test
(the store's clock and the stopped event-loop clock).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.keyvault.secrets.aio import SecretClient
from azure.storage.blob.aio import BlobServiceClient

from bgrefresh_policy import enable_background_refresh
from bgrefresh_policy._enable import bearer_policies
from bgrefresh_policy._face import LONGEST_IDLE_SLEEP
from tests.emulator.services import STORAGE_TENANT, VAULT_TENANT, Services
from tests.integration.test_client_families import Issuer
from tests.support import FakeClock, LoopClock, refresh_begins

pytestmark = pytest.mark.integration

DUE_AT = 3600 - 300


def _vault(services: Services, credential: Any) -> Any:
    return SecretClient(services.url, credential, verify_challenge_resource=False, connection_verify=services.ca_path)


def _blob(services: Services, credential: Any) -> Any:
    return BlobServiceClient(
        f"{services.url}/devstoreaccount1", credential=credential, connection_verify=services.ca_path
    )


async def _vault_call(client: Any) -> object:
    return (await client.get_secret("db")).value


async def _blob_call(client: Any) -> object:
    return [container.name async for container in client.list_containers()]


@pytest.mark.parametrize(
    ("make", "call", "tenant"),
    [(_vault, _vault_call, VAULT_TENANT), (_blob, _blob_call, STORAGE_TENANT)],
    ids=["keyvault", "blob"],
)
async def test_a_key_taught_by_a_challenge_is_refreshed_while_idle(
    services: Services, monkeypatch: pytest.MonkeyPatch, make: Any, call: Any, tenant: str
) -> None:
    credential = Issuer()
    client = enable_background_refresh(make(services, credential), refresh_when_idle=True)
    (policy,) = bearer_policies(client)
    clock = FakeClock(time.time())  # the Issuer's tokens expire an hour from the real now
    policy._store.clock = clock
    policy._store.draw_jitter = lambda: 0
    loop_clock = LoopClock(monkeypatch)
    async with client:
        assert await call(client)
        asked = len(credential.asked)
        assert credential.asked[-1].tenant_id == tenant  # the key the challenge taught
        clock.advance(DUE_AT + 1)  # due; no request comes
        await loop_clock.advance(LONGEST_IDLE_SLEEP)
        await refresh_begins()
        await policy.wait_for_refreshes()
        assert len(credential.asked) == asked + 1  # refreshed with no request
        assert credential.asked[-1].tenant_id == tenant
        await policy.close()
