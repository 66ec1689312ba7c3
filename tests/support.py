"""Test doubles that implement the Azure protocols (not mocks of Azure libraries).

``ScriptedCredential`` is a user-written credential of the kind the policy must accept;
``ScriptedTransport`` is an ``AsyncHttpTransport`` that answers in memory so unit tests run
azure-core's real pipeline without sockets. Real azure-identity credentials and the real
aiohttp transport are exercised by the integration tests.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import AsyncHttpResponse as LegacyAsyncHttpResponse
from azure.core.pipeline.transport import AsyncHttpTransport, HttpTransport
from azure.core.pipeline.transport import HttpResponse as LegacyHttpResponse
from azure.core.rest import HttpRequest
from azure.core.utils import case_insensitive_dict

T = TypeVar("T")

# Seconds a test waits for what must happen anyway before it calls it a hang. Never evidence of
# speed: a test shows order (what finished while something else was still held), not timing;
# this is generous so that a loaded machine cannot trip it.
HANG_GUARD = 30.0


class FakeClock:
    """Unix time that moves only when the test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Call:
    scopes: tuple[str, ...]
    options: dict[str, Any]


@dataclass
class _Script:
    """What a scripted credential answers, whether its callers await or block."""

    clock: Callable[[], float]
    lifetime: float = 3600
    refresh_in: float | None = None
    gate: Any = None
    errors: list[BaseException] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    finished: int = 0
    cancelled: int = 0
    fixed_expiry: float | None = None

    def _called(self, scopes: tuple[str, ...], options: TokenRequestOptions | None) -> int:
        self.calls.append(Call(scopes, dict(options or {})))
        return len(self.calls)

    def _answer(self, number: int) -> AccessTokenInfo:
        if self.errors:
            raise self.errors.pop(0)
        self.finished += 1
        now = self.clock()
        expires_on = self.fixed_expiry if self.fixed_expiry is not None else now + self.lifetime
        refresh_on = int(now + self.refresh_in) if self.refresh_in is not None else None
        return AccessTokenInfo(f"token-{number}", int(expires_on), refresh_on=refresh_on)


@dataclass
class ScriptedCredential(_Script):
    """An ``AsyncSupportsTokenInfo`` credential whose answers each test scripts.

    Every call is recorded. A call waits on ``gate`` (any object with ``async wait()``:
    ``asyncio.Event`` or ``trio.Event``) when one is set, then raises the next of ``errors``
    if any, else returns ``token-N`` valid for ``lifetime`` seconds from ``clock()``.
    """

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        number = self._called(scopes, options)
        try:
            if self.gate is not None:
                await self.gate.wait()
        except BaseException:
            self.cancelled += 1
            raise
        return self._answer(number)

    def __getstate__(self) -> dict[str, Any]:
        # A gate belongs to a running loop; a copy starts ungated.
        return {**self.__dict__, "gate": None}

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> ScriptedCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


@dataclass
class LegacyCredential:
    """An ``AsyncTokenCredential`` with ``get_token`` only, as older user code has."""

    clock: Callable[[], float]
    calls: list[tuple[tuple[str, ...], dict[str, Any]]] = field(default_factory=list)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, kwargs))
        return AccessToken(f"legacy-{len(self.calls)}", int(self.clock() + 3600))

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> LegacyCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


def make_request(url: str = "https://management.example.test/subscriptions") -> PipelineRequest[HttpRequest]:
    return PipelineRequest(HttpRequest("GET", url), PipelineContext(None))


def bearer(request: PipelineRequest[HttpRequest]) -> str:
    return str(request.http_request.headers["Authorization"])


def claims_challenge(claims: str) -> str:
    encoded = base64.urlsafe_b64encode(claims.encode()).decode().rstrip("=")
    return (
        'Bearer realm="", authorization_uri="https://login.example.test", '
        f'error="insufficient_claims", claims="{encoded}"'
    )


class _ScriptedResponse:
    """Status and headers as scripted, no body; mixed into azure-core's sync and async response types."""

    def __init__(self, request: Any, status: int, headers: dict[str, str]) -> None:
        super().__init__(request, None)  # type: ignore[call-arg]
        self.status_code = status
        self.headers = case_insensitive_dict(headers)
        self.reason: str | None = "scripted"
        self.content_type: str | None = None

    def body(self) -> bytes:
        return b""


class _Response(_ScriptedResponse, LegacyAsyncHttpResponse):
    pass


Responder = Callable[[Any], Awaitable[tuple[int, dict[str, str]]]]


class ScriptedTransport(AsyncHttpTransport):  # type: ignore[type-arg]
    """Answers each request with what ``respond(request)`` says; records the Authorization headers."""

    def __init__(self, respond: Responder | None = None) -> None:
        self.respond = respond
        self.seen: list[tuple[str, str | None]] = []

    async def send(self, request: Any, **kwargs: Any) -> Any:
        self.seen.append((request.url, request.headers.get("Authorization")))
        status, headers = (200, {}) if self.respond is None else await self.respond(request)
        return _Response(request, status, headers)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> ScriptedTransport:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


# --- the same for sync clients ----------------------------------------------------------


@dataclass
class SyncScriptedCredential(_Script):
    """A sync ``SupportsTokenInfo`` credential, as :class:`ScriptedCredential`; ``gate`` is a ``threading.Event``.

    Calls come from several threads at once; ``threads`` records which one made each call.
    """

    threads: list[threading.Thread] = field(default_factory=list)
    gates: list[threading.Event] = field(default_factory=list)  # every gate a call waited on
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        with self._lock:
            number = self._called(scopes, options)
            self.threads.append(threading.current_thread())
            gate = self.gate  # taken at the call: a test may ungate later calls while this one waits
            if gate is not None:
                self.gates.append(gate)
        if gate is not None:
            gate.wait()
        with self._lock:
            return self._answer(number)

    def close(self) -> None:
        pass

    def __enter__(self) -> SyncScriptedCredential:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def __getstate__(self) -> dict[str, Any]:
        state = {**self.__dict__, "gate": None}
        del state["_lock"], state["threads"], state["gates"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock(), threads=[], gates=[])


@dataclass
class SyncLegacyCredential:
    """A sync ``TokenCredential`` with ``get_token`` only."""

    clock: Callable[[], float]
    calls: list[tuple[tuple[str, ...], dict[str, Any]]] = field(default_factory=list)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, kwargs))
        return AccessToken(f"legacy-{len(self.calls)}", int(self.clock() + 3600))


class _SyncResponse(_ScriptedResponse, LegacyHttpResponse):
    pass


SyncResponder = Callable[[Any], tuple[int, dict[str, str]]]


class SyncScriptedTransport(HttpTransport):  # type: ignore[type-arg]
    """A sync ``HttpTransport`` that answers as ``respond(request)`` says; thread-safe records."""

    def __init__(self, respond: SyncResponder | None = None) -> None:
        self.respond = respond
        self.seen: list[tuple[str, str | None]] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.seen.append((request.url, request.headers.get("Authorization")))  # list.append is atomic
        status, headers = (200, {}) if self.respond is None else self.respond(request)
        return _SyncResponse(request, status, headers)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> SyncScriptedTransport:
        return self

    def __exit__(self, *args: object) -> None:
        pass


def eventually(condition: Callable[[], object], *, timeout: float = HANG_GUARD) -> None:
    """Wait until ``condition()`` holds (another thread's progress); a hang after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


async def eventually_async(condition: Callable[[], object], *, timeout: float = HANG_GUARD) -> None:
    """Poll ``condition()`` from the event loop until it holds: progress made by I/O (the emulator's
    sockets) or by other threads; a hang after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


async def refresh_begins() -> None:
    """Let the background refresh a request has just started take its first step: the credential call.

    On Python 3.12+ it has taken it already (an eager task, started before ``on_request``
    returned); on 3.10 and 3.11 it takes it on the event loop's next pass, which this yields for.
    """
    await asyncio.sleep(0)


async def loop_until(condition: Callable[[], object], *, turns: int = 10_000) -> None:
    """Yield to the event loop until ``condition()`` holds: the progress of tasks on this loop.

    Each turn is one ``asyncio.sleep(0)``, in which every task that is ready runs one step, in
    the order they became ready; nothing here depends on time. ``turns`` guards against a hang.
    """
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"condition not met after {turns} turns of the event loop")


class LoopClock:
    """The running asyncio loop's clock, stopped: its timers (``call_later``, ``asyncio.sleep(n)``,
    ``wait_for`` deadlines, the policy's ``refresh_timeout``) fire only when the test moves it on.

    :param monkeypatch: restores the loop's own clock when the test ends.
    """

    def __init__(self, monkeypatch: Any) -> None:
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time()
        monkeypatch.setattr(self.loop, "time", lambda: self.now)

    async def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` (and a millisecond) on; return once the loop has run every timer now due.

        The loop runs due timers in deadline order, and what they schedule before what is
        scheduled after; a marker timer armed here, later than any timer due by ``seconds``,
        tells when they have run.
        """
        target = self.now + seconds
        fired: asyncio.Future[None] = self.loop.create_future()
        self.loop.call_at(target + 0.0005, fired.set_result, None)
        self.now = target + 0.001
        await fired
        await asyncio.sleep(0)  # and the steps of the tasks those timers woke or cancelled


class Threads:
    """``work(i)`` on ``count`` threads released together, while the test goes on to act.

    For tests that must see threads block (on a gate the test holds) before letting them go.
    The threads are daemons: one left blocked by a failing test cannot keep the run alive.
    """

    def __init__(self, count: int, work: Callable[[int], object]) -> None:
        self._results: dict[int, object] = {}
        self._errors: list[BaseException] = []
        barrier = threading.Barrier(count)

        def run(index: int) -> None:
            try:
                barrier.wait(HANG_GUARD)
                self._results[index] = work(index)
            except BaseException as exc:  # noqa: BLE001 - reported by results()
                self._errors.append(exc)

        self._threads = [
            threading.Thread(target=run, args=(i,), name=f"test worker {i}", daemon=True) for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def finished(self) -> int:
        """How many have returned (or raised)."""
        return sum(1 for thread in self._threads if not thread.is_alive())

    def results(self, timeout: float = HANG_GUARD) -> list[Any]:
        """Wait for every thread; their results, in order.

        :raises Exception: the first error a thread raised.
        """
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), f"{thread.name} still running"
        if self._errors:
            raise self._errors[0]
        return [self._results[i] for i in range(len(self._threads))]


def blocked_in_wait(*events: Any) -> int:
    """How many threads are blocked in ``wait()`` on these ``threading.Event`` objects.

    An Event keeps its waiters in its condition's private list; a thread is in it from just
    before it blocks until it is woken, so this counts the threads that have arrived and wait.
    """
    return sum(len(event._cond._waiters) for event in set(events))


def in_threads(count: int, work: Callable[[int], T], *, timeout: float = HANG_GUARD) -> list[T]:
    """Run ``work(i)`` on ``count`` threads released at once; their results, in order.

    :raises Exception: the first error a thread raised.
    """
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait(timeout)
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(run, i) for i in range(count)]
        return [future.result(timeout) for future in futures]


def assert_nothing_secret(records: list[logging.LogRecord], printed: list[str], secrets: set[str]) -> None:
    """No secret in any log record (message, exception text, traceback) or in ``printed``."""
    logged = [
        r.getMessage() + (r.exc_text or "") + ("".join(traceback.format_exception(*r.exc_info)) if r.exc_info else "")
        for r in records
    ]
    assert len(logged) > 30  # the check looks at real traffic
    for text in logged + printed:
        for secret in secrets:
            assert secret not in text, f"a secret appears in: {text[:200]}"
