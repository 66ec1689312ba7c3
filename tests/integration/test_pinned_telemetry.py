"""OpenTelemetry beyond asyncio: the sync and trio background spans' link to the request, a refresh's
duration in its event and the duration histogram, a timed-out refresh's error span, the tenant.

Each test reads the real SDK's in-memory exporters of providers of its own, handed to the policies'
telemetry for the test: OpenTelemetry allows one global provider per process, which
``test_opentelemetry`` installs, so these tests neither depend on it nor disturb it.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import StatusCode

from bgrefresh_policy import RefreshEvent, RefreshOutcome, _telemetry
from bgrefresh_policy._telemetry import SPAN_NAME, Telemetry
from tests.support import (
    HANG_GUARD,
    FakeClock,
    LoopClock,
    ScriptedCredential,
    SyncScriptedCredential,
    make_request,
    refresh_begins,
)
from tests.sync.conftest import attach, make_sync_policy, start_stuck_refresh
from tests.sync.conftest import prime as prime_sync
from tests.unit.conftest import SCOPE, make_policy, prime

pytestmark = pytest.mark.integration

BACKGROUND = "background"


class _OwnRandomIds(IdGenerator):
    """Span and trace ids from a generator of its own, not the ``random`` module other tests seed."""

    def __init__(self) -> None:
        self._random = random.Random()

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


class _TraceOn:
    """``opentelemetry.trace`` as the policies' telemetry uses it, its tracers from ``provider``."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider

    def get_tracer(self, name: str, version: str | None = None) -> trace.Tracer:
        return self._provider.get_tracer(name, version)

    def __getattr__(self, name: str) -> Any:
        return getattr(trace, name)


@dataclass
class Recorded:
    """What the policies' telemetry exported during the test, and the test's tracer for request spans."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer: trace.Tracer

    def ours(self) -> list[ReadableSpan]:
        return [span for span in self.spans.get_finished_spans() if span.name == SPAN_NAME]

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        found: list[Any] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                found += [point for metric in scope.metrics if metric.name == name for point in metric.data.data_points]
        return found


@pytest.fixture
def otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorded]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider(id_generator=_OwnRandomIds(), shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(
        metric_readers=[reader], exemplar_filter=AlwaysOffExemplarFilter(), shutdown_on_exit=False
    )
    with monkeypatch.context() as building:
        building.setattr(metrics, "get_meter", meter_provider.get_meter)
        ours = Telemetry()  # its instruments, as the library makes them, on the test's meter provider
    monkeypatch.setattr(ours, "_trace", _TraceOn(tracer_provider))
    monkeypatch.setattr(_telemetry, "_TELEMETRY", ours)
    yield Recorded(spans, reader, tracer_provider.get_tracer("test"))
    tracer_provider.shutdown()
    meter_provider.shutdown()


def assert_linked_root(span: ReadableSpan, request_span: trace.Span) -> None:
    """A background refresh's span: a trace of its own, linked to the span of the request that started it."""
    assert span.parent is None
    requester = request_span.get_span_context()
    assert [link.context.span_id for link in span.links] == [requester.span_id]
    assert [link.context.trace_id for link in span.links] == [requester.trace_id]
    assert span.context is not None
    assert span.context.trace_id != requester.trace_id
    assert span.attributes is not None
    assert span.attributes["bgrefresh.refresh.mode"] == BACKGROUND


# --- the link to the request, off asyncio ------------------------------------------------


def test_a_sync_background_refresh_is_a_root_span_linked_to_the_request(otel: Recorded) -> None:
    clock = FakeClock()
    policy = make_sync_policy(SyncScriptedCredential(clock=clock), clock)
    try:
        prime_sync(policy, clock)
        otel.spans.clear()
        with otel.tracer.start_as_current_span("GET /subscriptions") as request_span:
            attach(policy)  # starts the refresh on a thread of its own
        assert policy.wait_for_refreshes(HANG_GUARD)
    finally:
        policy.close()
    (span,) = otel.ours()
    assert_linked_root(span, request_span)


def test_a_trio_background_refresh_is_a_root_span_linked_to_the_request(otel: Recorded) -> None:
    clock = FakeClock()
    policy = make_policy(ScriptedCredential(clock=clock), clock)
    request_spans: list[trace.Span] = []

    async def main() -> None:
        await prime(policy, clock)
        otel.spans.clear()
        with otel.tracer.start_as_current_span("GET /subscriptions") as request_span:
            await policy.on_request(make_request())  # starts the refresh as a trio system task
        request_spans.append(request_span)
        with trio.fail_after(HANG_GUARD):
            await policy.wait_for_refreshes()
        await policy.close()

    trio.run(main)
    (span,) = otel.ours()
    assert_linked_root(span, request_spans[0])


# --- duration, time-outs, tenant ---------------------------------------------------------


async def test_a_refreshs_duration_is_in_its_event_and_in_the_duration_histogram(otel: Recorded) -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    events: list[RefreshEvent] = []
    policy = make_policy(credential, clock, on_refresh=events.append)
    await prime(policy, clock)  # an inline refresh, answered at once
    credential.gate = asyncio.Event()
    await policy.on_request(make_request())  # a background one, held in the credential
    await refresh_begins()
    started = clock()
    clock.advance(2.5)  # it takes 2.5 s, by the policy's clock
    credential.gate.set()
    await policy.wait_for_refreshes()
    inline, background = events
    assert (inline.started_at, inline.ended_at, inline.duration) == (started - 3400, started - 3400, 0)
    assert (background.started_at, background.ended_at) == (started, started + 2.5)
    assert background.duration == 2.5
    recorded = {
        dict(point.attributes)["bgrefresh.refresh.mode"]: (point.count, point.sum)
        for point in otel.points("bgrefresh.refresh.duration")
    }
    assert recorded == {"inline": (1, 0), BACKGROUND: (1, 2.5)}
    await policy.close()


async def test_a_timed_out_refresh_is_an_error_span_naming_the_timeout(
    otel: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock, refresh_timeout=5)
    await prime(policy, clock)
    credential.gate = asyncio.Event()  # the background refresh hangs
    await policy.on_request(make_request())
    await refresh_begins()
    await loop_clock.advance(5)  # refresh_timeout: cancelled, timed out
    (span,) = [span for span in otel.ours() if (span.attributes or {}).get("bgrefresh.refresh.mode") == BACKGROUND]
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["bgrefresh.refresh.outcome"] == RefreshOutcome.TIMED_OUT.value
    assert span.attributes["error.type"] == "RefreshTimeoutError"
    counted = [dict(point.attributes) for point in otel.points("bgrefresh.refreshes")]
    assert {"bgrefresh.refresh.mode": BACKGROUND, "bgrefresh.refresh.outcome": "timed_out"} in [
        {key: value for key, value in attributes.items() if key != "error.type"} for attributes in counted
    ]
    credential.gate.set()
    await policy.close()


def test_a_sync_refresh_given_up_at_refresh_timeout_is_an_error_span_naming_the_timeout(otel: Recorded) -> None:
    clock = FakeClock()
    credential = SyncScriptedCredential(clock=clock)
    policy = make_sync_policy(credential, clock, refresh_timeout=0.05)
    gate = threading.Event()
    try:
        gate = start_stuck_refresh(policy, credential, clock)  # a refresh held on its thread
        credential.gate = None
        clock.advance(150)  # 50 s left, under min_validity: a request waits for it, up to refresh_timeout
        assert attach(policy) == "Bearer token-1"  # gave up on it
    finally:
        gate.set()
        policy.close()
    (span,) = [span for span in otel.ours() if (span.attributes or {}).get("bgrefresh.refresh.mode") == BACKGROUND]
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["bgrefresh.refresh.outcome"] == RefreshOutcome.TIMED_OUT.value
    assert span.attributes["error.type"] == "RefreshTimedOut"


async def test_a_refresh_for_a_tenant_carries_it_on_its_span(otel: Recorded) -> None:
    clock = FakeClock()
    policy = make_policy(ScriptedCredential(clock=clock), clock)
    await policy.on_request(make_request())  # the policy's own key: no tenant
    await policy.authorize_request(make_request(), SCOPE, tenant_id="tenant-a")
    without, with_tenant = otel.ours()
    assert without.attributes is not None
    assert "bgrefresh.token.tenant_id" not in without.attributes
    assert with_tenant.attributes is not None
    assert with_tenant.attributes["bgrefresh.token.tenant_id"] == "tenant-a"
    assert with_tenant.attributes["bgrefresh.token.scopes"] == (SCOPE,)
