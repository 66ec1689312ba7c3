"""Input the policies could not serve is refused at construction, with a message that says what to do."""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from typing import Any

import azure.identity
import azure.identity.aio
import pytest
import trio
from azure.core.credentials import AccessToken

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy
from tests.support import FakeClock, ScriptedCredential, SyncScriptedCredential, bearer, make_request
from tests.unit.conftest import SCOPE, make_policy

TENANT = "00000000-0000-0000-0000-000000000000"
CLIENT = "11111111-1111-1111-1111-111111111111"


def test_a_sync_credential_is_refused_by_the_async_policy() -> None:
    sync_credential = azure.identity.ClientSecretCredential(TENANT, CLIENT, "secret")
    with pytest.raises(
        TypeError, match=r"ClientSecretCredential is a sync credential \(its get_token_info is from"
    ) as caught:
        AsyncBackgroundRefreshTokenPolicy(sync_credential, SCOPE)  # type: ignore[arg-type]
    assert "azure.identity.aio" in str(caught.value)
    assert "BackgroundRefreshTokenPolicy" in str(caught.value)


async def test_a_user_written_sync_credential_with_get_token_only_works_in_the_async_policy_as_in_azure_cores(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Its type proves nothing (azure-core awaits what a plain function returns, if awaitable): the call
    # shows it, and is told of at WARNING.
    class Blocking:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            return AccessToken("blocking-token", 4_000_000_000)

    policy = AsyncBackgroundRefreshTokenPolicy(Blocking(), SCOPE)  # type: ignore[arg-type]
    request = make_request()
    with caplog.at_level(logging.WARNING, logger="bgrefresh_policy"):
        await policy.on_request(request)
    assert request.http_request.headers["Authorization"] == "Bearer blocking-token"
    assert next(record.getMessage() for record in caplog.records).startswith(
        "Blocking.get_token returned AccessToken, not an awaitable"
    )


async def test_an_async_credential_is_refused_by_the_sync_policy() -> None:
    async with azure.identity.aio.ClientSecretCredential(TENANT, CLIENT, "secret") as async_credential:
        with pytest.raises(TypeError, match=r"ClientSecretCredential\.get_token_info is a coroutine") as caught:
            BackgroundRefreshTokenPolicy(async_credential, SCOPE)  # type: ignore[arg-type]
    assert "azure.identity" in str(caught.value)
    assert "AsyncBackgroundRefreshTokenPolicy" in str(caught.value)


async def test_azure_identitys_credentials_are_accepted_by_the_matching_policy() -> None:
    async with azure.identity.aio.ClientSecretCredential(TENANT, CLIENT, "secret") as async_credential:
        AsyncBackgroundRefreshTokenPolicy(async_credential, SCOPE)
    with azure.identity.ClientSecretCredential(TENANT, CLIENT, "secret") as sync_credential:
        BackgroundRefreshTokenPolicy(sync_credential, SCOPE)


@pytest.mark.parametrize(
    ("policy_class", "credential_class"),
    [
        (AsyncBackgroundRefreshTokenPolicy, azure.identity.aio.DefaultAzureCredential),
        (BackgroundRefreshTokenPolicy, azure.identity.DefaultAzureCredential),
    ],
)
def test_a_credential_class_is_refused_with_the_call_to_make(policy_class: Any, credential_class: type) -> None:
    with pytest.raises(
        TypeError, match=r"an instance, not the class DefaultAzureCredential: pass DefaultAzureCredential\(\)"
    ):
        policy_class(credential_class, SCOPE)


def test_sync_refresh_timeout_above_what_threads_can_wait_for_is_refused() -> None:
    credential = SyncScriptedCredential(clock=FakeClock())
    with pytest.raises(ValueError, match=r"refresh_timeout=.*threading\.TIMEOUT_MAX"):
        BackgroundRefreshTokenPolicy(credential, SCOPE, refresh_timeout=threading.TIMEOUT_MAX * 2)
    with BackgroundRefreshTokenPolicy(credential, SCOPE, refresh_timeout=threading.TIMEOUT_MAX) as policy:
        policy.on_request(make_request())
    # close() waited with refresh_timeout=TIMEOUT_MAX, which threading accepts.


def test_sync_wait_for_refreshes_refuses_a_timeout_threads_cannot_wait_for() -> None:
    with BackgroundRefreshTokenPolicy(SyncScriptedCredential(clock=FakeClock()), SCOPE) as policy:
        with pytest.raises(ValueError, match=r"timeout=.*threading\.TIMEOUT_MAX"):
            policy.wait_for_refreshes(threading.TIMEOUT_MAX * 2)
        assert policy.wait_for_refreshes(threading.TIMEOUT_MAX)


def _background_refresh_with_timeout(policy: Any, clock: FakeClock, credential: ScriptedCredential) -> Any:
    async def main() -> list[str]:
        await policy.on_request(make_request())
        clock.advance(3400)
        await policy.on_request(make_request())
        await policy.wait_for_refreshes()
        request = make_request()
        await policy.on_request(request)
        return [bearer(request), str(len(credential.calls))]

    return main


def test_async_refresh_timeout_far_in_the_future_works_on_asyncio_and_trio() -> None:
    for library in ("asyncio", "trio"):
        clock = FakeClock()
        credential = ScriptedCredential(clock=clock)
        policy = make_policy(credential, clock, refresh_timeout=1e12)
        main = _background_refresh_with_timeout(policy, clock, credential)
        outcome = asyncio.run(main()) if library == "asyncio" else trio.run(main)
        assert outcome == ["Bearer token-2", "2"]


@pytest.mark.parametrize("policy_class", [AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy])
def test_min_validity_at_or_above_the_refresh_window_warns_at_the_callers_line(policy_class: Any) -> None:
    credential = (
        ScriptedCredential(clock=FakeClock())
        if policy_class is AsyncBackgroundRefreshTokenPolicy
        else SyncScriptedCredential(clock=FakeClock())
    )
    with pytest.warns(UserWarning, match=r"min_validity=300 s is not below azure-core's 300 s refresh window") as seen:
        policy_class(credential, SCOPE, min_validity=300)
    assert seen[0].filename == __file__  # points at the constructor call, not at this library
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy_class(credential, SCOPE, min_validity=299)
