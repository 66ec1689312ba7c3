"""``python -m benchmarks``: azure-core's bearer policies and ours, async and sync, side by side."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
from pathlib import Path
from typing import Any

import azure.core

import bgrefresh_policy
from bgrefresh_policy._demo.arguments import count, seconds

from .scenarios import many_cycles, refresh_burst, steady_state
from .sync_scenarios import sync_refresh_burst, sync_steady_state


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "azure_core": azure.core.__version__,
        "bgrefresh_policy": bgrefresh_policy.__version__,
    }


def _print_latency(title: str, result: dict[str, Any]) -> None:
    print(f"\n{title}")
    print(f"{'policy':<12}{'case':<10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'credential calls':>18}")
    for key, row in result.items():
        if isinstance(row, dict):
            name, case = key.split("/")
            print(
                f"{name:<12}{case:<10}{row['p50']:>9.2f}{row['p99']:>9.2f}{row['max']:>9.2f}"
                f"{row['credential_calls']:>18}"
            )
    for name in ("azure-core", "bgrefresh"):
        print(
            f"p99 added by the refresh, {name}: {result[f'{name}/added_p99_ms']:.2f} ms "
            f"(floor p99 varied by {result[f'{name}/floor_p99_spread_ms']:.2f} ms between runs)"
        )


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": _machine(), "args": vars(args)}
    print("machine: " + ", ".join(f"{k}={v}" for k, v in report["machine"].items()))
    for kind in ("noop", "aiohttp"):
        result = await refresh_burst(
            transport_kind=kind, refresh_latency=args.refresh_latency, burst=args.burst, repeats=args.repeats
        )
        report[f"refresh_burst_{kind}"] = result
        _print_latency(
            f"1-2. burst of {args.burst} concurrent requests, token due, credential takes {args.refresh_latency} s "
            f"({kind} transport; medians of {args.repeats} runs; credential calls: the most in one run)",
            result,
        )
    steady = await steady_state(rounds=args.rounds, batch=args.batch)
    report["steady_state"] = steady
    print(f"\n3. steady state: on_request with a valid token, {args.rounds} interleaved rounds of {args.batch}")
    for name, ns in steady["ns_per_call"].items():
        print(f"{name:<12}{ns:>9.0f} ns per call")
    print(f"median ratio bgrefresh/azure-core: {steady['median_ratio']:.3f}")
    cycles = await many_cycles(requests=args.requests, cycles=args.cycles)
    report["many_cycles"] = cycles
    print(f"\n4. {args.requests} requests across {args.cycles} compressed refresh cycles")
    print(f"{'policy':<12}{'credential calls':>18}{'peak KiB':>10}{'growth KiB':>12}{'live tasks':>12}")
    for name, row in cycles.items():
        print(
            f"{name:<12}{row['credential_calls']:>18}{row['peak_memory_kib']:>10.0f}"
            f"{row['memory_growth_kib']:>12.1f}{row['live_tasks_at_end']:>12}"
        )
    for kind in ("noop", "requests"):
        result = sync_refresh_burst(
            transport_kind=kind,
            refresh_latency=args.refresh_latency,
            threads=args.threads,
            per_thread=args.per_thread,
            repeats=args.repeats,
        )
        report[f"sync_refresh_burst_{kind}"] = result
        _print_latency(
            f"5-6. sync: {args.threads} threads x {args.per_thread} requests, token due, credential blocks "
            f"{args.refresh_latency} s ({kind} transport; medians of {args.repeats} runs; credential calls: "
            "the most in one run)",
            result,
        )
    sync_steady = sync_steady_state(rounds=args.rounds, batch=args.batch)
    report["sync_steady_state"] = sync_steady
    print(f"\n7. sync steady state: on_request with a valid token, {args.rounds} interleaved rounds of {args.batch}")
    for name, ns in sync_steady["ns_per_call"].items():
        print(f"{name:<12}{ns:>9.0f} ns per call")
    print(f"median ratio bgrefresh/azure-core: {sync_steady['median_ratio']:.3f}")
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    add("--refresh-latency", type=seconds(allow_zero=True), default=0.5, help="seconds the credential takes, >= 0")
    add("--burst", type=count, default=1000, help="concurrent requests per burst, >= 1")
    add("--repeats", type=count, default=5, help="runs of each burst case (medians reported), >= 1")
    add("--threads", type=count, default=32, help="threads per sync burst, >= 1")
    add("--per-thread", type=count, default=20, help="requests each thread sends per sync burst, >= 1")
    add("--rounds", type=count, default=40, help="interleaved rounds, steady state, >= 1")
    add("--batch", type=count, default=5000, help="on_request calls per round, >= 1")
    add("--requests", type=count, default=100_000, help="requests across the compressed cycles, >= --cycles")
    add("--cycles", type=count, default=1000, help="compressed refresh cycles, >= 1")
    add("--json", type=Path, default=Path("benchmarks/results/latest.json"), help="where to write the results")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.requests < args.cycles:
        parser.error(f"--requests ({args.requests}) must be at least --cycles ({args.cycles}): one per cycle or more")
    report = asyncio.run(_main(args))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
