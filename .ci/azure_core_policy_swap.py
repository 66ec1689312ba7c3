"""pytest plugin: azure-core's own bearer policy tests, run with this library's policies in their place.

Loaded by ``.ci/azure-core-policy-tests`` (``-p azure_core_policy_swap``) into a pytest run over
test modules taken from the installed azure-core's sdist, with their conftest files left out
(``--noconftest``: they start a Flask test server and import OpenTelemetry, which no bearer
policy test needs). Before any test module is imported, azure-core's
``AsyncBearerTokenCredentialPolicy`` and ``BearerTokenCredentialPolicy`` are replaced, in
``azure.core.pipeline.policies`` where the modules import them from, by subclasses of ours whose
``share_tokens`` defaults to False (``--share-tokens``: to True, the library's default).
azure-core's tests build a new policy on the same credential to check that it asks again; with
sharing on, the new policy reuses the token its credential already gave.

The tests of the behaviours the library changes on purpose are listed below, each with why: they
are marked ``xfail`` with the exception they must fail with, strict where the failure is certain,
so that a listed test that starts passing fails the run too.

In ``test_authentication*.py`` modules every test runs; in another module only the tests whose
source names a bearer policy (the rest need azure-core's test server). Those get a ``port``
fixture: a loopback HTTP server answering every GET with 200, in place of the Flask server.
"""

from __future__ import annotations

import http.server
import inspect
import threading
from collections.abc import Iterator
from typing import Any

import azure.core.pipeline.policies as azure_core_policies
import pytest

from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy, BackgroundRefreshTokenPolicy

_AZURE_CORE_ASYNC = azure_core_policies.AsyncBearerTokenCredentialPolicy
_AZURE_CORE_SYNC = azure_core_policies.BearerTokenCredentialPolicy
_NAMES = ("AsyncBearerTokenCredentialPolicy", "BearerTokenCredentialPolicy")
# The classes put in their place, for the check that the test modules took them.
_SWAPPED: pytest.StashKey[tuple[type[Any], type[Any]]] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--share-tokens",
        action="store_true",
        help="build the policies with the library's default share_tokens=True instead of False",
    )


def pytest_configure(config: pytest.Config) -> None:
    share = bool(config.getoption("share_tokens"))

    class AsyncPolicy(AsyncBackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
        def __init__(self, credential: Any, *scopes: str, share_tokens: bool = share, **kwargs: Any) -> None:
            super().__init__(credential, *scopes, share_tokens=share_tokens, **kwargs)

    class SyncPolicy(BackgroundRefreshTokenPolicy):  # type: ignore[type-arg]
        def __init__(self, credential: Any, *scopes: str, share_tokens: bool = share, **kwargs: Any) -> None:
            super().__init__(credential, *scopes, share_tokens=share_tokens, **kwargs)

    # The names azure-core's tests print in failures and ids; ours are a click away in the MRO.
    AsyncPolicy.__name__ = AsyncPolicy.__qualname__ = _NAMES[0]
    SyncPolicy.__name__ = SyncPolicy.__qualname__ = _NAMES[1]
    azure_core_policies.AsyncBearerTokenCredentialPolicy = AsyncPolicy  # type: ignore[misc]
    azure_core_policies.BearerTokenCredentialPolicy = SyncPolicy  # type: ignore[misc]
    swapped: tuple[type[Any], type[Any]] = (AsyncPolicy, SyncPolicy)
    config.stash[_SWAPPED] = swapped


def pytest_unconfigure(config: pytest.Config) -> None:
    azure_core_policies.AsyncBearerTokenCredentialPolicy = _AZURE_CORE_ASYNC  # type: ignore[misc]
    azure_core_policies.BearerTokenCredentialPolicy = _AZURE_CORE_SYNC  # type: ignore[misc]


def _whole_module(item: pytest.Item) -> bool:
    return item.path.name.startswith("test_authentication")


def _names_a_bearer_policy(item: pytest.Item) -> bool:
    function = getattr(item, "function", None)
    return function is not None and any(name in inspect.getsource(function) for name in _NAMES)


# The tests of behaviours the library changes on purpose (docs/how-it-works.rst, "azure-core's own
# tests"), by module and test function: each must fail, with this exception, or the run fails.
# What a difference is: the exception the test fails with, why, and whether it always fails.
Difference = tuple[type[BaseException], str, bool]
_EXPIRED: Difference = (
    AssertionError,
    "a token that arrives already expired is attached, as in azure-core, but held for retry_delay: the next "
    "request does not call the credential again at once (azure-core's policy calls it on every request, 3,600 "
    "calls an hour at a request a second when the machine's clock is ahead)",
    True,
)
_DIFFERENCES: dict[tuple[str, str], Difference] = {
    ("test_authentication.py", "test_bearer_policy_token_caching"): _EXPIRED,
    ("test_authentication.py", "test_bearer_policy_access_token_info_caching"): _EXPIRED,
    ("test_authentication_async.py", "test_bearer_policy_token_caching"): _EXPIRED,
    ("test_authentication_async.py", "test_bearer_policy_access_token_info_caching"): _EXPIRED,
}


def _mark_differences(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The two caching tests of each module fail at their expired-token step, before their refresh_on
    # step (where the background refresh, and azure-core 1.38.3's jitter on older releases, differ too).
    # With the default sharing they differ at their first step too: a new policy on the same credential
    # uses the token the first one got, so the credential is not called again.
    differences = _DIFFERENCES
    for item in items:
        name = getattr(item, "originalname", item.name)
        difference = differences.get((item.path.name, name))
        if difference is not None:
            raises, reason, strict = difference
            item.add_marker(pytest.mark.xfail(raises=raises, reason=reason, strict=strict))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    swapped = config.stash[_SWAPPED]
    # A test module that kept azure-core's classes (imported from elsewhere) would pass without
    # testing ours: refuse the run rather than report it green.
    for item in items:
        module = getattr(item, "module", None)
        for name, ours in zip(_NAMES, swapped, strict=True):
            held = getattr(module, name, ours)
            if held is not ours:
                raise pytest.UsageError(f"{item.path.name} holds azure-core's {name}, not the swapped class")
    kept = [item for item in items if _whole_module(item) or _names_a_bearer_policy(item)]
    dropped = [item for item in items if item not in kept]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    _mark_differences(config, items)


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"Hello, world!"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def port() -> Iterator[int]:
    """The port of a loopback server answering every GET with 200 (azure-core's fixture names its Flask server)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, name="azure-core-tests-server", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
