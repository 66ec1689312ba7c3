"""What each import loads: a sync-only program never loads asyncio or trio, nor the async policy."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import typing
from typing import Any

import pytest

import bgrefresh_policy
import bgrefresh_policy.aio
from bgrefresh_policy._options import Unpack


def loaded_after(statement: str) -> set[str]:
    probe = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    return set(
        json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    )


def test_the_sync_policy_loads_neither_asyncio_nor_trio_nor_the_async_policy() -> None:
    # Older azure-core releases load asyncio themselves: what counts is what this package adds.
    azure_core = loaded_after("from azure.core.pipeline.policies import BearerTokenCredentialPolicy")
    loaded = loaded_after("from bgrefresh_policy import BackgroundRefreshTokenPolicy")
    assert "bgrefresh_policy._policy_sync" in loaded
    assert not (loaded - azure_core) & {
        "asyncio",
        "trio",
        "sniffio",
        "bgrefresh_policy._policy_async",
        "bgrefresh_policy._runners._asyncio",
    }


def test_the_async_policy_loads_its_runtime_only_when_a_request_needs_it() -> None:
    loaded = loaded_after("from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy")
    assert "bgrefresh_policy._policy_async" in loaded
    assert not loaded & {
        "trio",
        "sniffio",
        "difflib",
        "bgrefresh_policy._runners._asyncio",
        "bgrefresh_policy._policy_sync",
    }


def test_the_testing_module_loads_only_when_imported() -> None:
    assert not {name for name in loaded_after("import bgrefresh_policy") if name.startswith("bgrefresh_policy.testing")}
    loaded = loaded_after("from bgrefresh_policy.testing import FakeCredential")
    assert "bgrefresh_policy.testing" in loaded
    assert not loaded & {"trio", "sniffio", "bgrefresh_policy._policy_async"}  # the async fake's runtime waits


def test_the_package_names_both_policies_and_nothing_else() -> None:
    assert {"AsyncBackgroundRefreshTokenPolicy", "BackgroundRefreshTokenPolicy"} <= set(dir(bgrefresh_policy))
    assert bgrefresh_policy.BackgroundRefreshTokenPolicy.__name__ == "BackgroundRefreshTokenPolicy"
    with pytest.raises(AttributeError, match="no attribute 'NoSuchPolicy'"):
        bgrefresh_policy.NoSuchPolicy  # noqa: B018 - the lookup is the test


@pytest.mark.parametrize("policy", ["AsyncBackgroundRefreshTokenPolicy", "BackgroundRefreshTokenPolicy"])
def test_the_event_types_load_with_the_first_report_not_with_the_policy(policy: str) -> None:
    # Making RefreshEvent and TokenStatus (two dataclasses) costs milliseconds on every import.
    azure_core = loaded_after("from azure.core.pipeline.policies import BearerTokenCredentialPolicy")
    imported = loaded_after(f"from bgrefresh_policy import {policy}")
    assert not (imported - azure_core) & {"bgrefresh_policy._events", "dataclasses"}
    reported = loaded_after(
        "from azure.core.credentials import AccessTokenInfo\n"
        "from bgrefresh_policy import BackgroundRefreshTokenPolicy\n"
        "class Credential:\n"
        "    def get_token_info(self, *scopes, options=None): return AccessTokenInfo('t', 2**40)\n"
        "BackgroundRefreshTokenPolicy(Credential(), 'scope').token_status()"
    )
    assert "bgrefresh_policy._events" in reported


def _resolved(public: Any) -> str:
    """The repr of ``public``'s resolved annotations, those of the options an ``Unpack[...]`` names included."""
    hints = typing.get_type_hints(public)
    unpacked = [typing.get_args(hint)[0] for hint in hints.values() if typing.get_origin(hint) is Unpack]
    return repr([hints, *(typing.get_type_hints(options) for options in unpacked)])


@pytest.mark.parametrize(
    ("public", "named"),
    [
        (bgrefresh_policy.AsyncBackgroundRefreshTokenPolicy.__init__, "RefreshEvent"),
        (bgrefresh_policy.BackgroundRefreshTokenPolicy.__init__, "RefreshEvent"),
        (bgrefresh_policy.AsyncBackgroundRefreshTokenPolicy.token_status, "TokenStatus"),
        (bgrefresh_policy.BackgroundRefreshTokenPolicy.token_status, "TokenStatus"),
        (bgrefresh_policy.enable_background_refresh, "RefreshEvent"),
        (bgrefresh_policy.get_bearer_token_provider, "RefreshEvent"),
        (bgrefresh_policy.aio.get_bearer_token_provider, "RefreshEvent"),
        (bgrefresh_policy.BackgroundRefreshCredential.__init__, "RefreshEvent"),
        (bgrefresh_policy.aio.BackgroundRefreshCredential.__init__, "RefreshEvent"),
        (bgrefresh_policy.BackgroundRefreshCredential.token_status, "TokenStatus"),
    ],
)
def test_public_annotations_resolve_at_runtime(public: Any, named: str) -> None:
    # pydantic, typeguard and autodoc resolve them: the lazily loaded event types must resolve too.
    inspect.signature(public, eval_str=True)
    assert f"bgrefresh_policy._events.{named}" in _resolved(public)
