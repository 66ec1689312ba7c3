"""A background refresh thread that the credential ends with any exception is a failed attempt, nothing more."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import FakeClock, SyncScriptedCredential
from tests.sync.conftest import attach, prime


class CredentialInterrupt(BaseException):
    pass


@pytest.fixture
def uncaught() -> Iterator[list[threading.ExceptHookArgs]]:
    """What reaches threading.excepthook: an exception no one retrieves."""
    seen: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook
    threading.excepthook = seen.append
    yield seen
    threading.excepthook = previous


@pytest.mark.parametrize(
    "raised",
    [KeyboardInterrupt(), SystemExit(3), CredentialInterrupt(), OSError("down")],
    ids=lambda e: type(e).__name__,
)
def test_any_exception_in_a_background_thread_is_logged_once_and_backs_off(
    raised: BaseException,
    policy: Any,
    credential: SyncScriptedCredential,
    clock: FakeClock,
    uncaught: list[threading.ExceptHookArgs],
    caplog: pytest.LogCaptureFixture,
) -> None:
    prime(policy, clock)
    credential.errors.append(raised)
    with caplog.at_level(logging.DEBUG, logger="bgrefresh_policy"):
        seen = [attach(policy)]
        assert policy.wait_for_refreshes(30)
        seen += [attach(policy) for _ in range(3)]
        assert len(credential.calls) == 2  # backing off
        clock.advance(30)
        attach(policy)
        assert policy.wait_for_refreshes(30)
        seen.append(attach(policy))
    assert seen == ["Bearer token-1"] * 4 + ["Bearer token-3"]
    assert uncaught == []
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert type(raised).__name__ in warnings[0].getMessage()
