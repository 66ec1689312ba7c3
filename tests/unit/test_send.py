"""``send()`` takes the same steps as azure-core's, hook for hook, on every path; only the 401's drop is narrower."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.core.pipeline import AsyncPipeline, Pipeline
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy
from azure.core.rest import HttpRequest

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy
from tests.support import (
    FakeClock,
    ScriptedCredential,
    ScriptedTransport,
    SyncScriptedCredential,
    SyncScriptedTransport,
    claims_challenge,
)

SCOPE = "https://management.azure.com/.default"
CHALLENGE = {"WWW-Authenticate": claims_challenge('{"access_token":{"nbf":{"essential":true,"value":"1"}}}')}


def recording(base: type) -> type:
    """``base`` with every hook of the send protocol recording its call."""

    class Recording(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.calls: list[str] = []
            super().__init__(*args, **kwargs)

        def on_response(self, request: Any, response: Any) -> None:
            self.calls.append(f"on_response {response.http_response.status_code}")

        def on_exception(self, request: Any) -> None:
            self.calls.append("on_exception")

    return Recording


def async_respond(statuses: list[int | Exception]) -> Any:
    async def respond(request: Any) -> tuple[int, dict[str, str]]:
        status = statuses.pop(0)
        if isinstance(status, Exception):
            raise status
        return status, CHALLENGE if status == 401 else {}

    return respond


def sync_respond(statuses: list[int | Exception]) -> Any:
    def respond(request: Any) -> tuple[int, dict[str, str]]:
        status = statuses.pop(0)
        if isinstance(status, Exception):
            raise status
        return status, CHALLENGE if status == 401 else {}

    return respond


SCRIPTS: list[list[int | Exception]] = [
    [200],
    [401, 200],  # a claims challenge answered, then the retry
    [401, 401],
    [ServiceRequestError("connection reset")],
    [401, ServiceRequestError("connection reset")],
]


def outcome(run: Any) -> tuple[str, int | None]:
    try:
        return "response", run().http_response.status_code
    except ServiceRequestError:
        return "ServiceRequestError", None


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: "-".join(map(str, s)))
async def test_async_send_calls_the_hooks_as_azure_core_does(script: list[int | Exception]) -> None:
    seen = []
    for base in (AsyncBearerTokenCredentialPolicy, AsyncBackgroundRefreshTokenPolicy):
        policy = recording(base)(ScriptedCredential(clock=FakeClock()), SCOPE)
        pipeline = AsyncPipeline(ScriptedTransport(async_respond(list(script))), policies=[policy])
        try:
            response = await pipeline.run(HttpRequest("GET", "https://example.test/"))
            result: tuple[str, int | None] = ("response", response.http_response.status_code)
        except ServiceRequestError:
            result = ("ServiceRequestError", None)
        seen.append((result, policy.calls, len(policy._credential.calls)))
    assert seen[0] == seen[1]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: "-".join(map(str, s)))
def test_sync_send_calls_the_hooks_as_azure_core_does(script: list[int | Exception]) -> None:
    seen = []
    for base in (BearerTokenCredentialPolicy, BackgroundRefreshTokenPolicy):
        policy = recording(base)(SyncScriptedCredential(clock=FakeClock()), SCOPE)
        pipeline = Pipeline(SyncScriptedTransport(sync_respond(list(script))), policies=[policy])
        result = outcome(lambda p=pipeline: p.run(HttpRequest("GET", "https://example.test/")))
        seen.append((result, policy.calls, len(policy._credential.calls)))
        if hasattr(policy, "close"):
            policy.close()
    assert seen[0] == seen[1]


def failing_challenge(base: type) -> type:
    class Failing(base):  # type: ignore[misc]
        def on_challenge(self, request: Any, response: Any) -> Any:
            raise LookupError("the challenge could not be answered")

    return Failing


async def test_async_a_failing_challenge_raises_as_from_azure_core() -> None:
    raised = []
    for base in (AsyncBearerTokenCredentialPolicy, AsyncBackgroundRefreshTokenPolicy):
        policy = failing_challenge(base)(ScriptedCredential(clock=FakeClock()), SCOPE)
        pipeline = AsyncPipeline(ScriptedTransport(async_respond([401])), policies=[policy])
        with pytest.raises(LookupError) as caught:
            await pipeline.run(HttpRequest("GET", "https://example.test/"))
        raised.append(type(caught.value.__cause__))
    assert raised[0] is raised[1]
    assert raised[1] in (HttpResponseError, type(None))  # newer azure-core chains the 401 as the cause


def test_sync_a_failing_challenge_raises_as_from_azure_core() -> None:
    raised = []
    for base in (BearerTokenCredentialPolicy, BackgroundRefreshTokenPolicy):
        policy = failing_challenge(base)(SyncScriptedCredential(clock=FakeClock()), SCOPE)
        pipeline = Pipeline(SyncScriptedTransport(sync_respond([401])), policies=[policy])
        with pytest.raises(LookupError) as caught:
            pipeline.run(HttpRequest("GET", "https://example.test/"))
        raised.append(type(caught.value.__cause__))
        if hasattr(policy, "close"):
            policy.close()
    assert raised[0] is raised[1]


async def test_a_subclass_with_its_own_on_request_is_called_by_send() -> None:
    class OwnRequest(AsyncBackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
        async def on_request(self, request: Any) -> None:
            request.http_request.headers["x-seen"] = "yes"
            await super().on_request(request)

    transport = ScriptedTransport()
    policy = OwnRequest(ScriptedCredential(clock=FakeClock()), SCOPE)
    await AsyncPipeline(transport, policies=[policy]).run(HttpRequest("GET", "https://example.test/"))
    assert transport.seen == [("https://example.test/", "Bearer token-1")]
    assert OwnRequest._own_on_request is False
    assert AsyncBackgroundRefreshTokenPolicy._own_on_request is True


def test_a_sync_subclass_with_its_own_on_request_is_called_by_send() -> None:
    class OwnRequest(BackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            request.http_request.headers["x-seen"] = "yes"
            super().on_request(request)

    class Subclass(OwnRequest):
        pass

    marked: list[str | None] = []

    def respond(request: Any) -> tuple[int, dict[str, str]]:
        marked.append(request.headers.get("x-seen"))
        return 200, {}

    pipeline = Pipeline(
        SyncScriptedTransport(respond), policies=[Subclass(SyncScriptedCredential(clock=FakeClock()), SCOPE)]
    )
    for _ in range(2):  # the second with a cached token: the fast path must not skip it
        pipeline.run(HttpRequest("GET", "https://example.test/"))
    assert marked == ["yes", "yes"]
    assert (OwnRequest._own_on_request, Subclass._own_on_request) == (False, False)
    assert BackgroundRefreshTokenPolicy._own_on_request is True


async def test_hooks_patched_onto_one_instance_are_called_as_by_azure_core() -> None:
    seen = []
    for base in (AsyncBearerTokenCredentialPolicy, AsyncBackgroundRefreshTokenPolicy):
        policy: Any = base(ScriptedCredential(clock=FakeClock()), SCOPE)
        calls: list[str] = []
        original = policy.on_request

        async def on_request(request: Any, original: Any = original, calls: list[str] = calls) -> None:
            calls.append("on_request")
            await original(request)

        policy.on_request = on_request
        policy.on_response = lambda request, response, calls=calls: calls.append("on_response")
        pipeline = AsyncPipeline(ScriptedTransport(), policies=[policy])
        for _ in range(2):  # the second with a cached token: the fast path must not skip them
            await pipeline.run(HttpRequest("GET", "https://example.test/"))
        seen.append(calls)
    assert seen[0] == seen[1] == ["on_request", "on_response"] * 2


def test_sync_hooks_patched_onto_one_instance_are_called_as_by_azure_core() -> None:
    seen = []
    for base in (BearerTokenCredentialPolicy, BackgroundRefreshTokenPolicy):
        policy: Any = base(SyncScriptedCredential(clock=FakeClock()), SCOPE)
        calls: list[str] = []
        original = policy.on_request
        policy.on_request = lambda request, original=original, calls=calls: (
            calls.append("on_request"),
            original(request),
        )
        policy.on_exception = lambda request, calls=calls: calls.append("on_exception")
        pipeline = Pipeline(SyncScriptedTransport(sync_respond([200, ServiceRequestError("reset")])), policies=[policy])
        pipeline.run(HttpRequest("GET", "https://example.test/"))
        with pytest.raises(ServiceRequestError):
            pipeline.run(HttpRequest("GET", "https://example.test/"))
        seen.append(calls)
        if hasattr(policy, "close"):
            policy.close()
    assert seen[0] == seen[1] == ["on_request", "on_request", "on_exception"]
