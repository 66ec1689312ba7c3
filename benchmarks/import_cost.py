"""What importing this package costs beside importing azure-core's policies, each in a fresh interpreter.

Three pairs: the bare packages, and the import a user writes for each policy against the one for
azure-core's. The policies' modules load when first named, so the bare import alone would flatter.
Both sides import from bytecode, as after ``pip install`` (which compiles it): a first, untimed
import writes it where it is missing, even when this shell sets ``PYTHONDONTWRITEBYTECODE``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from typing import Any

_PROBE = (
    "import sys, time; before = set(sys.modules); start = time.perf_counter(); {statement}; "
    "print(time.perf_counter() - start, len(set(sys.modules) - before))"
)

PAIRS = {
    "package": ("import azure.core.pipeline.policies", "import bgrefresh_policy"),
    "async policy": (
        "from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy",
        "from bgrefresh_policy import AsyncBackgroundRefreshTokenPolicy",
    ),
    "sync policy": (
        "from azure.core.pipeline.policies import BearerTokenCredentialPolicy",
        "from bgrefresh_policy import BackgroundRefreshTokenPolicy",
    ),
}


_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _import_once(statement: str) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(statement=statement)], capture_output=True, text=True, check=True, env=_ENV
    ).stdout.split()
    return float(out[0]), int(out[1])


def import_cost(*, rounds: int) -> dict[str, Any]:
    """Per pair: ms to import each side in a new interpreter (rounds interleaved), modules each loads, the ratio."""
    results: dict[str, Any] = {}
    for what, (theirs, ours) in PAIRS.items():
        _import_once(theirs), _import_once(ours)  # bytecode written, disk caches warm
        seconds: dict[str, list[float]] = {"azure-core": [], "bgrefresh": []}
        modules: dict[str, int] = {}
        for index in range(rounds):
            order = [("azure-core", theirs), ("bgrefresh", ours)]
            for name, statement in order if index % 2 == 0 else order[::-1]:
                took, count = _import_once(statement)
                seconds[name].append(took)
                modules[name] = count
        per_round = [o / t for o, t in zip(seconds["bgrefresh"], seconds["azure-core"], strict=True)]
        results[what] = {
            "ms": {name: statistics.median(values) * 1000 for name, values in seconds.items()},
            "modules": modules,
            "ratio": {"min": min(per_round), "median": statistics.median(per_round), "max": max(per_round)},
        }
    return results
