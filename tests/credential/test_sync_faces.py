"""Every sync face on one engine: policies, providers, enabled clients and azure-core's own policy on the wrapper."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import time_machine
from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.core.rest import HttpRequest
from azure.keyvault.secrets import SecretClient

import bgrefresh_policy
from bgrefresh_policy import BackgroundRefreshTokenPolicy, enable_background_refresh, get_bearer_token_provider
from bgrefresh_policy._enable import bearer_policies
from tests.credential.conftest import SCOPE, no_jitter
from tests.support import FakeClock, SyncScriptedCredential, SyncScriptedTransport, blocked_in_wait, eventually

PRIME_AGE = 3400


def send(policy: Any) -> str:
    """Send one request through ``policy``; the Authorization header the transport saw."""
    transport = SyncScriptedTransport()
    Pipeline(transport, policies=[policy]).run(HttpRequest("GET", "https://vault.example.test/secrets/a"))
    return str(transport.seen[-1][1])


def test_a_policy_on_the_wrapper_calls_the_wrapped_credential_on_the_wrappers_engine(
    sync_inner: SyncScriptedCredential, sync_wrapper: Any
) -> None:
    policy: Any = BackgroundRefreshTokenPolicy(sync_wrapper, SCOPE)
    assert policy._credential is sync_inner  # never the wrapper: a refresh never waits on itself
    assert policy._shared is sync_wrapper._shared
    sync_wrapper.prefetch(SCOPE)
    assert send(policy) == "Bearer token-1"
    assert len(sync_inner.calls) == 1
    assert [s.scopes for s in policy.token_status()] == [s.scopes for s in sync_wrapper.token_status()] == [(SCOPE,)]


def test_a_policy_on_the_wrapped_credential_with_the_same_options_shares_the_engine(
    sync_inner: SyncScriptedCredential, sync_wrapper: Any
) -> None:
    assert send(BackgroundRefreshTokenPolicy(sync_inner, SCOPE)) == "Bearer token-1"
    assert sync_wrapper.get_token(SCOPE).token == "token-1"
    assert len(sync_inner.calls) == 1


def test_a_policy_on_the_wrapper_takes_its_options_and_refuses_others(clock: FakeClock) -> None:
    inner = SyncScriptedCredential(clock=clock)
    events: list[Any] = []
    wrapper = bgrefresh_policy.BackgroundRefreshCredential(inner, min_validity=10, on_refresh=events.append)
    policy: Any = BackgroundRefreshTokenPolicy(wrapper, SCOPE)
    assert policy._store.options.min_validity == 10
    assert BackgroundRefreshTokenPolicy(wrapper, SCOPE, min_validity=10)._shared is wrapper._shared
    with pytest.raises(ValueError, match="min_validity=20 differs from the BackgroundRefreshCredential's 10"):
        BackgroundRefreshTokenPolicy(wrapper, SCOPE, min_validity=20)
    with pytest.raises(TypeError):
        bgrefresh_policy.AsyncBackgroundRefreshTokenPolicy(wrapper, SCOPE)  # type: ignore[arg-type]
    send(policy)
    assert [event.scopes for event in events] == [(SCOPE,)]  # the wrapper's on_refresh, told by the policy


def test_a_provider_on_the_wrapper_serves_the_wrappers_token(
    sync_inner: SyncScriptedCredential, sync_wrapper: Any
) -> None:
    sync_wrapper.prefetch(SCOPE)
    assert get_bearer_token_provider(sync_wrapper, SCOPE)() == "token-1"
    assert len(sync_inner.calls) == 1


def test_close_joins_the_refresh_of_a_provider_built_on_the_wrapper_before_closing_the_credential(
    clock: FakeClock,
) -> None:
    closed: list[str] = []

    class Closing(SyncScriptedCredential):
        def close(self) -> None:
            closed.append(f"inner, {self.finished} finished")

    inner = Closing(clock=clock)
    wrapper = bgrefresh_policy.BackgroundRefreshCredential(inner)
    wrapper._store.clock, wrapper._store.draw_jitter = clock, no_jitter
    provider = get_bearer_token_provider(wrapper, SCOPE)  # has no close() of its own
    assert provider() == "token-1"
    clock.advance(PRIME_AGE)
    gate = inner.gate = threading.Event()
    assert provider() == "token-1"  # the provider's background refresh, held
    eventually(lambda: blocked_in_wait(gate) == 1)
    closer = threading.Thread(target=wrapper.close)
    closer.start()
    runner: Any = wrapper._runner  # close() waits on its condition for the refresh thread to end
    eventually(lambda: closed or (runner._ended is not None and len(runner._ended._waiters) == 1))
    assert closed == []  # close() waits for the provider's refresh before closing the credential
    gate.set()
    closer.join(10)
    assert closed == ["inner, 2 finished"]


def test_azure_cores_own_policy_on_the_wrapper_does_not_wait_for_a_held_refresh() -> None:
    """What any Azure SDK client given ``credential=wrapper`` does: azure-core's plain policy asks the wrapper.

    azure-core's policy reads the wall clock: time-machine moves it for both.
    """
    with time_machine.travel(1_800_000_000, tick=False) as wall_clock:
        inner = SyncScriptedCredential(clock=time.time)
        wrapper: Any = bgrefresh_policy.BackgroundRefreshCredential(inner)
        wrapper._store.draw_jitter = no_jitter
        policy = BearerTokenCredentialPolicy(wrapper, SCOPE)
        assert send(policy) == "Bearer token-1"
        wall_clock.shift(PRIME_AGE)  # 200 s left: due for the wrapper's engine and for azure-core's policy
        gate = inner.gate = threading.Event()
        # Each of these requests finished while the one refresh was held open.
        assert [send(policy) for _ in range(3)] == ["Bearer token-1"] * 3
        eventually(lambda: blocked_in_wait(gate) == 1)
        assert len(inner.calls) == 2
        gate.set()
        assert wrapper.wait_for_refreshes(10)
        assert send(policy) == "Bearer token-2"
        wrapper.close()


def test_enable_on_a_client_built_with_the_wrapper_unwraps_it(
    sync_inner: SyncScriptedCredential, sync_wrapper: Any
) -> None:
    client = enable_background_refresh(SecretClient("https://vault.example.test", sync_wrapper))
    (policy,) = bearer_policies(client)
    assert isinstance(policy, BackgroundRefreshTokenPolicy)
    assert policy._credential is sync_inner
    assert policy._shared is sync_wrapper._shared
    sync_wrapper.close()  # ends what was built on it, the enabled client's policy included
    assert policy.closed


def test_closing_the_wrapper_waits_refresh_timeout_in_all_not_per_face(
    sync_inner: SyncScriptedCredential, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapper = bgrefresh_policy.BackgroundRefreshCredential(sync_inner, refresh_timeout=2)
    built = [BackgroundRefreshTokenPolicy(wrapper, SCOPE) for _ in range(3)]
    now = [0.0]
    given: list[float | None] = []

    def join(runner: Any, timeout: float | None = None, owner: Any = None) -> bool:
        if timeout:  # as a join on refreshes that never end: the whole timeout goes by
            given.append(timeout)
            now[0] += timeout
        return False

    monkeypatch.setattr("bgrefresh_policy._credential_sync._monotonic", lambda: now[0])
    monkeypatch.setattr("bgrefresh_policy._runners._threads.ThreadRunner.join", join)
    wrapper.close()
    assert given == [2.0]  # the first face took the whole budget; the others wait no more
    assert all(policy.closed for policy in built)
