"""A refresh's error is logged without anything token-like in it: a token endpoint's answer cut off
mid-token, quoted by azure-core's DecodeError, must not put part of a token in a log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from azure.core.exceptions import DecodeError

from bgrefresh_policy._outcome import described
from tests.support import FakeClock, ScriptedCredential, make_request
from tests.unit.conftest import prime

PARTIAL = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQuYXp1cmUu"
TRACE_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


async def test_a_background_failure_quoting_part_of_a_token_logs_none_of_it(
    policy: Any, credential: ScriptedCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await prime(policy, clock)  # token-1, due
    credential.errors.append(DecodeError(f'Failed to decode {{"access_token": "{PARTIAL}'))
    with caplog.at_level(logging.DEBUG, logger="bgrefresh_policy"):
        await policy.on_request(make_request())
        await policy.wait_for_refreshes()
    (warning,) = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert "DecodeError" in warning.getMessage()
    assert "<redacted>" in warning.getMessage()
    assert not any(PARTIAL[:24] in record.getMessage() for record in caplog.records)


def test_what_is_not_token_like_stays_readable() -> None:
    error = RuntimeError(f"AADSTS700016: application not found. Trace ID: {TRACE_ID}")
    assert described(error) == f"RuntimeError: AADSTS700016: application not found. Trace ID: {TRACE_ID}"
    assert described(ValueError(f"body {PARTIAL}.sig")) == "ValueError: body <redacted>"
