"""Sync policy: what azure-core's BearerTokenCredentialPolicy does still works, in its real sync pipeline."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from azure.core import __version__ as azure_core_version
from azure.core.credentials import AccessTokenInfo
from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline import Pipeline, PipelineContext, PipelineRequest
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.core.rest import HttpRequest

from bgrefresh_policy import BackgroundRefreshTokenPolicy, get_bearer_token_provider
from tests.support import (
    FakeClock,
    SyncLegacyCredential,
    SyncScriptedCredential,
    SyncScriptedTransport,
    Threads,
    bearer,
    claims_challenge,
    eventually,
    in_threads,
    make_request,
)
from tests.sync.conftest import SCOPE, attach, blocked_in_policy, make_sync_policy, prime
from tests.unit.test_drop_in import HTTPS_CASES

CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'


def _https_outcome(policy: Any, url: str, options: dict[str, Any]) -> str:
    policy.on_request(make_request())  # the token is cached: the next one takes the hot path
    request = PipelineRequest(HttpRequest("GET", url), PipelineContext(None, **options))
    try:
        policy.on_request(request)
    except ServiceRequestError:
        return "refused"
    return "attached" if request.http_request.headers["Authorization"].startswith("Bearer ") else "no header"


@pytest.mark.parametrize(("url", "options", "expected"), HTTPS_CASES)
def test_https_rule_with_a_cached_token_is_azure_cores(
    url: str, options: dict[str, Any], expected: str, clock: FakeClock
) -> None:
    ours: Any = BackgroundRefreshTokenPolicy(SyncScriptedCredential(clock=clock), SCOPE)
    theirs = BearerTokenCredentialPolicy(SyncScriptedCredential(clock=clock), SCOPE)
    outcome = _https_outcome(ours, url, dict(options))
    assert outcome == _https_outcome(theirs, url, dict(options))
    assert outcome == (
        "refused" if url.startswith(("http:", "ftp:")) and options.get("enforce_https", True) else "attached"
    )
    ours.close()


def token_number(authorization: str | None) -> int:
    return int((authorization or "Bearer token-0").rsplit("-", 1)[1])


def send(pipeline: Pipeline[Any, Any]) -> int:
    response = pipeline.run(HttpRequest("GET", "https://management.example.test/"))
    return int(response.http_response.status_code)


def test_is_an_azure_core_bearer_policy() -> None:
    assert issubclass(BackgroundRefreshTokenPolicy, BearerTokenCredentialPolicy)


def test_https_is_enforced_and_can_be_opted_out(policy: Any, credential: SyncScriptedCredential) -> None:
    with pytest.raises(ServiceRequestError, match="non-TLS"):
        policy.on_request(make_request("http://management.example.test/"))
    response = Pipeline(SyncScriptedTransport(), policies=[policy]).run(
        HttpRequest("GET", "http://localhost:8080/"), enforce_https=False
    )
    assert response.http_response.status_code == 200
    assert len(credential.calls) == 1


def test_token_request_options_and_keyword_arguments_reach_the_credential(
    credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    policy = make_sync_policy(credential, clock, enable_cae=True)
    policy.on_request(make_request())
    policy.authorize_request(make_request(), SCOPE, claims="c", tenant_id="t")
    assert [c.options for c in credential.calls] == [
        {"enable_cae": True},
        {"enable_cae": True, "claims": "c", "tenant_id": "t"},
    ]
    legacy = SyncLegacyCredential(clock=clock)
    request = make_request()
    make_sync_policy(legacy, clock, enable_cae=True).on_request(request)
    assert request.http_request.headers["Authorization"] == "Bearer legacy-1"
    assert legacy.calls == [((SCOPE,), {"enable_cae": True})]


def test_token_attribute_and_need_new_token_read_and_write_like_azure_core(policy: Any, clock: FakeClock) -> None:
    assert policy._token is None
    assert policy._need_new_token  # a property in azure-core's sync policy
    attach(policy)
    cached: Any = policy._token
    assert cached.token == "token-1"
    assert not policy._need_new_token
    policy._token = AccessTokenInfo("set-by-subclass", int(clock.now + 3600))
    assert attach(policy) == "Bearer set-by-subclass"
    policy._token = None
    assert attach(policy) == "Bearer token-2"
    clock.advance(3400)
    assert policy._need_new_token


def test_subclass_written_for_azure_core_keeps_working(credential: SyncScriptedCredential) -> None:
    class TenantChallengePolicy(BackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
        def on_challenge(self, request: Any, response: Any) -> bool:
            self._request_token(*self._scopes, tenant_id="challenged-tenant")
            self.authorize_request(request, *self._scopes, tenant_id="challenged-tenant")
            return True

    def respond(request: Any) -> tuple[int, dict[str, str]]:
        if request.headers["Authorization"] == "Bearer token-1":
            return 401, {"WWW-Authenticate": 'Bearer authorization_uri="https://login.example.test/tenant"'}
        return 200, {}

    policy = TenantChallengePolicy(credential, SCOPE)
    assert send(Pipeline(SyncScriptedTransport(respond), policies=[policy])) == 200
    challenged = {"tenant_id": "challenged-tenant"}
    assert [c.options for c in credential.calls] == [{}, challenged, challenged]


def test_401_drops_the_token(policy: Any, credential: SyncScriptedCredential) -> None:
    def respond(request: Any) -> tuple[int, dict[str, str]]:
        return (401, {}) if token_number(request.headers.get("Authorization")) == 1 else (200, {})

    pipeline = Pipeline(SyncScriptedTransport(respond), policies=[policy])
    assert send(pipeline) == 401
    assert send(pipeline) == 200
    assert len(credential.calls) == 2


def test_refresh_begun_before_a_401_never_writes_back(
    policy: Any, credential: SyncScriptedCredential, clock: FakeClock
) -> None:
    def respond(request: Any) -> tuple[int, dict[str, str]]:
        return (401, {}) if token_number(request.headers.get("Authorization")) in (1, 2) else (200, {})

    transport = SyncScriptedTransport(respond)
    pipeline = Pipeline(transport, policies=[policy])
    prime(policy, clock)
    gate = credential.gate = threading.Event()
    assert send(pipeline) == 401  # starts the background refresh (token-2), then the 401 invalidates
    eventually(lambda: len(credential.calls) == 2)
    credential.gate = None
    gate.set()
    assert policy.wait_for_refreshes(10)
    assert send(pipeline) == 200
    assert token_number(transport.seen[-1][1]) == 3  # token-2 was begun before the 401: never used


def test_burst_of_401s_from_many_threads_for_one_revoked_token_refreshes_once(
    policy: Any, credential: SyncScriptedCredential
) -> None:
    burst = 32
    all_sent, release = threading.Barrier(burst), threading.Event()
    answered = itertools.count()

    def respond(request: Any) -> tuple[int, dict[str, str]]:
        if token_number(request.headers.get("Authorization")) != 1:
            return 200, {}
        all_sent.wait(10)  # every request of the burst carries token-1
        if next(answered) > 0:
            release.wait(10)  # the rest of the burst is answered after token-2 is cached
        return 401, {}

    pipeline = Pipeline(SyncScriptedTransport(respond), policies=[policy])
    attach(policy)
    statuses: list[int] = []
    burst_thread = threading.Thread(target=lambda: statuses.extend(in_threads(burst, lambda _: send(pipeline))))
    burst_thread.start()
    eventually(lambda: policy._token is None)  # the first 401 dropped token-1
    assert send(pipeline) == 200  # fetched token-2
    release.set()
    burst_thread.join(10)
    assert statuses == [401] * burst
    assert send(pipeline) == 200
    assert len(credential.calls) == 2  # the late 401s for token-1 left token-2 alone


def test_identical_authorize_requests_from_many_threads_share_a_call(
    policy: Any, credential: SyncScriptedCredential
) -> None:
    gate = credential.gate = threading.Event()
    requests = [make_request() for _ in range(16)]
    threads = Threads(16, lambda i: policy.authorize_request(requests[i], SCOPE, claims=CLAIMS))
    # Every thread has arrived: one in the credential's held call, the other 15 waiting on it.
    eventually(lambda: blocked_in_policy(policy, credential) + threads.finished == 16)
    assert threads.finished == 0
    assert len(credential.calls) == 1
    credential.gate = None
    gate.set()
    threads.results()
    assert {bearer(r) for r in requests} == {"Bearer token-1"}
    assert len(credential.calls) == 1
    in_threads(4, lambda i: policy.authorize_request(make_request(), SCOPE, claims=f"{CLAIMS}{i}"))
    assert len(credential.calls) == 5  # different claims are never shared


def test_cae_claims_challenge_round_trip(credential: SyncScriptedCredential) -> None:
    policy = BackgroundRefreshTokenPolicy(credential, SCOPE, enable_cae=True)

    def respond(request: Any) -> tuple[int, dict[str, str]]:
        number = token_number(request.headers.get("Authorization"))
        if credential.calls[number - 1].options.get("claims") == CLAIMS:
            return 200, {}
        return 401, {"WWW-Authenticate": claims_challenge(CLAIMS)}

    transport = SyncScriptedTransport(respond)
    pipeline = Pipeline(transport, policies=[policy])
    assert send(pipeline) == 200
    assert [token_number(auth) for _, auth in transport.seen] == [1, 2]
    assert credential.calls[1].options == {"enable_cae": True, "claims": CLAIMS}
    if tuple(int(part) for part in azure_core_version.split(".")[:2]) >= (1, 33):
        assert send(pipeline) == 200  # the claims token is cached, as azure-core does
        assert len(credential.calls) == 2


def test_a_token_is_read_once_when_the_credential_returns_it() -> None:
    # As its expiry is: the policy and a provider on the credential attach and return the same value,
    # whatever the credential does to the object afterwards (azure-identity returns a new one each time).
    class InPlace:
        info = AccessTokenInfo("first", 2**40)

        def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
            return self.info

    credential: Any = InPlace()
    policy = BackgroundRefreshTokenPolicy(credential, SCOPE)
    provider = get_bearer_token_provider(credential, SCOPE)
    assert bearer_of(policy) == "Bearer first"
    credential.info.token = "second"
    assert (bearer_of(policy), provider()) == ("Bearer first", "first")
    policy.close()


def bearer_of(policy: Any) -> str:
    request = make_request()
    policy.on_request(request)
    return bearer(request)
