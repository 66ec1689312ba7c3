"""The demo's results: a latency table, a terminal timeline, and an optional PNG chart."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from .load import MOST_LATE, Run, Sample

__all__ = ["figure", "pace_notes", "percentile", "plot", "seconds_text", "table", "timeline"]

_BLOCKS = " ▁▂▃▄▅▆▇█"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, by the inclusive method; 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[min(998, max(0, round(q * 1000) - 1))]


def seconds_text(value: float) -> str:
    """Seconds as the command line would take them: ``0.5 s``, ``8 s``, ``2.5 s``."""
    return f"{value:g} s"


def pace_notes(results: dict[str, Run]) -> str:
    """A warning per run whose load generator fell behind its schedule, saying how far; "" if none."""
    lines = []
    for name, run in results.items():
        pace = run.pace
        if pace is None or not pace.fell_behind:
            continue
        skipped = (
            f"; {pace.skipped} of the {pace.planned} planned were skipped, more than {seconds_text(MOST_LATE)} late"
            if pace.skipped
            else ""
        )
        lines.append(
            f"note: the load generator fell behind for {name}: it issued {pace.issued} requests, up to "
            f"{pace.worst_lag * 1000:.0f} ms after their scheduled time{skipped}. Its latencies include an "
            "event loop saturated by the load itself: lower --rate (or --concurrency) to measure the policy."
        )
    return "\n".join(lines)


def table(results: dict[str, Run], slow_ms: float) -> str:
    """One row per policy: requests, failures, p50/p99/max latency, slow requests, token requests."""
    header = f"{'policy':<24}{'requests':>9}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    header += f"{f'>{slow_ms:.0f} ms':>10}{'token requests':>16}"
    lines = [header, "-" * len(header)]
    for name, run in results.items():
        ms = [s.latency * 1000 for s in run.samples]
        failed = sum(1 for s in run.samples if s.status != 200)
        slow = sum(1 for v in ms if v > slow_ms)
        lines.append(
            f"{name:<24}{len(run.samples):>9}{failed:>8}{percentile(ms, 0.5):>9.1f}{percentile(ms, 0.99):>9.1f}"
            f"{max(ms, default=0):>9.1f}{slow:>10}{run.token_requests:>16}"
        )
    return "\n".join(lines)


def _buckets(samples: list[Sample], duration: float, width: int) -> list[float]:
    worst = [0.0] * width
    for sample in samples:
        column = min(width - 1, int(sample.start / duration * width))
        worst[column] = max(worst[column], sample.latency)
    return worst


def timeline(results: dict[str, Run], duration: float, width: int = 64) -> str:
    """The worst latency of the requests issued in each time slice, one row per policy."""
    rows = {name: _buckets(run.samples, duration, width) for name, run in results.items()}
    top = max((max(row) for row in rows.values()), default=0.0) or 1.0
    lines = [
        f"worst request latency per {duration / width * 1000:.0f} ms of the run (full block = {top * 1000:.0f} ms)"
    ]
    for name, row in rows.items():
        cells = "".join(_BLOCKS[round(value / top * (len(_BLOCKS) - 1))] for value in row)
        lines.append(f"{name:<24}|{cells}|")
    end = seconds_text(duration)
    lines.append(f"{'':<24} 0 s{end:>{width - 3}}")
    return "\n".join(lines)


def plot(results: dict[str, Run], path: str, *, duration: float, due_after: float) -> None:
    """Write the latency chart of :func:`figure` (needs matplotlib), in the format ``path``'s suffix names.

    :param results: the runs, by policy name.
    :param str path: the file to write: ``.png``, ``.jpg``, ``.svg``, ``.pdf``, or another format matplotlib writes.
    :keyword float duration: seconds of load per policy.
    :keyword float due_after: seconds after its arrival that a token falls due.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chart = figure(results, duration=duration, due_after=due_after)
    chart.savefig(path, dpi=100)
    plt.close(chart)


def figure(results: dict[str, Run], *, duration: float, due_after: float) -> Any:
    """Request latency over time, one panel per policy (a matplotlib ``Figure``).

    Each panel has its own latency scale, so that the background policy's own latencies are
    visible beside azure-core's stalls; dashed lines mark when a token fell due, solid ones when
    the next token arrived, and the title gives the policy's p99.

    :param results: the runs, by policy name.
    :keyword float duration: seconds of load per policy.
    :keyword float due_after: seconds after its arrival that a token falls due.
    :return: the figure.
    """
    import matplotlib.pyplot as plt

    chart, grid = plt.subplots(len(results), 1, figsize=(10, 2.8 * len(results)), sharex=True, squeeze=False)
    axes = grid[:, 0]
    for axis, (name, run) in zip(axes, results.items(), strict=True):
        ms = [s.latency * 1000 for s in run.samples]
        axis.scatter([s.start for s in run.samples], ms, s=3, color="tab:blue", label="request")
        dues = [arrival + due_after for arrival in run.arrivals if 0 <= arrival + due_after <= duration]
        arrivals = [arrival for arrival in run.arrivals if 0 <= arrival <= duration]
        for index, due in enumerate(dues):
            axis.axvline(due, color="tab:orange", linestyle="--", linewidth=1, label=None if index else "token due")
        for index, arrival in enumerate(arrivals):
            axis.axvline(arrival, color="tab:green", linewidth=1, label=None if index else "new token")
        axis.set_title(f"{name}: p99 {percentile(ms, 0.99):.1f} ms")
        axis.set_ylabel("latency (ms)")
        axis.set_ylim(bottom=0)
    for axis in axes:
        axis.legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("time since start (s)")
    axes[-1].set_xlim(0, duration)
    chart.tight_layout()
    return chart
