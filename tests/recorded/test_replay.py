"""Recorded-HTTP tests: the integration flows replayed from recordings/, deterministic despite background refreshes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import time_machine
import yaml

from tests.emulator.server import CLIENT_SECRET
from tests.recorded.conftest import MODE, RECORDINGS, Target, recorder
from tests.recorded.flows import cae_challenge, list_groups, refresh_cycle, sync_refresh_cycle
from tests.recorded.sanitize import SANITIZED_TOKEN, Sanitizer

REPEATS = (
    1 if MODE else int(__import__("os").environ.get("REPEATS", 20))
)  # replaying is cheap: prove it is deterministic


async def test_list_groups(target: Target) -> None:
    """Records ``list_groups.yaml``, which the recorded-tests guide replays as written."""
    with recorder(target).use_cassette("list_groups.yaml") as cassette:
        names = await list_groups(target)
        if not MODE:
            assert cassette.all_played
    if MODE != "azure":
        assert names == ["rg-alpha", "rg-beta"]


@pytest.mark.parametrize("attempt", range(REPEATS))
async def test_refresh_cycle(target: Target, wall_clock: time_machine.Traveller, attempt: int) -> None:
    with recorder(target).use_cassette("refresh_cycle.yaml") as cassette:
        names = await refresh_cycle(target, wall_clock)
        if not MODE:
            assert cassette.all_played
    assert len(names) == 2 + 20 + 1 if MODE != "azure" else len(names) > 2
    if MODE != "azure":
        assert names[:2] == ["rg-alpha", "rg-beta"]


@pytest.mark.parametrize("attempt", range(REPEATS))
def test_sync_refresh_cycle(sync_target: Target, wall_clock: time_machine.Traveller, attempt: int) -> None:
    with recorder(sync_target).use_cassette("sync_refresh_cycle.yaml") as cassette:
        names = sync_refresh_cycle(sync_target, wall_clock)
        if not MODE:
            assert cassette.all_played
    if MODE != "azure":
        assert names == ["rg-alpha", "rg-beta"] + ["rg-alpha"] * 9


@pytest.mark.skipif(MODE == "azure", reason="a CAE challenge cannot be provoked on demand in real Azure")
@pytest.mark.parametrize("attempt", range(REPEATS))
async def test_cae_challenge(target: Target, wall_clock: time_machine.Traveller, attempt: int) -> None:
    with recorder(target).use_cassette("cae_challenge.yaml") as cassette:
        assert await cae_challenge(target) == "rg-alpha"
        if not MODE:
            assert cassette.all_played


def _interactions() -> list[tuple[Path, dict[str, object]]]:
    found = []
    for path in sorted(RECORDINGS.glob("*.yaml")):
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            found.append((path, interaction))
    return found


def test_cassettes_hold_no_secret() -> None:
    interactions = _interactions()
    assert {path.name for path, _ in interactions} >= {
        "refresh_cycle.yaml",
        "cae_challenge.yaml",
        "sync_refresh_cycle.yaml",
        "list_groups.yaml",
    }
    for path in RECORDINGS.glob("*.yaml"):
        text = path.read_text()
        assert CLIENT_SECRET not in text, path
        assert "emulator-client-assertion-jwt" not in text, path
        assert "127.0.0.1" not in text, path
    tokens = 0
    for path, interaction in interactions:
        request: dict[str, object] = interaction["request"]  # type: ignore[assignment]
        headers: dict[str, list[str]] = request["headers"]  # type: ignore[assignment]
        for value in headers.get("Authorization", []):
            assert re.fullmatch(r"Bearer sanitized-token-\d+", value), (path, value)
            tokens += 1
        body = str(request.get("body") or "")
        for secret_field in ("client_secret", "client_assertion"):
            if secret_field in body:
                assert re.search(rf"{secret_field}'?[:=] ?'?REDACTED", body), (path, secret_field)
        response: dict[str, dict[str, str]] = interaction["response"]  # type: ignore[assignment]
        string = str(response["body"].get("string", ""))
        for token in re.findall(r'"access_token": "([^"]*)"', string):
            assert SANITIZED_TOKEN.fullmatch(token), (path, "unsanitized access token")
    assert tokens > 0  # the check above looked at real headers


class _Request:
    def __init__(self, uri: str, body: bytes | None, headers: dict[str, str]) -> None:
        self.uri, self.body, self.headers = uri, body, headers


def test_sanitizer_scrubs_secrets_tokens_hosts_and_ids() -> None:
    sanitizer = Sanitizer({"127.0.0.1:4443"}, {"real-tenant": "fake-tenant"})
    response: dict[str, Any] = {
        "body": {"string": b'{"access_token": "eyJ.real.jwt", "expires_in": 3600}'},
        "headers": {"Content-Length": ["55"]},
    }
    sanitizer.response(response)
    assert b"eyJ.real.jwt" not in response["body"]["string"]
    assert b'"sanitized-token-1"' in response["body"]["string"]
    token_request = sanitizer.request(
        _Request(
            "https://127.0.0.1:4443/real-tenant/oauth2/v2.0/token",
            b"grant_type=client_credentials&client_secret=s3cr3t&scope=x",
            {},
        )
    )
    assert token_request.uri == "https://login.replay.invalid/fake-tenant/oauth2/v2.0/token"
    assert token_request.body == b"grant_type=client_credentials&client_secret=REDACTED&scope=x"
    arm_request = sanitizer.request(
        _Request("https://127.0.0.1:4443/subscriptions/s", None, {"Authorization": "Bearer eyJ.real.jwt"})
    )
    assert arm_request.uri == "https://management.replay.invalid/subscriptions/s"
    assert arm_request.headers["Authorization"] == "Bearer sanitized-token-1"
    form_request = sanitizer.request(
        _Request("https://127.0.0.1:4443/t/token", {"client_secret": "s3cr3t", "tenant": "real-tenant"}, {})  # type: ignore[arg-type]
    )
    assert form_request.body == {"client_secret": "REDACTED", "tenant": "fake-tenant"}
    replayed = sanitizer.request(_Request("https://x/", None, {"Authorization": "Bearer sanitized-token-7"}))
    assert replayed.headers["Authorization"] == "Bearer sanitized-token-7"
