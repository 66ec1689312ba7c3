"""``python -m benchmarks``: azure-core's bearer policies and ours, async and sync, side by side."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import azure.core

import bgrefresh_policy
from bgrefresh_policy._demo.arguments import count, seconds

from .host_sharing import host_sharing, print_host_sharing
from .hot_path import async_hot_path, memory_per_policy, sync_hot_path
from .import_cost import import_cost
from .scenarios import clients_on_one_credential, many_cycles, refresh_burst
from .starter import starter_cost
from .sync_scenarios import sync_refresh_burst


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


def _print_ratios(title: str, result: dict[str, Any]) -> None:
    """One row per measurement: ns per request for each side, and ours / azure-core's over the rounds."""
    print(f"\n{title}")
    print(f"{'':<22}{'azure-core ns':>14}{'bgrefresh ns':>14}{'floor ns':>10}{'ratio min':>11}{'median':>8}{'max':>7}")
    for what, row in result.items():
        ns, ratio = row["ns"], row["ratio"]
        floor = f"{ns['floor']:>10.0f}" if "floor" in ns else f"{'':>10}"
        print(
            f"{what:<22}{ns['azure-core']:>14.0f}{ns['bgrefresh']:>14.0f}{floor}"
            f"{ratio['min']:>11.2f}{ratio['median']:>8.2f}{ratio['max']:>7.2f}"
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
    hot = await async_hot_path(rounds=args.rounds, batch=args.batch)
    report["async_hot_path"] = hot
    _print_ratios(
        f"3. async, valid 2 KB token: on_request, send() and AsyncPipeline.run, {args.rounds} interleaved rounds "
        f"of {args.batch}; ratio = bgrefresh / azure-core",
        hot,
    )
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
    sync_hot = sync_hot_path(rounds=args.rounds, batch=args.batch, threads=16)
    report["sync_hot_path"] = sync_hot
    _print_ratios(
        f"7. sync, valid 2 KB token: on_request, send(), Pipeline.run, and Pipeline.run from 16 threads, "
        f"{args.rounds} interleaved rounds of {args.batch}; ratio = bgrefresh / azure-core",
        sync_hot,
    )
    print(
        f"\n8. the request that starts a background refresh, with the whole burst in flight (credential takes "
        f"{args.refresh_latency} s; {args.repeats} bursts each): ms inside the authentication policy"
    )
    print(f"{'in flight':>10}{'policy':>12}{'starter (median)':>18}{'starter (max)':>15}{'others (median)':>17}")
    for in_flight in (1000, 10_000):
        starter = await starter_cost(in_flight=in_flight, refresh_latency=args.refresh_latency, repeats=args.repeats)
        report[f"starter_{in_flight}"] = starter
        for name, row in starter.items():
            print(
                f"{in_flight:>10}{name:>12}{row['starter_ms']:>18.2f}{row['starter_max_ms']:>15.2f}"
                f"{row['others_median_ms']:>17.3f}"
            )
    memory = await memory_per_policy(count=1000)
    report["memory_per_policy"] = memory
    print(
        "\n9. memory per policy after its first request (bytes; the credentials and their tokens not counted): "
        "1,000 policies on one credential, and each on its own"
    )
    for kind in ("async", "sync", "own async", "own sync"):
        theirs, ours = memory["bytes"][f"{kind}/azure-core"], memory["bytes"][f"{kind}/bgrefresh"]
        label = kind.replace("own ", "") + (", own credential" if kind.startswith("own") else ", one credential")
        print(f"{label:<24}azure-core {theirs:>6.0f}  bgrefresh {ours:>6.0f}  ratio {memory['ratio'][kind]:.2f}")
    imports = import_cost(rounds=args.import_rounds)
    report["import"] = imports
    print(f"\n10. import, each side in a new interpreter, {args.import_rounds} interleaved rounds")
    print(
        f"{'':<14}{'azure-core ms':>14}{'bgrefresh ms':>14}{'modules more':>14}{'ratio min':>11}{'median':>8}{'max':>7}"
    )
    for what, row in imports.items():
        more = row["modules"]["bgrefresh"] - row["modules"]["azure-core"]
        print(
            f"{what:<14}{row['ms']['azure-core']:>14.1f}{row['ms']['bgrefresh']:>14.1f}{more:>14}"
            f"{row['ratio']['min']:>11.2f}{row['ratio']['median']:>8.2f}{row['ratio']['max']:>7.2f}"
        )
    clients = await clients_on_one_credential(clients=10, cycles=20)
    report["ten_clients"] = clients
    print("\n11. ten clients on one credential, one request each per cycle: token requests (20 cycles)")
    print(f"{'policy':<12}{'first cycle':>12}{'per cycle (median)':>20}")
    for name, row in clients.items():
        print(f"{name:<12}{row['first']:>12}{row['per_cycle']:>20.0f}")
    report["host_sharing"] = host_sharing()
    print_host_sharing(report["host_sharing"])
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
    add("--rounds", type=count, default=40, help="interleaved rounds of the hot-path measurements, >= 1")
    add("--batch", type=count, default=5000, help="requests per round of the hot-path measurements, >= 1")
    add("--import-rounds", type=count, default=40, help="interleaved rounds of the import measurement, >= 1")
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
