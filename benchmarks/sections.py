"""The benchmark's sections, in the order they run: each measures, keeps its result, and prints its table."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .host_sharing import host_sharing, print_host_sharing
from .hot_path import async_hot_path, memory_per_policy, sync_hot_path
from .import_cost import import_cost
from .scenarios import clients_on_one_credential, many_cycles, refresh_burst
from .starter import starter_cost
from .sync_scenarios import sync_refresh_burst
from .wrapper import POLICY, WRAPPER, async_wrapper_rows, sync_wrapper_rows

__all__ = ["SECTIONS", "Section"]

Report = dict[str, Any]


@dataclass(frozen=True)
class Section:
    """One section: what it measures, its seconds in a reference run (defaults, 2 cores), and how it runs.

    :ivar str title: what it measures, as the progress line names it.
    :ivar float weight: seconds it took in the reference run.
    :ivar run: measures with the command line's options, keeps the result in the report and prints it.
    """

    title: str
    weight: float
    run: Callable[[argparse.Namespace, Report], Awaitable[None]]


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


def _print_ratios(
    title: str, result: dict[str, Any], *, subject: str = "bgrefresh", baseline: str = "azure-core"
) -> None:
    """One row per measurement: ns per request for each side, and ``subject`` / ``baseline`` over the rounds."""
    print(f"\n{title}")
    width = max(14, len(subject) + 4, len(baseline) + 4)
    print(
        f"{'':<22}{baseline + ' ns':>{width}}{subject + ' ns':>{width}}{'floor ns':>10}"
        f"{'ratio min':>11}{'median':>8}{'max':>7}"
    )
    for what, row in result.items():
        ns, ratio = row["ns"], row["ratio"]
        floor = f"{ns['floor']:>10.0f}" if "floor" in ns else f"{'':>10}"
        print(
            f"{what:<22}{ns[baseline]:>{width}.0f}{ns[subject]:>{width}.0f}{floor}"
            f"{ratio['min']:>11.2f}{ratio['median']:>8.2f}{ratio['max']:>7.2f}"
        )


async def _refresh_bursts(args: argparse.Namespace, report: Report) -> None:
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


async def _async_hot_path(args: argparse.Namespace, report: Report) -> None:
    report["async_hot_path"] = hot = await async_hot_path(rounds=args.rounds, batch=args.batch)
    _print_ratios(
        f"3. async, valid 2 KB token: on_request, send() and AsyncPipeline.run, {args.rounds} interleaved rounds "
        f"of {args.batch}; ratio = bgrefresh / azure-core",
        hot,
    )


async def _many_cycles(args: argparse.Namespace, report: Report) -> None:
    report["many_cycles"] = cycles = await many_cycles(requests=args.requests, cycles=args.cycles)
    print(f"\n4. {args.requests} requests across {args.cycles} compressed refresh cycles")
    print(f"{'policy':<12}{'credential calls':>18}{'peak KiB':>10}{'growth KiB':>12}{'live tasks':>12}")
    for name, row in cycles.items():
        print(
            f"{name:<12}{row['credential_calls']:>18}{row['peak_memory_kib']:>10.0f}"
            f"{row['memory_growth_kib']:>12.1f}{row['live_tasks_at_end']:>12}"
        )


async def _sync_refresh_bursts(args: argparse.Namespace, report: Report) -> None:
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


async def _sync_hot_path(args: argparse.Namespace, report: Report) -> None:
    report["sync_hot_path"] = sync_hot = sync_hot_path(rounds=args.rounds, batch=args.batch, threads=16)
    _print_ratios(
        f"7. sync, valid 2 KB token: on_request, send(), Pipeline.run, and Pipeline.run from 16 threads, "
        f"{args.rounds} interleaved rounds of {args.batch}; ratio = bgrefresh / azure-core",
        sync_hot,
    )


async def _starter(args: argparse.Namespace, report: Report) -> None:
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


async def _memory(args: argparse.Namespace, report: Report) -> None:
    report["memory_per_policy"] = memory = await memory_per_policy(count=1000)
    print(
        "\n9. memory per policy after its first request (bytes; the credentials and their tokens not counted): "
        "1,000 policies on one credential, and each on its own"
    )
    for kind in ("async", "sync", "own async", "own sync"):
        theirs, ours = memory["bytes"][f"{kind}/azure-core"], memory["bytes"][f"{kind}/bgrefresh"]
        label = kind.replace("own ", "") + (", own credential" if kind.startswith("own") else ", one credential")
        print(f"{label:<24}azure-core {theirs:>6.0f}  bgrefresh {ours:>6.0f}  ratio {memory['ratio'][kind]:.2f}")


async def _imports(args: argparse.Namespace, report: Report) -> None:
    report["import"] = imports = import_cost(rounds=args.import_rounds)
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


async def _ten_clients(args: argparse.Namespace, report: Report) -> None:
    report["ten_clients"] = clients = await clients_on_one_credential(clients=10, cycles=20)
    print("\n11. ten clients on one credential, one request each per cycle: token requests (20 cycles)")
    print(f"{'policy':<12}{'first cycle':>12}{'per cycle (median)':>20}")
    for name, row in clients.items():
        print(f"{name:<12}{row['first']:>12}{row['per_cycle']:>20.0f}")


async def _wrapper(args: argparse.Namespace, report: Report) -> None:
    rows = {
        "async": await async_wrapper_rows(rounds=args.rounds, batch=args.batch),
        "sync": sync_wrapper_rows(rounds=args.rounds, batch=args.batch),
    }
    report["wrapper_get_token_info"] = token_info = {side: row["get_token_info"] for side, row in rows.items()}
    report["wrapper_pipeline_refreshing"] = refreshing = {side: row["pipeline"] for side, row in rows.items()}
    _print_ratios(
        f"12. BackgroundRefreshCredential.get_token_info, valid 2 KB token, against azure-identity's "
        f"ClientSecretCredential.get_token_info from MSAL's cache (the credential it wraps), {args.rounds} "
        f"interleaved rounds of {args.batch}; ratio = bgrefresh / azure-identity",
        token_info,
        baseline="azure-identity",
    )
    _print_ratios(
        f"13. a request while a refresh is in flight (token due, the credential call held open): azure-core's plain "
        f"bearer policy on the wrapper, against this package's policy; Pipeline.run, {args.rounds} interleaved "
        f"rounds of {args.batch}; ratio = plain policy on the wrapper / bgrefresh",
        refreshing,
        subject=WRAPPER,
        baseline=POLICY,
    )


# Weights: each section's seconds in a run with the defaults on the 2-core development machine
# (6 min 08 s in all), which the progress line scales by the pace of the run at hand.
async def _host_sharing(args: argparse.Namespace, report: Report) -> None:
    report["host_sharing"] = host_sharing()
    print_host_sharing(report["host_sharing"])


SECTIONS = [
    Section("1-2. async latency across a refresh, no-op and aiohttp transports", 42.0, _refresh_bursts),
    Section("3. async, the cost of a request with a valid token", 29.0, _async_hot_path),
    Section("4. many compressed refresh cycles", 58.0, _many_cycles),
    Section("5-6. sync latency across a refresh, no-op and requests transports", 35.0, _sync_refresh_bursts),
    Section("7. sync, the cost of a request with a valid token", 40.0, _sync_hot_path),
    Section("8. the request that starts a background refresh", 20.0, _starter),
    Section("9. memory per policy", 2.0, _memory),
    Section("10. import, each side in a new interpreter", 47.0, _imports),
    Section("11. ten clients on one credential", 0.5, _ten_clients),
    Section("12-13. the credential wrapper: get_token_info, and a pipeline during a refresh", 70.0, _wrapper),
    Section("14. worker processes sharing one token per host (share_across_processes)", 70.0, _host_sharing),
]
