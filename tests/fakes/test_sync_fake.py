"""bgrefresh_policy.testing.FakeCredential: the tokens it issues, its records, and its gate, on threads.

Order and gates, never timing: a call "waits" while the test sees it counted at the gate and its
thread not finished, and "goes on" once the test releases it.
"""

from __future__ import annotations

import threading

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from bgrefresh_policy import BackgroundRefreshCredential
from bgrefresh_policy.testing import DUE, EXPIRING, FRESH, FakeCall, FakeCredential
from tests.support import FakeClock, Threads, eventually

SCOPE = "https://vault.azure.net/.default"


def test_tokens_have_the_chosen_lifetime_and_refresh_on_and_every_call_is_recorded() -> None:
    clock = FakeClock()
    credential = FakeCredential(lifetime=DUE, refresh_in=100, clock=clock)
    info = credential.get_token_info(SCOPE, options={"tenant_id": "t", "enable_cae": True})
    assert (info.token, info.expires_on, info.refresh_on) == ("fake-token-1", clock.now + DUE, clock.now + 100)
    credential.issue(lifetime=FRESH)
    token = credential.get_token(SCOPE, claims="c")
    assert type(token) is AccessToken
    assert (token.token, token.expires_on) == ("fake-token-2", clock.now + FRESH)
    assert credential.issued[1].refresh_on is None
    assert credential.calls == [
        FakeCall((SCOPE,), tenant_id="t", enable_cae=True),
        FakeCall((SCOPE,), claims="c"),
    ]
    assert credential.call_count == 2


def test_a_held_call_waits_until_released_then_answers() -> None:
    credential = FakeCredential()
    credential.hold()
    caller = Threads(1, lambda _: credential.get_token_info(SCOPE).token)
    credential.wait_for_calls(1)
    eventually(lambda: credential.waiting == 1)
    assert caller.finished == 0  # held at the gate
    credential.release()
    assert caller.results() == ["fake-token-1"]
    assert credential.waiting == 0
    assert credential.get_token_info(SCOPE).token == "fake-token-2"  # released: later calls answer at once


def test_fail_raises_the_given_error_until_succeed_and_issues_nothing() -> None:
    credential = FakeCredential()
    error = ClientAuthenticationError("the token endpoint said no")
    credential.fail(error)
    for _ in range(2):
        with pytest.raises(ClientAuthenticationError) as raised:
            credential.get_token(SCOPE)
        assert raised.value is error
    credential.succeed()
    assert credential.get_token(SCOPE).token == "fake-token-1"
    assert credential.call_count == 3


def test_a_hung_call_never_answers_and_release_ends_it_with_timeout_error() -> None:
    credential = FakeCredential()
    credential.hang()
    caller = Threads(1, lambda _: credential.get_token_info(SCOPE))
    eventually(lambda: credential.waiting == 1)
    with pytest.raises(RuntimeError, match="held already"):
        credential.hold()
    credential.release()
    with pytest.raises(TimeoutError, match="hung"):
        caller.results()
    assert credential.issued == []
    assert credential.get_token_info(SCOPE).token == "fake-token-1"


def test_wait_for_calls_gives_up_as_a_hang() -> None:
    with pytest.raises(TimeoutError, match="still waiting"):
        FakeCredential().wait_for_calls(1, timeout=0.01)


def test_closing_is_recorded() -> None:
    with FakeCredential() as credential:
        assert not credential.closed
    assert credential.closed


def test_a_wrapper_returns_a_due_token_while_the_fake_holds_its_one_refresh_open() -> None:
    credential = FakeCredential(lifetime=DUE)
    with BackgroundRefreshCredential(credential) as wrapper:
        assert wrapper.get_token(SCOPE).token == "fake-token-1"  # no token yet: waited for this one
        credential.hold()
        try:
            assert [wrapper.get_token(SCOPE).token for _ in range(3)] == ["fake-token-1"] * 3
            credential.wait_for_calls(2)  # the one background refresh, held at the gate
            assert credential.waiting == 1
            credential.issue(lifetime=FRESH)
        finally:
            credential.release()
        assert wrapper.wait_for_refreshes(30)
        assert wrapper.get_token(SCOPE).token == "fake-token-2"
    assert credential.call_count == 2
    assert credential.closed  # the wrapper closes what it wraps


def test_an_expiring_token_makes_every_caller_wait_for_a_new_one() -> None:
    credential = FakeCredential(lifetime=EXPIRING)
    with BackgroundRefreshCredential(credential) as wrapper:
        wrapper.get_token(SCOPE)
        credential.hold()
        caller = Threads(1, lambda _: wrapper.get_token(SCOPE).token)
        credential.wait_for_calls(2)
        assert caller.finished == 0  # under min_validity: the caller waits on the credential
        credential.release()
        assert caller.results() == ["fake-token-2"]


def test_release_from_another_thread_than_the_callers() -> None:
    credential = FakeCredential()
    credential.hold()
    callers = Threads(3, lambda _: credential.get_token_info(SCOPE).token)
    eventually(lambda: credential.waiting == 3)
    releaser = threading.Thread(target=credential.release)
    releaser.start()
    releaser.join()
    assert sorted(callers.results()) == ["fake-token-1", "fake-token-2", "fake-token-3"]


def test_each_token_expires_later_than_the_last_as_a_token_endpoints_do() -> None:
    clock = FakeClock()  # never moves: every token is issued in the same second
    credential = FakeCredential(lifetime=DUE, refresh_in=100, clock=clock)
    first, second = credential.get_token_info(SCOPE), credential.get_token_info(SCOPE)
    assert second.expires_on == first.expires_on + 1  # else it would read as the credential's own cache
    assert second.refresh_on == first.refresh_on + 1  # type: ignore[operator]
    credential.issue(lifetime=EXPIRING)
    assert credential.get_token_info(SCOPE).expires_on == clock.now + EXPIRING  # a lifetime chosen anew is kept
