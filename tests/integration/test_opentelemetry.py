"""OpenTelemetry: spans and metrics of every credential call, read back from the real SDK's in-memory exporters.

The SDK's tracer and meter providers are installed once for the session (OpenTelemetry allows
one global provider per process); each test clears what was exported.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import StatusCode

from bgrefresh_policy._telemetry import SPAN_NAME
from tests.support import FakeClock, ScriptedCredential, make_request, refresh_begins
from tests.unit.conftest import SCOPE, make_policy, prime

pytestmark = pytest.mark.integration

_SPANS = InMemorySpanExporter()
_METRICS = InMemoryMetricReader()


class _OwnRandomIds(IdGenerator):
    """Span and trace ids from a generator of its own: the SDK's default draws from the ``random``
    module, whose sequence other tests seed and compare (azure-core's and our jitter)."""

    def __init__(self) -> None:
        self._random = random.Random()

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


@pytest.fixture(scope="session")
def _providers() -> None:
    provider = TracerProvider(id_generator=_OwnRandomIds())
    provider.add_span_processor(SimpleSpanProcessor(_SPANS))
    trace.set_tracer_provider(provider)
    # No exemplars: their reservoirs sample with the random module too.
    metrics.set_meter_provider(MeterProvider(metric_readers=[_METRICS], exemplar_filter=AlwaysOffExemplarFilter()))


@pytest.fixture
def exported(_providers: None) -> InMemorySpanExporter:
    _SPANS.clear()  # the metrics are cumulative: tests compare what they add
    return _SPANS


def ours(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == SPAN_NAME]


def points(name: str) -> list[Any]:
    data = _METRICS.get_metrics_data()
    assert data is not None
    found = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            found += [point for metric in scope.metrics if metric.name == name for point in metric.data.data_points]
    return found


async def test_an_inline_refresh_is_a_child_of_the_requests_span(exported: InMemorySpanExporter) -> None:
    clock = FakeClock()
    policy = make_policy(ScriptedCredential(clock=clock), clock)
    with trace.get_tracer("test").start_as_current_span("GET /subscriptions") as request_span:
        await policy.on_request(make_request())
    (span,) = ours(exported)
    assert span.parent is not None
    assert span.parent.span_id == request_span.get_span_context().span_id
    assert dict(span.attributes or {}) == {
        "bgrefresh.refresh.mode": "inline",
        "bgrefresh.refresh.outcome": "new_token",
        "bgrefresh.token.scopes": (SCOPE,),
    }
    assert span.status.status_code is StatusCode.UNSET


async def test_a_background_refresh_is_a_root_span_linked_to_the_request(exported: InMemorySpanExporter) -> None:
    clock = FakeClock()
    policy = make_policy(ScriptedCredential(clock=clock), clock)
    await prime(policy, clock)
    exported.clear()
    with trace.get_tracer("test").start_as_current_span("GET /subscriptions") as request_span:
        await policy.on_request(make_request())
    await refresh_begins()
    (span,) = ours(exported)
    assert span.parent is None  # outlives the request: a trace of its own
    assert [link.context.span_id for link in span.links] == [request_span.get_span_context().span_id]
    assert span.context.trace_id != request_span.get_span_context().trace_id
    assert dict(span.attributes or {}) == {
        "bgrefresh.refresh.mode": "background",
        "bgrefresh.refresh.outcome": "new_token",
        "bgrefresh.token.scopes": (SCOPE,),
        "bgrefresh.token.validity_left": 200.0,
    }


async def test_a_failed_refresh_is_an_error_span_and_counted(exported: InMemorySpanExporter) -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)
    await prime(policy, clock)
    credential.errors = [ConnectionError("token endpoint down")]
    before = _count({"bgrefresh.refresh.mode": "background", "bgrefresh.refresh.outcome": "failed"})
    await policy.on_request(make_request())
    await refresh_begins()
    failed = [span for span in ours(exported) if span.attributes and span.attributes.get("error.type")]
    (span,) = failed
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ConnectionError"
    assert _count({"bgrefresh.refresh.mode": "background", "bgrefresh.refresh.outcome": "failed"}) == before + 1


def _count(attributes: dict[str, str]) -> int:
    matching = [
        point.value
        for point in points("bgrefresh.refreshes")
        if {k: v for k, v in point.attributes.items() if k != "error.type"} == attributes
    ]
    return int(sum(matching))


async def test_metrics_count_refreshes_their_duration_and_the_validity_left(exported: InMemorySpanExporter) -> None:
    clock = FakeClock()
    policy = make_policy(ScriptedCredential(clock=clock), clock)
    inline = {"bgrefresh.refresh.mode": "inline", "bgrefresh.refresh.outcome": "new_token"}
    background = {"bgrefresh.refresh.mode": "background", "bgrefresh.refresh.outcome": "new_token"}
    counts = (_count(inline), _count(background))
    await prime(policy, clock)
    await policy.on_request(make_request())
    await refresh_begins()
    assert (_count(inline), _count(background)) == (counts[0] + 1, counts[1] + 1)
    durations = [p for p in points("bgrefresh.refresh.duration") if dict(p.attributes) == background]
    assert durations
    assert durations[0].count >= 1
    validity = [
        p
        for p in points("bgrefresh.token.validity_left")
        if dict(p.attributes)["bgrefresh.refresh.mode"] == "background"
    ]
    assert validity
    assert validity[0].max == pytest.approx(200.0, abs=1e-6) or validity[0].max >= 200.0


async def test_no_token_in_any_span_or_metric(exported: InMemorySpanExporter) -> None:
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)
    await prime(policy, clock)
    credential.errors = [ConnectionError("token-1 refused")]  # even an error that quotes a token
    await policy.on_request(make_request())
    await refresh_begins()
    spans = [span.to_json() for span in ours(exported)]
    data = _METRICS.get_metrics_data()
    assert data is not None
    dumped = "\n".join(spans) + data.to_json()
    assert spans
    assert "token-1" not in dumped
    assert "token-2" not in dumped


def test_nothing_is_imported_until_the_first_refresh_and_nothing_without_the_package() -> None:
    script = """
import asyncio, json, sys
block = sys.argv[1] == "blocked"
if block:
    sys.modules["opentelemetry"] = None  # as if the extra were not installed
from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy
from bgrefresh_policy._telemetry import telemetry
from tests.support import FakeClock, ScriptedCredential, make_request
clock = FakeClock()
policy = AsyncBackgroundRefreshTokenPolicy(ScriptedCredential(clock=clock), "api://x/.default")
policy._store.clock = clock
before = any(name.startswith("opentelemetry") for name in sys.modules if sys.modules[name] is not None)
asyncio.run(policy.on_request(make_request()))
after = any(name.startswith("opentelemetry") for name in sys.modules if sys.modules[name] is not None)
print(json.dumps({"before": before, "after": after, "telemetry": telemetry() is not None}))
"""
    runs = {}
    for mode in ("installed", "blocked"):
        done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, check=True)
        runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    assert runs["installed"] == {"before": False, "after": True, "telemetry": True}
    assert runs["blocked"] == {"before": False, "after": False, "telemetry": False}


async def test_a_refresh_next_to_azure_cores_own_spans(exported: InMemorySpanExporter, services: Any) -> None:
    """With azure-core's tracing on, the inline refresh is a child of the client method's span, beside the HTTP span."""
    from azure.ai.textanalytics.aio import TextAnalyticsClient
    from azure.core.settings import settings

    from bgrefresh_policy import enable_background_refresh
    from tests.integration.test_client_families import Issuer

    settings.tracing_enabled = True
    try:
        client = TextAnalyticsClient(services.url, Issuer(), connection_verify=services.ca_path)
        async with enable_background_refresh(client):
            assert [document.sentiment for document in await client.analyze_sentiment(["hello"])] == ["positive"]
    finally:
        settings.tracing_enabled = False
    spans = {span.name: span for span in exported.get_finished_spans()}
    method, http, refresh = spans["TextAnalyticsClient.analyze_sentiment"], spans["POST"], spans[SPAN_NAME]
    assert refresh.parent is not None
    assert http.parent is not None
    assert refresh.parent.span_id == http.parent.span_id == method.context.span_id


def test_the_documented_example_prints_both_spans_the_metrics_and_the_status() -> None:
    """``docs/examples/observe.py``, whose output the observing page shows, still runs and says what the page says."""
    example = Path(__file__).parents[2] / "docs" / "examples" / "observe.py"
    done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=120, check=True)
    out = done.stdout
    assert out.count('"name": "bgrefresh_policy.refresh_token"') == 2
    assert '"bgrefresh.refresh.mode": "inline"' in out
    assert '"bgrefresh.refresh.mode": "background"' in out
    assert '"name": "bgrefresh.refreshes"' in out
    assert "event: inline new_token" in out
    assert "event: background new_token" in out
    assert "TokenStatus(scopes=('api://demo/.default',)" in out
    assert "Bearer" not in out
