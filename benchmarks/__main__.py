"""``python -m benchmarks``: azure-core's bearer policies and ours, async and sync, side by side.

Needs the ``bench`` extra (``python -m pip install -e ".[bench]"``) and runs from the repository's
root: ``benchmarks`` is a folder of the checkout, not part of the installed package.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import azure.core

import bgrefresh_policy
from bgrefresh_policy._demo.arguments import count, seconds


def _commit() -> dict[str, Any]:
    """The checkout's commit, and whether tracked files differ from it: what a published figure names."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist), or no git
        return {"commit": None, "modified": None}
    return {"commit": head.stdout.strip(), "modified": bool(status.stdout.strip())}


def _machine() -> dict[str, Any]:
    return {
        **_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "azure_core": azure.core.__version__,
        "bgrefresh_policy": bgrefresh_policy.__version__,
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    from .progress import Progress
    from .sections import SECTIONS

    report: dict[str, Any] = {"machine": _machine(), "args": vars(args)}
    print("machine: " + ", ".join(f"{k}={v}" for k, v in report["machine"].items()))
    progress = Progress([section.weight for section in SECTIONS])
    for section in SECTIONS:
        progress.begin(section.title)
        await section.run(args, report)
    progress.end()
    return report


_DESCRIPTION = (
    "azure-core's bearer policies and this package's, async and sync, side by side in one process; then the "
    "credential wrapper against azure-identity's own cache and against the policies. Prints each section's table "
    "and writes them all as JSON. Takes about 6 minutes with the defaults on two cores; which section runs, how many "
    "remain and an estimate of the time left go to stderr."
)
_EPILOG = (
    'Needs the "bench" extra (python -m pip install -e ".[bench]") and must run from the repository\'s root: '
    "benchmarks is a folder of the checkout, not part of the installed package, so from anywhere else Python "
    'answers "No module named benchmarks".'
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    seconds_ = seconds(allow_zero=True)
    add("--refresh-latency", type=seconds_, default=0.5, metavar="S", help="seconds the credential takes, >= 0")
    add("--burst", type=count, default=1000, metavar="N", help="concurrent requests per burst, >= 1")
    add("--repeats", type=count, default=5, metavar="N", help="runs of each burst case (medians reported), >= 1")
    add("--threads", type=count, default=32, metavar="N", help="threads per sync burst, >= 1")
    add("--per-thread", type=count, default=20, metavar="N", help="requests each thread sends per sync burst, >= 1")
    add("--rounds", type=count, default=40, metavar="N", help="interleaved rounds of the per-request costs, >= 1")
    add("--batch", type=count, default=5000, metavar="N", help="requests per round of the per-request costs, >= 1")
    add("--import-rounds", type=count, default=40, metavar="N", help="interleaved rounds of the import cost, >= 1")
    add(
        "--requests",
        type=count,
        default=100_000,
        metavar="N",
        help="requests across the compressed cycles, >= --cycles",
    )
    add("--cycles", type=count, default=1000, metavar="N", help="compressed refresh cycles, >= 1")
    add(
        "--json",
        type=Path,
        default=Path("benchmarks/results/latest.json"),
        metavar="FILE",
        help="where to write the results",
    )
    return parser


def _missing_extra() -> str | None:
    """The bench extra's first package that is not installed, if one is not."""
    for module, package in (
        ("aiohttp", "aiohttp"),
        ("time_machine", "time-machine"),
        ("azure.identity", "azure-identity"),
    ):
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            return package
    return None


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.requests < args.cycles:
        parser.error(f"--requests ({args.requests}) must be at least --cycles ({args.cycles}): one per cycle or more")
    missing = _missing_extra()
    if missing is not None:
        parser.error(f'{missing} is not installed: install the "bench" extra (python -m pip install -e ".[bench]")')
    report = asyncio.run(_main(args))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
