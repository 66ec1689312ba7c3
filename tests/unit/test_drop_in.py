"""Semantic 10: everything else azure-core's policy does still works, in azure-core's real pipeline."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core import AsyncPipelineClient
from azure.core.credentials import AccessTokenInfo
from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline import AsyncPipeline, PipelineContext, PipelineRequest
from azure.core.pipeline.policies import (
    AsyncBearerTokenCredentialPolicy,
    AsyncRedirectPolicy,
    SensitiveHeaderCleanupPolicy,
)
from azure.core.rest import HttpRequest

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from tests.support import FakeClock, LegacyCredential, ScriptedCredential, ScriptedTransport, bearer, make_request
from tests.unit.conftest import SCOPE, make_policy


def test_is_an_azure_core_bearer_policy() -> None:
    assert issubclass(AsyncBackgroundRefreshTokenPolicy, AsyncBearerTokenCredentialPolicy)


async def test_https_is_enforced(policy: Any) -> None:
    with pytest.raises(ServiceRequestError, match="non-TLS"):
        await policy.on_request(make_request("http://management.example.test/"))


# With a token cached, azure-core's https rule still decides: case-insensitive scheme, opt-out by option or context.
HTTPS_CASES = [
    ("https://management.example.test/", {}, "attached"),
    ("HTTPS://MANAGEMENT.EXAMPLE.TEST/", {}, "attached"),
    ("Https://management.example.test/", {}, "attached"),
    ("http://management.example.test/", {}, "refused"),
    ("ftp://management.example.test/", {}, "refused"),
    ("http://localhost:8080/", {"enforce_https": False}, "attached"),
    ("http://localhost:8080/", {"enforce_https": True}, "refused"),
]


async def _https_outcome(policy: Any, url: str, options: dict[str, Any]) -> str:
    await policy.on_request(make_request())  # the token is cached: the next one takes the hot path
    request = PipelineRequest(HttpRequest("GET", url), PipelineContext(None, **options))
    try:
        await policy.on_request(request)
    except ServiceRequestError:
        return "refused"
    return "attached" if request.http_request.headers["Authorization"].startswith("Bearer ") else "no header"


@pytest.mark.parametrize(("url", "options", "expected"), HTTPS_CASES)
async def test_https_rule_with_a_cached_token_is_azure_cores(
    url: str, options: dict[str, Any], expected: str, clock: FakeClock
) -> None:
    ours: Any = AsyncBackgroundRefreshTokenPolicy(ScriptedCredential(clock=clock), SCOPE)
    theirs = AsyncBearerTokenCredentialPolicy(ScriptedCredential(clock=clock), SCOPE)
    outcome = await _https_outcome(ours, url, dict(options))
    assert outcome == await _https_outcome(theirs, url, dict(options))
    assert outcome == (
        "refused" if url.startswith(("http:", "ftp:")) and options.get("enforce_https", True) else "attached"
    )
    await ours.close()


async def test_enforce_https_opt_out(policy: Any, credential: ScriptedCredential) -> None:
    pipeline = AsyncPipeline(ScriptedTransport(), policies=[policy])
    response = await pipeline.run(HttpRequest("GET", "http://localhost:8080/"), enforce_https=False)
    assert response.http_response.status_code == 200
    assert len(credential.calls) == 1


async def test_get_token_info_is_preferred_with_token_request_options(credential: ScriptedCredential) -> None:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(credential, SCOPE, enable_cae=True)
    await policy.on_request(make_request())
    await policy.authorize_request(make_request(), SCOPE, claims="c", tenant_id="t")
    assert [c.options for c in credential.calls] == [
        {"enable_cae": True},
        {"enable_cae": True, "claims": "c", "tenant_id": "t"},
    ]


async def test_get_token_credential_gets_keyword_arguments(clock: FakeClock) -> None:
    credential = LegacyCredential(clock=clock)
    policy = make_policy(credential, clock, enable_cae=True)
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer legacy-1"
    assert credential.calls == [((SCOPE,), {"enable_cae": True})]


async def test_authorization_header_removed_on_cross_domain_redirect(policy: Any) -> None:
    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        if "first.example.test" in request.url:
            return 302, {"Location": "https://second.example.test/elsewhere"}
        return 200, {}

    transport = ScriptedTransport(respond)
    client: AsyncPipelineClient[Any, Any] = AsyncPipelineClient(
        "https://first.example.test",
        transport=transport,
        policies=[AsyncRedirectPolicy(), policy, SensitiveHeaderCleanupPolicy()],
    )
    async with client:
        response = await client.send_request(HttpRequest("GET", "https://first.example.test/start"))
    assert response.status_code == 200
    assert transport.seen[0] == ("https://first.example.test/start", "Bearer token-1")
    assert transport.seen[1] == ("https://second.example.test/elsewhere", None)


async def test_hooks_run_as_in_azure_core(credential: ScriptedCredential, clock: FakeClock) -> None:
    events: list[str] = []

    class Hooked(AsyncBackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
        def on_response(self, request: Any, response: Any) -> None:
            events.append(f"response {response.http_response.status_code}")

        def on_exception(self, request: Any) -> None:
            events.append("exception")

    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        if request.url.endswith("/boom"):
            raise ConnectionError("transport failed")
        return 204, {}

    pipeline = AsyncPipeline(ScriptedTransport(respond), policies=[Hooked(credential, SCOPE)])
    await pipeline.run(HttpRequest("GET", "https://example.test/ok"))
    with pytest.raises(ConnectionError):
        await pipeline.run(HttpRequest("GET", "https://example.test/boom"))
    assert events == ["response 204", "exception"]


async def test_subclass_written_for_azure_core_keeps_working(credential: ScriptedCredential) -> None:
    """A subclass in azure-core's style: its own challenge handling through the private surface."""

    class TenantChallengePolicy(AsyncBackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
        async def on_challenge(self, request: Any, response: Any) -> bool:
            async with self._lock:
                await self._request_token(*self._scopes, tenant_id="challenged-tenant")
            await self.authorize_request(request, *self._scopes, tenant_id="challenged-tenant")
            return True

        def needs_token(self) -> bool:
            return bool(self._need_new_token())

    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        if request.headers["Authorization"] == "Bearer token-1":
            return 401, {"WWW-Authenticate": 'Bearer authorization_uri="https://login.example.test/tenant"'}
        return 200, {}

    policy = TenantChallengePolicy(credential, SCOPE)
    assert policy.needs_token()
    pipeline = AsyncPipeline(ScriptedTransport(respond), policies=[policy])
    response = await pipeline.run(HttpRequest("GET", "https://example.test/"))
    assert response.http_response.status_code == 200
    challenged = {"tenant_id": "challenged-tenant"}
    assert [c.options for c in credential.calls] == [{}, challenged, challenged]


async def test_token_attribute_reads_and_writes_like_azure_core(policy: Any, clock: FakeClock) -> None:
    assert policy._token is None
    assert policy._need_new_token()
    await policy.on_request(make_request())
    cached: Any = policy._token
    assert cached.token == "token-1"
    assert not policy._need_new_token()
    policy._token = AccessTokenInfo("set-by-subclass", int(clock.now + 3600))
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer set-by-subclass"
    policy._token = None  # outside send(): drops the token, as in azure-core
    request = make_request()
    await policy.on_request(request)
    assert bearer(request) == "Bearer token-2"
    policy._token = AccessTokenInfo("manual", int(clock.now + 3600))
    policy._token = None  # the request attached before does not make this conditional
    assert policy._token is None
    await policy.on_request(request)
    clock.advance(3400)
    assert policy._need_new_token()
    with pytest.raises(TypeError, match="expected an AccessTokenInfo"):
        policy._token = "a bare string"


async def test_request_token_then_token_as_azure_core_subclasses_do(
    policy: Any, credential: ScriptedCredential, clock: FakeClock
) -> None:
    """A subclass that gets a token for its own scope and tenant, then reads ``self._token``."""
    await policy._request_token("https://vault.azure.net/.default", tenant_id="tenant-b")
    assert policy._token.token == "token-1"
    assert credential.calls[0].scopes == ("https://vault.azure.net/.default",)
    assert credential.calls[0].options == {"tenant_id": "tenant-b"}
    assert not policy._need_new_token()
    clock.advance(3400)
    assert policy._need_new_token()  # judged on that token
    policy._token = None
    assert policy._token is None
    request = make_request()
    await policy.on_request(request)  # on_request keeps to the policy's own scopes
    assert bearer(request) == "Bearer token-2"
    now_cached: Any = policy._token
    assert now_cached.token == "token-2"


async def test_another_policys_on_request_inside_send_leaves_the_401_check_alone(
    policy: Any, credential: ScriptedCredential
) -> None:
    other: Any = AsyncBackgroundRefreshTokenPolicy(credential, "https://other.example.test/.default")

    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        await other.on_request(make_request())  # a second policy used within the first one's send()
        return 401, {}

    await AsyncPipeline(ScriptedTransport(respond), policies=[policy]).run(HttpRequest("GET", "https://example.test/"))
    assert policy._token is None  # the 401 dropped the first policy's token, not judged by the other's
