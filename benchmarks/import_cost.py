"""What ``import bgrefresh_policy`` costs beside ``import azure.core.pipeline.policies``, each in a fresh process."""

from __future__ import annotations

import statistics
import subprocess
import sys
from typing import Any

_PROBE = (
    "import sys, time; before = set(sys.modules); start = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - start, len(set(sys.modules) - before))"
)


def _import_once(module: str) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-X", "frozen_modules=on", "-c", _PROBE.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), int(out[1])


def import_cost(*, rounds: int) -> dict[str, Any]:
    """Seconds to import each module in a new interpreter, interleaved round by round; the ratio ours / azure-core's."""
    modules = {"azure-core": "azure.core.pipeline.policies", "bgrefresh": "bgrefresh_policy"}
    seconds: dict[str, list[float]] = {name: [] for name in modules}
    loaded: dict[str, int] = {}
    for index in range(rounds):
        for name in modules if index % 2 == 0 else list(modules)[::-1]:
            took, count = _import_once(modules[name])
            seconds[name].append(took)
            loaded[name] = count
    per_round = [ours / theirs for ours, theirs in zip(seconds["bgrefresh"], seconds["azure-core"], strict=True)]
    return {
        "ms": {name: statistics.median(values) * 1000 for name, values in seconds.items()},
        "modules": loaded,
        "ratio": {"min": min(per_round), "median": statistics.median(per_round), "max": max(per_round)},
    }
