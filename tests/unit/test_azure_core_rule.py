"""azure-core's due rule where subclasses and tests read it: ``_refresh_jitter``, ``_token = X``, falsy refresh_on.

Judged on the wall clock, ``time.time()``, as azure-core's own policy is, and, where the installed
azure-core has the jittered rule (1.38.3+), against azure-core's own policy doing the same thing.
The clock is stopped (time-machine) half way through a second: a token assigned with
``int(time.time()) + left`` then has exactly ``left - 0.5`` seconds left when judged, however long
a loaded machine takes between the two.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from azure.core.credentials import AccessTokenInfo
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy
from bgrefresh_policy._key_state import CachedToken
from tests.support import ScriptedCredential, SyncScriptedCredential

SCOPE = "https://management.azure.com/.default"
OURS = [AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy]


@pytest.fixture(autouse=True)
def stopped_wall_clock() -> Iterator[None]:
    with time_machine.travel(1_800_000_000.5, tick=False):
        yield


def has_jittered_rule() -> bool:
    return hasattr(BearerTokenCredentialPolicy(SyncScriptedCredential(clock=time.time), SCOPE), "_refresh_jitter")


jittered_azure_core = pytest.mark.skipif(not has_jittered_rule(), reason="azure-core < 1.38.3 has no jitter")


def make(policy_class: Any, **script: Any) -> Any:
    asynchronous = policy_class in (AsyncBackgroundRefreshTokenPolicy, AsyncBearerTokenCredentialPolicy)
    credential = (ScriptedCredential if asynchronous else SyncScriptedCredential)(clock=time.time, **script)
    return policy_class(credential, SCOPE)


def need_new_token(policy: Any) -> bool:
    # A method in the async policies, a property in the sync ones: azure-core's own difference.
    answer = policy._need_new_token
    return bool(answer() if callable(answer) else answer)


def request_token(policy: Any) -> None:
    outcome = policy._request_token(SCOPE)
    if asyncio.iscoroutine(outcome):
        asyncio.run(outcome)


@pytest.mark.parametrize("policy_class", OURS)
def test_a_token_assigned_to_a_new_policy_is_judged_with_jitter_zero(policy_class: Any) -> None:
    # azure-core starts with _refresh_jitter = 0 and keeps it for a token assigned with _token = X:
    # 299 s from expiry is then due, every time.
    answers = set()
    for _ in range(200):
        policy = make(policy_class)
        policy._token = AccessTokenInfo("assigned", int(time.time()) + 299)
        answers.add(need_new_token(policy))
        assert policy._refresh_jitter == 0
    assert answers == {True}


@jittered_azure_core
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (AsyncBackgroundRefreshTokenPolicy, AsyncBearerTokenCredentialPolicy),
        (BackgroundRefreshTokenPolicy, BearerTokenCredentialPolicy),
    ],
)
@pytest.mark.parametrize("left", [299, 270, 241, 239, 400])
def test_same_answer_as_azure_core_after_request_then_assign(ours: Any, theirs: Any, left: int) -> None:
    for seed in range(40):
        answers = []
        for policy_class in (ours, theirs):
            policy = make(policy_class)
            random.seed(seed)  # both draw the same jitter in _request_token
            request_token(policy)
            policy._token = AccessTokenInfo("assigned", int(time.time()) + left)  # keeps that jitter
            answers.append((need_new_token(policy), policy._refresh_jitter))
        assert answers[0] == answers[1], f"seed {seed}"


@pytest.mark.parametrize("policy_class", OURS)
def test_refresh_jitter_is_the_jitter_drawn_for_the_requested_token(policy_class: Any) -> None:
    jitters = set()
    for _ in range(60):
        policy = make(policy_class)
        request_token(policy)
        cached = policy._store.current(policy._token_key)
        assert policy._refresh_jitter == cached.jitter
        jitters.add(policy._refresh_jitter)
    assert jitters <= set(range(61))
    assert len(jitters) > 1  # drawn, not the initial 0


@pytest.mark.parametrize("policy_class", OURS)
def test_assigning_refresh_jitter_changes_how_the_token_is_judged(policy_class: Any) -> None:
    policy = make(policy_class)
    policy._token = AccessTokenInfo("assigned", int(time.time()) + 295)
    assert need_new_token(policy)  # jitter 0: due with under 300 s left
    policy._refresh_jitter = 10
    assert not need_new_token(policy)  # due only with under 290 s left
    policy._token = None
    policy._token = AccessTokenInfo("again", int(time.time()) + 295)
    assert policy._refresh_jitter == 10  # kept across the dropped token, as azure-core's attribute is
    assert not need_new_token(policy)


@pytest.mark.parametrize("refresh_on", [0, 0.0, None])
def test_a_falsy_refresh_on_follows_the_refresh_window(refresh_on: float | None) -> None:
    now = 1_800_000_000.0
    token = CachedToken(AccessTokenInfo("t", int(now + 3600), refresh_on=refresh_on), jitter=0, serial=1)  # type: ignore[arg-type]
    assert not token.is_due(now)  # refresh_on=0 is not "due since 1970"
    assert not token.is_due(now + 3300)  # exactly 300 s left
    assert token.is_due(now + 3301)  # under 300 s left
    jittered = CachedToken(AccessTokenInfo("t", int(now + 3600), refresh_on=refresh_on), jitter=60, serial=2)  # type: ignore[arg-type]
    assert not jittered.is_due(now + 3360)
    assert jittered.is_due(now + 3361)


@jittered_azure_core
@pytest.mark.parametrize("left", [3600, 301, 299, 100])
def test_a_falsy_refresh_on_gets_azure_cores_answer(left: int) -> None:
    for policy_class in OURS:
        ours, theirs = make(policy_class), make(BearerTokenCredentialPolicy)
        for policy in (ours, theirs):
            policy._token = AccessTokenInfo("t", int(time.time()) + left, refresh_on=0)
        assert need_new_token(ours) == need_new_token(theirs) == (left < 300)


@pytest.mark.parametrize("refresh_on", [None, 1_800_000_500])
def test_no_jitter_makes_an_expired_token_look_fresh(refresh_on: int | None) -> None:
    now = 1_800_000_000.0
    token = CachedToken(AccessTokenInfo("t", int(now + 100), refresh_on=refresh_on), jitter=1000, serial=1)
    assert token.fresh_until < token.expires_on  # the hot path's one comparison never passes expiry
    assert token.is_due(now + 100)
