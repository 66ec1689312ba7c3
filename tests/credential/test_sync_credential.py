"""bgrefresh_policy.BackgroundRefreshCredential: a credential whose due tokens are refreshed on a thread.

Order and gates, never timing: "did not wait" is a call that returned while the wrapped
credential's call was still held open; "shared one call" is every caller blocked on one call.
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import ClientAuthenticationError

import bgrefresh_policy
from tests.credential.conftest import OTHER_SCOPE, SCOPE, on_fake_clock
from tests.support import FakeClock, SyncScriptedCredential, Threads, blocked_in_wait, eventually

PRIME_AGE = 3400  # a 3600 s token is then due (300 s window, no jitter) with 200 s left


def blocked_in(wrapper: Any, inner: SyncScriptedCredential) -> int:
    """Threads blocked on a call in flight, or in a wrapped-credential call held at a gate."""
    flights = tuple(wrapper._runner.flights.values())
    return blocked_in_wait(*(flight.done for flight in flights), *inner.gates)


def test_get_token_info_returns_the_wrapped_credentials_token_with_its_expiry_and_refresh_on(
    sync_inner: SyncScriptedCredential, sync_wrapper: Any, clock: FakeClock
) -> None:
    sync_inner.refresh_in = 1800
    info = sync_wrapper.get_token_info(SCOPE)
    assert isinstance(info, AccessTokenInfo)
    assert (info.token, info.expires_on, info.refresh_on) == ("token-1", int(clock.now + 3600), int(clock.now + 1800))
    assert sync_wrapper.get_token_info(SCOPE) is info  # cached: no second call
    assert len(sync_inner.calls) == 1


def test_get_token_returns_an_access_token_instance(sync_inner: SyncScriptedCredential, sync_wrapper: Any) -> None:
    token = sync_wrapper.get_token(SCOPE)
    assert type(token) is AccessToken  # kiota accepts only an AccessToken instance
    assert token.token == "token-1"
    assert sync_wrapper.get_token_info(SCOPE).token == "token-1"
    assert len(sync_inner.calls) == 1


def test_a_due_token_is_returned_while_one_background_refresh_is_held_open(
    sync_inner: SyncScriptedCredential, sync_wrapper: Any, clock: FakeClock
) -> None:
    sync_wrapper.get_token_info(SCOPE)
    clock.advance(PRIME_AGE)
    gate = sync_inner.gate = threading.Event()
    # Returned while the refresh it started is held open: the caller did not wait.
    assert sync_wrapper.get_token_info(SCOPE).token == "token-1"
    eventually(lambda: blocked_in_wait(gate) == 1)
    assert [sync_wrapper.get_token(SCOPE).token for _ in range(5)] == ["token-1"] * 5
    assert len(sync_inner.calls) == 2  # one refresh in flight, however many calls
    gate.set()
    assert sync_wrapper.wait_for_refreshes(10)
    assert sync_wrapper.get_token_info(SCOPE).token == "token-2"
    assert len(sync_inner.calls) == 2


def test_threads_with_no_token_share_one_call(sync_inner: SyncScriptedCredential, sync_wrapper: Any) -> None:
    gate = sync_inner.gate = threading.Event()
    callers = Threads(6, lambda _: sync_wrapper.get_token_info(SCOPE).token)
    eventually(lambda: blocked_in(sync_wrapper, sync_inner) == 6)  # every caller has arrived
    assert len(sync_inner.calls) == 1
    gate.set()
    assert callers.results() == ["token-1"] * 6


def test_a_failed_call_reaches_every_waiter_as_the_same_error_and_the_next_call_asks_again(
    sync_inner: SyncScriptedCredential, sync_wrapper: Any
) -> None:
    error = ClientAuthenticationError("the token endpoint said no")
    sync_inner.errors.append(error)
    gate = sync_inner.gate = threading.Event()

    def call(_: int) -> BaseException | None:
        try:
            sync_wrapper.get_token_info(SCOPE)
        except ClientAuthenticationError as raised:
            return raised
        return None

    callers = Threads(4, call)
    eventually(lambda: blocked_in(sync_wrapper, sync_inner) == 4)
    gate.set()
    assert all(raised is error for raised in callers.results())
    assert len(sync_inner.calls) == 1
    sync_inner.gate = None
    assert sync_wrapper.get_token_info(SCOPE).token == "token-2"
    assert len(sync_inner.calls) == 2


def test_a_call_with_claims_always_reaches_the_wrapped_credential(
    sync_inner: SyncScriptedCredential, sync_wrapper: Any
) -> None:
    sync_wrapper.get_token_info(SCOPE)
    claimed = sync_wrapper.get_token(SCOPE, claims='{"access_token":{}}')
    again = sync_wrapper.get_token_info(SCOPE, options={"claims": '{"access_token":{}}'})
    assert (claimed.token, again.token) == ("token-2", "token-3")
    claims = {"claims": '{"access_token":{}}'}
    assert [call.options for call in sync_inner.calls] == [{}, claims, claims]
    assert sync_wrapper.get_token_info(SCOPE).token == "token-3"  # cached for the key, as azure-core does


def test_scopes_tenants_and_cae_are_keys_of_their_own(sync_inner: SyncScriptedCredential, sync_wrapper: Any) -> None:
    tokens = {
        sync_wrapper.get_token(SCOPE).token,
        sync_wrapper.get_token(SCOPE, tenant_id="tenant-b").token,
        sync_wrapper.get_token(SCOPE, enable_cae=True).token,
        sync_wrapper.get_token_info(SCOPE, options={"enable_cae": True, "tenant_id": "tenant-b"}).token,
        sync_wrapper.get_token(OTHER_SCOPE).token,
    }
    assert len(tokens) == 5
    assert [call.options for call in sync_inner.calls] == [
        {},
        {"tenant_id": "tenant-b"},
        {"enable_cae": True},
        {"tenant_id": "tenant-b", "enable_cae": True},
        {},
    ]
    status = sync_wrapper.token_status()
    assert [(s.scopes, s.tenant_id, s.cae) for s in status] == [  # sorted by scopes, tenant, CAE
        ((OTHER_SCOPE,), None, False),
        ((SCOPE,), None, False),
        ((SCOPE,), None, True),
        ((SCOPE,), "tenant-b", False),
        ((SCOPE,), "tenant-b", True),
    ]
    assert all(s.healthy for s in status)
    assert sync_wrapper.get_token(SCOPE, enable_cae=True).token == "token-3"
    assert len(sync_inner.calls) == 5


def test_prefetch_warms_a_key_and_raises_what_the_credential_raised(
    sync_inner: SyncScriptedCredential, sync_wrapper: Any
) -> None:
    assert sync_wrapper.token_status() == []
    sync_wrapper.prefetch(SCOPE, tenant_id="tenant-b")
    (status,) = sync_wrapper.token_status()
    assert (status.scopes, status.tenant_id, status.healthy) == ((SCOPE,), "tenant-b", True)
    assert sync_wrapper.get_token(SCOPE, tenant_id="tenant-b").token == "token-1"
    error = ClientAuthenticationError("no")
    sync_inner.errors.append(error)
    with pytest.raises(ClientAuthenticationError) as raised:
        sync_wrapper.prefetch(OTHER_SCOPE)
    assert raised.value is error


def test_close_joins_its_refresh_and_closes_the_wrapped_credential(clock: FakeClock) -> None:
    closed: list[str] = []

    class Closing(SyncScriptedCredential):
        def close(self) -> None:
            closed.append("inner")

    inner = Closing(clock=clock)
    with on_fake_clock(bgrefresh_policy.BackgroundRefreshCredential(inner), clock) as wrapper:
        wrapper.get_token_info(SCOPE)
        clock.advance(PRIME_AGE)
        gate = inner.gate = threading.Event()
        wrapper.get_token_info(SCOPE)  # starts a background refresh, held
        eventually(lambda: blocked_in_wait(gate) == 1)
        closer = threading.Thread(target=wrapper.close)
        closer.start()
        eventually(lambda: wrapper.closed)
        assert closed == []  # the refresh is joined before the wrapped credential is closed
        gate.set()
        closer.join(10)
    assert closed == ["inner", "inner"]  # close(), then __exit__'s close(): safe twice
    inner.gate = None
    clock.advance(PRIME_AGE)  # due again: a closed wrapper refreshes inline, starting no thread
    assert wrapper.get_token_info(SCOPE).token == "token-3"
    assert inner.threads[-1] is threading.current_thread()


def test_no_scope_and_wrong_credentials_are_refused(sync_inner: SyncScriptedCredential, sync_wrapper: Any) -> None:
    with pytest.raises(ValueError, match="scope"):
        sync_wrapper.get_token_info()
    with pytest.raises(TypeError, match="already"):
        bgrefresh_policy.BackgroundRefreshCredential(sync_wrapper)

    class AsyncOnly:
        async def get_token_info(self, *scopes: str, options: Any = None) -> Any:
            raise AssertionError("never called")

    with pytest.raises(TypeError, match=r"bgrefresh_policy\.aio\.BackgroundRefreshCredential"):
        bgrefresh_policy.BackgroundRefreshCredential(AsyncOnly())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_validity"):
        bgrefresh_policy.BackgroundRefreshCredential(sync_inner, min_validity=-1)


def test_repr_names_the_wrapped_credential_and_no_token(sync_wrapper: Any) -> None:
    sync_wrapper.get_token_info(SCOPE)
    assert repr(sync_wrapper) == "BackgroundRefreshCredential(SyncScriptedCredential)"


def test_options_are_keyword_only_and_checked(sync_inner: SyncScriptedCredential) -> None:
    with pytest.raises(TypeError, match="did you mean 'min_validity'"):
        bgrefresh_policy.BackgroundRefreshCredential(sync_inner, min_valdity=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'share_tokens'"):  # a policy's option
        bgrefresh_policy.BackgroundRefreshCredential(sync_inner, share_tokens=False)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="refresh_when_idle must be a bool"):
        bgrefresh_policy.BackgroundRefreshCredential(sync_inner, refresh_when_idle=1)  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="min_validity=300") as warned:
        bgrefresh_policy.BackgroundRefreshCredential(sync_inner, min_validity=300)
    assert warned[0].filename == __file__  # pointed at the caller's line


def test_a_token_is_read_once_as_the_policies_read_it() -> None:
    class InPlace:
        info = AccessTokenInfo("first", 2**40, token_type="PoP", refresh_on=2**39)

        def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
            return self.info

    inner: Any = InPlace()
    wrapper = bgrefresh_policy.BackgroundRefreshCredential(inner)
    first = wrapper.get_token_info(SCOPE)
    inner.info.token = "second"  # the credential changes its object afterwards: not followed
    assert (first.token, first.token_type, first.refresh_on) == ("first", "PoP", 2**39)
    assert (wrapper.get_token_info(SCOPE).token, wrapper.get_token(SCOPE).token) == ("first", "first")
    assert bgrefresh_policy.get_bearer_token_provider(wrapper, SCOPE)() == "first"
    wrapper.close()


def test_a_providers_min_validity_warning_points_at_the_caller_once(sync_inner: SyncScriptedCredential) -> None:
    with pytest.warns(UserWarning, match="min_validity=300") as warned:
        bgrefresh_policy.get_bearer_token_provider(sync_inner, SCOPE, min_validity=300)
    assert [warning.filename for warning in warned] == [__file__]
    with pytest.warns(UserWarning, match="min_validity=300"):
        wrapper = bgrefresh_policy.BackgroundRefreshCredential(sync_inner, min_validity=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # judged with the wrapper: not again
        bgrefresh_policy.get_bearer_token_provider(wrapper, SCOPE)


def test_a_failed_claims_call_is_not_logged_as_using_the_current_token(
    sync_inner: SyncScriptedCredential, sync_wrapper: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sync_wrapper.get_token_info(SCOPE)
    sync_inner.errors.append(ClientAuthenticationError("claims refused"))
    with pytest.raises(ClientAuthenticationError), caplog.at_level(logging.DEBUG, logger="bgrefresh_policy"):
        sync_wrapper.get_token(SCOPE, claims="c")
    assert [record.levelno for record in caplog.records if "failed" in record.getMessage()] == [logging.DEBUG]
    assert "raised to its caller" in caplog.text
