"""Watch a policy's refreshes: on_refresh events, OpenTelemetry spans and metrics, token health.

Runs against the demo's loopback token endpoint and service (``pip install ".[demo]"
opentelemetry-sdk``), with OpenTelemetry's console exporters:
``python docs/examples/observe.py``.
"""

from __future__ import annotations

import asyncio

from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import HttpRequest
from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy, RefreshEvent
from bgrefresh_policy._demo.credential import TokenEndpointCredential
from bgrefresh_policy._demo.servers import DemoServers
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
trace.set_tracer_provider(tracer_provider)
meter_provider = MeterProvider(
    metric_readers=[PeriodicExportingMetricReader(ConsoleMetricExporter())]
)
metrics.set_meter_provider(meter_provider)


def on_refresh(event: RefreshEvent) -> None:
    mode = "background" if event.background else "inline"
    took = f"{event.duration * 1000:.0f} ms"
    print(f"event: {mode} {event.outcome.value} in {took}, next at {event.next_attempt_at}")


async def main() -> None:
    # Tokens live 239 s: due at once (under azure-core's 300 s window, whatever the jitter), so
    # the first request waits for one and the second starts a background refresh.
    servers = DemoServers(token_latency=0.2, token_lifetime=239)
    url = await servers.start()
    credential = TokenEndpointCredential(url + "/token")
    policy = AsyncBackgroundRefreshTokenPolicy(
        credential, "api://demo/.default", on_refresh=on_refresh
    )
    async with AsyncPipeline(AioHttpTransport(), policies=[policy]) as pipeline:
        tracer = trace.get_tracer("example")
        for name in ("first request", "second request"):
            with tracer.start_as_current_span(name):
                await pipeline.run(HttpRequest("GET", url + "/resource"), enforce_https=False)
        await policy.wait_for_refreshes()
        print(policy.token_status())
    await policy.close()
    await credential.close()
    await servers.stop()


asyncio.run(main())
meter_provider.shutdown()  # prints the metrics
