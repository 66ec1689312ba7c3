"""Bad input is refused at construction, naming the argument; odd credential answers are explained."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy
from tests.support import (
    FakeClock,
    LegacyCredential,
    ScriptedCredential,
    SyncLegacyCredential,
    SyncScriptedCredential,
    make_request,
)

SCOPE = "https://management.azure.com/.default"


def credential_for(policy_class: Any) -> ScriptedCredential | SyncScriptedCredential:
    """A credential of the kind ``policy_class`` calls: async for the async policy, sync for the sync one."""
    if policy_class is AsyncBackgroundRefreshTokenPolicy:
        return ScriptedCredential(clock=FakeClock())
    return SyncScriptedCredential(clock=FakeClock())


@pytest.fixture(params=[AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy])
def policy_class(request: pytest.FixtureRequest) -> Any:
    """Both policies validate their arguments with the same code; each is checked."""
    return request.param


def test_builds_outside_any_event_loop(policy_class: Any) -> None:
    policy: Any = policy_class(credential_for(policy_class), SCOPE)
    assert policy._token is None


def test_no_scope(policy_class: Any) -> None:
    with pytest.raises(ValueError, match="scopes"):
        policy_class(credential_for(policy_class))


@pytest.mark.parametrize("scope", [None, b"bytes", 42, ["list"]])
def test_scope_that_is_not_a_str(policy_class: Any, scope: Any) -> None:
    with pytest.raises(TypeError, match=re.escape("scopes[1]")):
        policy_class(credential_for(policy_class), SCOPE, scope)


def test_empty_scope(policy_class: Any) -> None:
    with pytest.raises(ValueError, match=re.escape("scopes[0]")):
        policy_class(credential_for(policy_class), "")


def test_credential_without_token_methods(policy_class: Any) -> None:
    with pytest.raises(TypeError, match=r"credential.*object has neither"):
        policy_class(object(), SCOPE)


def test_get_token_only_credential_is_accepted(policy_class: Any) -> None:
    legacy = LegacyCredential if policy_class is AsyncBackgroundRefreshTokenPolicy else SyncLegacyCredential
    policy_class(legacy(clock=FakeClock()), SCOPE)


@pytest.mark.parametrize("name", ["min_validity", "retry_delay", "refresh_timeout"])
@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf")])
def test_bad_numbers(policy_class: Any, name: str, value: float) -> None:
    options: dict[str, Any] = {name: value}
    with pytest.raises(ValueError, match=name):
        policy_class(credential_for(policy_class), SCOPE, **options)


@pytest.mark.parametrize("name", ["min_validity", "retry_delay", "refresh_timeout"])
@pytest.mark.parametrize("value", ["30", None, True, [1]])
def test_non_numbers(policy_class: Any, name: str, value: Any) -> None:
    options: dict[str, Any] = {name: value}
    with pytest.raises(TypeError, match=name):
        policy_class(credential_for(policy_class), SCOPE, **options)


def test_zero_refresh_timeout_is_refused_but_zero_delays_are_fine(policy_class: Any) -> None:
    with pytest.raises(ValueError, match="refresh_timeout"):
        policy_class(credential_for(policy_class), SCOPE, refresh_timeout=0)
    policy_class(credential_for(policy_class), SCOPE, min_validity=0, retry_delay=0)


def test_enable_cae_must_be_bool(policy_class: Any) -> None:
    with pytest.raises(TypeError, match="enable_cae"):
        policy_class(credential_for(policy_class), SCOPE, enable_cae="yes")


def test_options_are_keyword_only(policy_class: Any) -> None:
    # A second positional argument is a scope, never an option.
    with pytest.raises(TypeError, match=re.escape("scopes[1]")):
        policy_class(credential_for(policy_class), SCOPE, 60.0)


class _Returns:
    def __init__(self, value: Any) -> None:
        self.value = value

    async def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        return self.value


class _SyncReturns(_Returns):
    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        return self.value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "a-bare-token-string",
        {"token": "secret-in-dict", "expires_on": 1},
        AccessToken("secret", "soon"),  # type: ignore[arg-type]
        AccessToken(b"secret", 1),  # type: ignore[arg-type]
        AccessToken("secret", True),
        AccessTokenInfo("secret", 1, refresh_on="soon"),  # type: ignore[arg-type]
        AccessTokenInfo("secret", 1, refresh_on=True),
    ],
)
def test_credential_returning_a_non_token_gets_a_clear_error(policy_class: Any, value: Any) -> None:
    def request() -> None:
        if policy_class is AsyncBackgroundRefreshTokenPolicy:
            asyncio.run(policy_class(_Returns(value), SCOPE).on_request(make_request()))  # type: ignore[arg-type]
        else:
            policy_class(_SyncReturns(value), SCOPE).on_request(make_request())

    with pytest.raises(TypeError, match=r"credential\.get_token_info returned (\w+; expected|a token whose)") as caught:
        request()
    assert "secret" not in str(caught.value)
    assert "a-bare-token-string" not in str(caught.value)


def test_jitter_is_drawn_per_token_within_azure_cores_range(policy_class: Any) -> None:
    policy: Any = policy_class(credential_for(policy_class), SCOPE)
    jitters = {policy._store.cache(AccessToken("t", 1)).jitter for _ in range(200)}
    assert jitters <= set(range(61))
    assert len(jitters) > 1


@pytest.mark.parametrize(("typo", "meant"), [("min_valdity", "min_validity"), ("refresh_timout", "refresh_timeout")])
def test_a_misspelt_option_is_refused(policy_class: Any, typo: str, meant: str) -> None:
    options: dict[str, Any] = {typo: 5}
    with pytest.raises(TypeError, match=f"{typo!r}; did you mean {meant!r}"):
        policy_class(credential_for(policy_class), SCOPE, **options)


def test_other_keywords_pass_through_to_azure_core_as_before(policy_class: Any) -> None:
    policy_class(credential_for(policy_class), SCOPE, logging_enable=True, transport=None)
