"""Watch a policy's refreshes: on_refresh events, OpenTelemetry spans and metrics, token health.

A fake credential from ``bgrefresh_policy.testing`` issues the tokens, and a small aiohttp app
on 127.0.0.1 answers the requests (``pip install ".[demo]" opentelemetry-sdk``); OpenTelemetry's
console exporters print what the policy reports: ``python docs/examples/observe.py``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import HttpRequest
from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy, RefreshEvent
from bgrefresh_policy.testing import DUE, AsyncFakeCredential
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


async def serve() -> tuple[web.AppRunner, str]:
    """A service on 127.0.0.1 that answers every GET /resource with 200; its runner and URL."""

    async def resource(request: web.Request) -> web.Response:
        return web.json_response({"value": []})

    app = web.Application()
    app.router.add_get("/resource", resource)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/resource"


async def main() -> None:
    runner, url = await serve()
    # Tokens already due when they arrive (whatever the jitter), so the first request waits for
    # one and the second starts a background refresh.
    credential = AsyncFakeCredential(lifetime=DUE)
    policy = AsyncBackgroundRefreshTokenPolicy(
        credential, "api://demo/.default", on_refresh=on_refresh
    )
    async with AsyncPipeline(AioHttpTransport(), policies=[policy]) as pipeline:
        tracer = trace.get_tracer("example")
        for name in ("first request", "second request"):
            with tracer.start_as_current_span(name):
                await pipeline.run(HttpRequest("GET", url), enforce_https=False)
        await policy.wait_for_refreshes()
        print(policy.token_status())
    await policy.close()
    await credential.close()
    await runner.cleanup()


asyncio.run(main())
meter_provider.shutdown()  # prints the metrics
