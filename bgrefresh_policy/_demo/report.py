"""The demo's results: a latency table, a terminal timeline, and an optional PNG chart."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from .load import Sample

__all__ = ["percentile", "plot", "table", "timeline"]

_BLOCKS = " ▁▂▃▄▅▆▇█"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, by the inclusive method; 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[min(998, max(0, round(q * 1000) - 1))]


def table(results: dict[str, tuple[list[Sample], int]], slow_ms: float) -> str:
    """One row per policy: requests, failures, p50/p99/max latency, slow requests, token requests."""
    header = f"{'policy':<24}{'requests':>9}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    header += f"{f'>{slow_ms:.0f} ms':>10}{'token requests':>16}"
    lines = [header, "-" * len(header)]
    for name, (samples, token_requests) in results.items():
        ms = [s.latency * 1000 for s in samples]
        failed = sum(1 for s in samples if s.status != 200)
        slow = sum(1 for v in ms if v > slow_ms)
        lines.append(
            f"{name:<24}{len(samples):>9}{failed:>8}{percentile(ms, 0.5):>9.1f}{percentile(ms, 0.99):>9.1f}"
            f"{max(ms, default=0):>9.1f}{slow:>10}{token_requests:>16}"
        )
    return "\n".join(lines)


def _buckets(samples: list[Sample], duration: float, width: int) -> list[float]:
    worst = [0.0] * width
    for sample in samples:
        column = min(width - 1, int(sample.start / duration * width))
        worst[column] = max(worst[column], sample.latency)
    return worst


def timeline(results: dict[str, tuple[list[Sample], int]], duration: float, width: int = 64) -> str:
    """The worst latency of the requests issued in each time slice, one row per policy."""
    rows = {name: _buckets(samples, duration, width) for name, (samples, _) in results.items()}
    top = max((max(row) for row in rows.values()), default=0.0) or 1.0
    lines = [
        f"worst request latency per {duration / width * 1000:.0f} ms of the run (full block = {top * 1000:.0f} ms)"
    ]
    for name, row in rows.items():
        cells = "".join(_BLOCKS[round(value / top * (len(_BLOCKS) - 1))] for value in row)
        lines.append(f"{name:<24}|{cells}|")
    lines.append(f"{'':<24} 0 s{'':>{width - 8}}{duration:.0f} s")
    return "\n".join(lines)


def plot(results: dict[str, tuple[list[Sample], int]], path: str) -> None:
    """Write request latency over time, one panel per policy, as a PNG (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, grid = plt.subplots(
        len(results), 1, figsize=(10, 2.6 * len(results)), sharex=True, sharey=True, squeeze=False
    )
    axes = grid[:, 0]
    for axis, (name, (samples, _)) in zip(axes, results.items(), strict=True):
        axis.scatter([s.start for s in samples], [s.latency * 1000 for s in samples], s=3)
        axis.set_title(name)
        axis.set_ylabel("latency (ms)")
    axes[-1].set_xlabel("time since start (s)")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
