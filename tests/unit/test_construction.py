"""Bad input is refused at construction, naming the argument; odd credential answers are explained."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from tests.support import FakeClock, LegacyCredential, ScriptedCredential, make_request

SCOPE = "https://management.azure.com/.default"


def credential() -> ScriptedCredential:
    return ScriptedCredential(clock=FakeClock())


def test_builds_outside_any_event_loop() -> None:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(credential(), SCOPE)
    assert policy._token is None


def test_no_scope() -> None:
    with pytest.raises(ValueError, match="scopes"):
        AsyncBackgroundRefreshTokenPolicy(credential())


@pytest.mark.parametrize("scope", [None, b"bytes", 42, ["list"]])
def test_scope_that_is_not_a_str(scope: Any) -> None:
    with pytest.raises(TypeError, match=re.escape("scopes[1]")):
        AsyncBackgroundRefreshTokenPolicy(credential(), SCOPE, scope)


def test_empty_scope() -> None:
    with pytest.raises(ValueError, match=re.escape("scopes[0]")):
        AsyncBackgroundRefreshTokenPolicy(credential(), "")


def test_credential_without_token_methods() -> None:
    with pytest.raises(TypeError, match=r"credential.*object has neither"):
        AsyncBackgroundRefreshTokenPolicy(object(), SCOPE)  # type: ignore[arg-type]


def test_get_token_only_credential_is_accepted() -> None:
    AsyncBackgroundRefreshTokenPolicy(LegacyCredential(clock=FakeClock()), SCOPE)


@pytest.mark.parametrize("name", ["min_validity", "retry_delay", "refresh_timeout"])
@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf")])
def test_bad_numbers(name: str, value: float) -> None:
    options: dict[str, Any] = {name: value}
    with pytest.raises(ValueError, match=name):
        AsyncBackgroundRefreshTokenPolicy(credential(), SCOPE, **options)


@pytest.mark.parametrize("name", ["min_validity", "retry_delay", "refresh_timeout"])
@pytest.mark.parametrize("value", ["30", None, True, [1]])
def test_non_numbers(name: str, value: Any) -> None:
    options: dict[str, Any] = {name: value}
    with pytest.raises(TypeError, match=name):
        AsyncBackgroundRefreshTokenPolicy(credential(), SCOPE, **options)


def test_zero_refresh_timeout_is_refused_but_zero_delays_are_fine() -> None:
    with pytest.raises(ValueError, match="refresh_timeout"):
        AsyncBackgroundRefreshTokenPolicy(credential(), SCOPE, refresh_timeout=0)
    AsyncBackgroundRefreshTokenPolicy(credential(), SCOPE, min_validity=0, retry_delay=0)


def test_enable_cae_must_be_bool() -> None:
    with pytest.raises(TypeError, match="enable_cae"):
        AsyncBackgroundRefreshTokenPolicy(credential(), SCOPE, enable_cae="yes")  # type: ignore[arg-type]


def test_options_are_keyword_only() -> None:
    # A second positional argument is a scope, never an option.
    with pytest.raises(TypeError, match=re.escape("scopes[1]")):
        AsyncBackgroundRefreshTokenPolicy(credential(), SCOPE, 60.0)  # type: ignore[arg-type]


class _Returns:
    def __init__(self, value: Any) -> None:
        self.value = value

    async def get_token_info(self, *scopes: str, options: Any = None) -> Any:
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
def test_credential_returning_a_non_token_gets_a_clear_error(value: Any) -> None:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(_Returns(value), SCOPE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"credential\.get_token_info returned (\w+; expected|a token whose)") as caught:
        asyncio.run(policy.on_request(make_request()))
    assert "secret" not in str(caught.value)
    assert "a-bare-token-string" not in str(caught.value)


def test_jitter_is_drawn_per_token_within_azure_cores_range() -> None:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(credential(), SCOPE)
    jitters = {policy._store.cache(AccessToken("t", 1)).jitter for _ in range(200)}
    assert jitters <= set(range(61))
    assert len(jitters) > 1


@pytest.mark.parametrize(("typo", "meant"), [("min_valdity", "min_validity"), ("refresh_timout", "refresh_timeout")])
def test_a_misspelt_option_is_refused(typo: str, meant: str) -> None:
    options: dict[str, Any] = {typo: 5}
    with pytest.raises(TypeError, match=f"{typo!r}; did you mean {meant!r}"):
        AsyncBackgroundRefreshTokenPolicy(credential(), SCOPE, **options)


def test_other_keywords_pass_through_to_azure_core_as_before() -> None:
    AsyncBackgroundRefreshTokenPolicy(credential(), SCOPE, logging_enable=True, transport=None)
