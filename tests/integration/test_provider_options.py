"""The token providers' options, sync and ``bgrefresh_policy.aio``: ``enable_cae``, ``on_refresh`` and
``min_validity`` are honoured, and bad values refused when the provider is made.

The user-written credentials of ``test_client_families`` (tokens ``token-N@home``, valid an hour
from now); time moves with time-machine.
"""

from __future__ import annotations

from typing import Any

import pytest
import time_machine

import bgrefresh_policy
import bgrefresh_policy.aio
from bgrefresh_policy import RefreshEvent, RefreshOutcome
from tests.integration.test_client_families import Issuer, SyncIssuer

pytestmark = pytest.mark.integration

SCOPE = "https://cognitiveservices.azure.com/.default"
LIFETIME = 3600

BAD_OPTIONS = [
    pytest.param({"min_validity": -1}, ValueError, "min_validity", id="negative-min_validity"),
    pytest.param({"on_refresh": 3}, TypeError, "on_refresh", id="on_refresh-not-callable"),
    pytest.param({"enable_cae": "yes"}, TypeError, "enable_cae", id="enable_cae-not-a-bool"),
]


# --- sync --------------------------------------------------------------------------------


@pytest.mark.parametrize("enable_cae", [True, False])
def test_the_sync_provider_asks_for_cae_tokens_as_told(enable_cae: bool) -> None:
    credential = SyncIssuer()
    provider = bgrefresh_policy.get_bearer_token_provider(credential, SCOPE, enable_cae=enable_cae)
    assert provider() == "token-1@home"
    assert [asked.enable_cae for asked in credential.asked] == [enable_cae]


def test_the_sync_provider_reports_each_credential_call() -> None:
    events: list[RefreshEvent] = []
    provider = bgrefresh_policy.get_bearer_token_provider(SyncIssuer(), SCOPE, on_refresh=events.append)
    provider()
    provider()  # the cached token: no call, no event
    assert [(event.scopes, event.background, event.outcome) for event in events] == [
        ((SCOPE,), False, RefreshOutcome.NEW_TOKEN)
    ]


def test_the_sync_provider_waits_for_a_new_token_under_min_validity(wall_clock: time_machine.Traveller) -> None:
    credential = SyncIssuer()
    provider = bgrefresh_policy.get_bearer_token_provider(credential, SCOPE, min_validity=200)
    assert provider() == "token-1@home"
    wall_clock.shift(LIFETIME - 150)  # 150 s left: due, and under min_validity
    assert provider() == "token-2@home"  # the new token, waited for (with the default 60, token-1 at once)
    assert credential.finished == 2


@pytest.mark.parametrize(("options", "error", "named"), BAD_OPTIONS)
def test_the_sync_provider_refuses_bad_options(options: dict[str, Any], error: type[Exception], named: str) -> None:
    credential = SyncIssuer()
    with pytest.raises(error, match=named):
        bgrefresh_policy.get_bearer_token_provider(credential, SCOPE, **options)
    assert credential.asked == []


# --- async -------------------------------------------------------------------------------


@pytest.mark.parametrize("enable_cae", [True, False])
async def test_the_async_provider_asks_for_cae_tokens_as_told(enable_cae: bool) -> None:
    credential = Issuer()
    provider = bgrefresh_policy.aio.get_bearer_token_provider(credential, SCOPE, enable_cae=enable_cae)
    assert await provider() == "token-1@home"
    assert [asked.enable_cae for asked in credential.asked] == [enable_cae]


async def test_the_async_provider_reports_each_credential_call() -> None:
    events: list[RefreshEvent] = []
    provider = bgrefresh_policy.aio.get_bearer_token_provider(Issuer(), SCOPE, on_refresh=events.append)
    await provider()
    await provider()
    assert [(event.scopes, event.background, event.outcome) for event in events] == [
        ((SCOPE,), False, RefreshOutcome.NEW_TOKEN)
    ]


async def test_the_async_provider_waits_for_a_new_token_under_min_validity(
    wall_clock: time_machine.Traveller,
) -> None:
    credential = Issuer()
    provider = bgrefresh_policy.aio.get_bearer_token_provider(credential, SCOPE, min_validity=200)
    assert await provider() == "token-1@home"
    wall_clock.shift(LIFETIME - 150)
    assert await provider() == "token-2@home"
    assert credential.finished == 2


@pytest.mark.parametrize(("options", "error", "named"), BAD_OPTIONS)
async def test_the_async_provider_refuses_bad_options(
    options: dict[str, Any], error: type[Exception], named: str
) -> None:
    credential = Issuer()
    with pytest.raises(error, match=named):
        bgrefresh_policy.aio.get_bearer_token_provider(credential, SCOPE, **options)
    assert credential.asked == []


@pytest.mark.parametrize(
    "make", [bgrefresh_policy.get_bearer_token_provider, bgrefresh_policy.aio.get_bearer_token_provider]
)
@pytest.mark.parametrize("keyword", ["foo", "min_valdity", "retrydelay"])
def test_a_provider_refuses_a_keyword_it_does_not_take(make: Any, keyword: str) -> None:
    # Keyword-only options, typed: a misspelt one is a TypeError here and a type checker's error.
    with pytest.raises(TypeError, match=keyword):
        make(object(), "https://cognitiveservices.azure.com/.default", **{keyword: 1})
