"""OpenTelemetry spans and metrics for each credential call, when ``opentelemetry-api`` is installed.

Nothing here is imported until a policy first refreshes, and nothing of OpenTelemetry's is imported
when it is not installed. Without a tracer or meter provider configured, OpenTelemetry's API makes
every call here a no-op.

Names follow OpenTelemetry's semantic-convention style: a ``bgrefresh`` namespace, dotted
lower-case attribute names, UCUM units, ``error.type`` for failures. No token, claims or other
secret is ever an attribute: only scopes, tenant, mode and outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._outcome import RefreshOutcome

if TYPE_CHECKING:
    from ._events import RefreshEvent

__all__ = ["SPAN_NAME", "Telemetry", "telemetry"]

SPAN_NAME = "bgrefresh_policy.refresh_token"
_UNRESOLVED: Any = object()
_TELEMETRY: Any = _UNRESOLVED


def telemetry() -> Telemetry | None:
    """The process's telemetry, made on first use; None without ``opentelemetry-api``."""
    global _TELEMETRY
    if _TELEMETRY is _UNRESOLVED:
        try:
            _TELEMETRY = Telemetry()
        except ImportError:
            _TELEMETRY = None
    return _TELEMETRY  # type: ignore[no-any-return]


# Bucket boundaries in seconds (OpenTelemetry's defaults are for milliseconds): credential calls
# take milliseconds to tens of seconds; tokens have seconds to an hour left.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_VALIDITY_BUCKETS = (0.0, 60.0, 120.0, 240.0, 300.0, 600.0, 1800.0, 3600.0)


def _histogram(meter: Any, name: str, description: str, buckets: tuple[float, ...]) -> Any:
    try:  # opentelemetry-api 1.23+ takes the boundaries as advice
        return meter.create_histogram(
            name, unit="s", description=description, explicit_bucket_boundaries_advisory=list(buckets)
        )
    except TypeError:
        return meter.create_histogram(name, unit="s", description=description)


def _mode(background: bool) -> str:
    return "background" if background else "inline"


class Telemetry:
    """The instruments, and the spans of credential calls.

    :raises ImportError: ``opentelemetry-api`` is not installed.
    """

    def __init__(self) -> None:
        from opentelemetry import context, metrics, trace

        from . import __version__

        self._context = context
        self._trace = trace
        self._version = __version__
        meter = metrics.get_meter("bgrefresh_policy", __version__)
        self.refreshes = meter.create_counter(
            "bgrefresh.refreshes", unit="{refresh}", description="Credential calls made by the policies, by outcome."
        )
        self.duration = _histogram(
            meter, "bgrefresh.refresh.duration", "How long each credential call took.", _DURATION_BUCKETS
        )
        self.validity_left = _histogram(
            meter,
            "bgrefresh.token.validity_left",
            "Seconds of validity left on the token in use when a refresh started.",
            _VALIDITY_BUCKETS,
        )

    def current_context(self) -> Any:
        """The caller's context: the request's span, which a refresh it starts is a child of or links to."""
        return self._context.get_current()

    def start(
        self,
        scopes: tuple[str, ...],
        tenant_id: str | None,
        *,
        background: bool,
        parent: Any,
        validity_left: float | None,
    ) -> Any:
        """Start the span of a credential call: a root span linked to the request for a background
        refresh, a child of the request's span for an inline one.

        :return: the span.
        """
        attributes: dict[str, Any] = {"bgrefresh.refresh.mode": _mode(background), "bgrefresh.token.scopes": scopes}
        if tenant_id:
            attributes["bgrefresh.token.tenant_id"] = tenant_id
        if validity_left is not None:
            attributes["bgrefresh.token.validity_left"] = validity_left
            self.validity_left.record(validity_left, {"bgrefresh.refresh.mode": _mode(background)})
        tracer = self._trace.get_tracer("bgrefresh_policy", self._version)
        if not background:
            return tracer.start_span(SPAN_NAME, context=parent, attributes=attributes)
        requester = self._trace.get_current_span(parent).get_span_context()
        links = [self._trace.Link(requester)] if requester.is_valid else []
        root = self._context.Context()  # a background refresh outlives the request that started it
        return tracer.start_span(SPAN_NAME, context=root, links=links, attributes=attributes)

    def end(self, span: Any, event: RefreshEvent) -> None:
        """End the span with the outcome, and record the call in the metrics."""
        attributes = {
            "bgrefresh.refresh.mode": _mode(event.background),
            "bgrefresh.refresh.outcome": event.outcome.value,
        }
        if event.error is not None:
            attributes["error.type"] = type(event.error).__qualname__
        if span is not None:
            span.set_attributes(attributes)
            if event.outcome in (RefreshOutcome.FAILED, RefreshOutcome.TIMED_OUT):
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
            span.end()
        self.refreshes.add(1, attributes)
        self.duration.record(max(0.0, event.duration), attributes)
