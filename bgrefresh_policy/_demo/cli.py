"""Command line of the demo: ``python -m bgrefresh_policy [options]``."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy
from azure.core.rest import HttpRequest

from .. import AsyncBackgroundRefreshTokenPolicy, RefreshEvent, __version__
from .arguments import check_plot_target, count, seconds
from .load import Run, Sample, drive
from .report import pace_notes, percentile, plot, seconds_text, table, timeline

if TYPE_CHECKING:  # the servers and the credential need aiohttp: the [demo] extra, checked in main()
    from .credential import TokenEndpointCredential

SCOPE = "api://demo/.default"
# azure-core refreshes a token with under 300 s left; a token issued with 300 + N seconds of
# life is due N seconds after it was issued, which compresses token lifetimes to demo length.
_REFRESH_WINDOW = 300


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bgrefresh_policy",
        description=(
            "Send a steady stream of requests through azure-core's AsyncBearerTokenCredentialPolicy and then "
            "through AsyncBackgroundRefreshTokenPolicy, across several token refreshes against a slow loopback "
            "token endpoint, and show each request's latency. No Azure account needed: everything runs on "
            "127.0.0.1."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    positive, non_negative = seconds(allow_zero=False), seconds(allow_zero=True)
    add("--token-latency", type=non_negative, default=1.0, metavar="S", help="seconds the token endpoint takes, >= 0")
    add("--refresh-every", type=positive, default=2.5, metavar="S", help="seconds until a new token is due, > 0")
    add("--rate", type=positive, default=200.0, metavar="N", help="requests issued per second, > 0")
    add("--concurrency", type=count, default=64, metavar="N", help="most requests in flight at once, >= 1")
    add("--duration", type=positive, default=8.0, metavar="S", help="seconds of load per policy, > 0")
    add("--slow-ms", type=non_negative, default=100.0, metavar="MS", help="latency counted as slow, >= 0")
    add(
        "--plot",
        metavar="FILE",
        help=(
            "also write the latency chart, in the format the suffix names: .png, .jpg, .svg, .pdf and the "
            'others matplotlib writes (needs matplotlib: the "plot" extra)'
        ),
    )
    add("--no-progress", action="store_true", help="print no progress line while running")
    add("--events", action="store_true", help="print each refresh event of the background policy as it happens")
    add(
        "--processes",
        type=count,
        metavar="N",
        help="instead: N worker processes, each with its own credential wrapper, without and with "
        'share_across_processes; the token requests of each (needs the "processes" extra), >= 1',
    )
    add("--version", action="version", version=f"bgrefresh-policy {__version__}")
    return parser


class _AzureCoreNoJitter(AsyncBearerTokenCredentialPolicy):  # type: ignore[type-arg]
    """azure-core's policy with its 0-60 s refresh jitter off, so compressed lifetimes stay exact."""

    async def _request_token(self, *scopes: str, **kwargs: Any) -> None:
        await super()._request_token(*scopes, **kwargs)
        self._refresh_jitter = 0


def _azure_core(credential: TokenEndpointCredential) -> Any:
    return _AzureCoreNoJitter(credential, SCOPE)


def _ours(credential: TokenEndpointCredential, on_refresh: Callable[[RefreshEvent], None] | None = None) -> Any:
    policy: Any = AsyncBackgroundRefreshTokenPolicy(credential, SCOPE, on_refresh=on_refresh)
    policy._store.draw_jitter = lambda: 0  # the same compression as for azure-core's policy
    return policy


_POLICIES: dict[str, Callable[..., Any]] = {
    "azure-core policy": _azure_core,
    "background refresh": _ours,
}


def print_event(event: RefreshEvent) -> None:
    """One line per refresh event, as ``--events`` shows them: never the token."""
    mode = "background" if event.background else "inline"
    error = f" ({type(event.error).__name__}: {event.error})" if event.error is not None else ""
    left = f", {event.validity_left:.1f} s left on the token in use" if event.validity_left is not None else ""
    print(f"\n  refresh event: {mode} {event.outcome.value} in {event.duration * 1000:.0f} ms{left}{error}", flush=True)


def _progress_printer(name: str, duration: float, enabled: bool) -> Callable[[float, list[Sample]], None]:
    interactive = sys.stdout.isatty()
    last_second = [-1]

    def show(elapsed: float, samples: list[Sample]) -> None:
        if not enabled or (not interactive and int(elapsed) == last_second[0] and elapsed < duration):
            return
        last_second[0] = int(elapsed)
        done = min(1.0, elapsed / duration)
        bar = "#" * round(done * 20) + "." * (20 - round(done * 20))
        worst = max((s.latency for s in samples), default=0.0) * 1000
        line = f"{name:<24}[{bar}] {elapsed:4.1f}/{seconds_text(duration)} {len(samples):6d} done"
        line += f", worst {worst:6.0f} ms"
        print(("\r" + line) if interactive else line, end="" if interactive else "\n", flush=True)
        if interactive and elapsed >= duration:
            print()

    return show


async def _run(args: argparse.Namespace) -> dict[str, Run]:
    import aiohttp
    from azure.core.pipeline.transport import AioHttpTransport

    from .credential import TokenEndpointCredential
    from .servers import DemoServers

    servers = DemoServers(token_latency=args.token_latency, token_lifetime=_REFRESH_WINDOW + args.refresh_every)
    base_url = await servers.start()
    results: dict[str, Run] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for name, make_policy in _POLICIES.items():
                credential = TokenEndpointCredential(base_url + "/token")
                events = print_event if args.events and make_policy is _ours else None
                policy = make_policy(credential, on_refresh=events) if events else make_policy(credential)
                transport = AioHttpTransport(session=session, session_owner=False)
                pipeline: AsyncPipeline[Any, Any] = AsyncPipeline(transport, policies=[policy])
                # The first token, outside the timing: both policies would wait for it alike.
                await pipeline.run(HttpRequest("GET", base_url + "/resource"), enforce_https=False)
                before = servers.token_requests
                t0 = asyncio.get_running_loop().time()
                samples, pace = await drive(
                    pipeline,
                    base_url + "/resource",
                    rate=args.rate,
                    concurrency=args.concurrency,
                    duration=args.duration,
                    progress=_progress_printer(name, args.duration, not args.no_progress),
                    t0=t0,
                )
                arrivals = [moment - t0 for moment in credential.arrivals]
                results[name] = Run(samples, servers.token_requests - before, arrivals, pace)
                if isinstance(policy, AsyncBackgroundRefreshTokenPolicy):
                    await policy.close()
                await credential.close()
    finally:
        await servers.stop()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if importlib.util.find_spec("aiohttp") is None:
        parser.error(
            'the demo runs its servers with aiohttp: install the "demo" extra (from a checkout: pip install ".[demo]")'
        )
    if args.plot:
        check_plot_target(parser, args.plot)
    if args.processes is not None:
        return _main_processes(args)
    print(
        f"token endpoint answers in {seconds_text(args.token_latency)}; a new token is due every "
        f"{seconds_text(args.refresh_every)}; {args.rate:g} requests/s, at most {args.concurrency} in flight, "
        f"{seconds_text(args.duration)} per policy\n"
    )
    results = asyncio.run(_run(args))
    print()
    print(table(results, args.slow_ms))
    notes = pace_notes(results)
    if notes:
        print(notes)
    print()
    print(timeline(results, args.duration))
    base_p99 = percentile([s.latency for s in results["azure-core policy"].samples], 0.99) * 1000
    ours_p99 = percentile([s.latency for s in results["background refresh"].samples], 0.99) * 1000
    print(f"\np99 latency: azure-core policy {base_p99:.0f} ms, background refresh {ours_p99:.0f} ms")
    if args.plot:
        plot(results, args.plot, duration=args.duration, due_after=args.refresh_every)
        print(f"chart written to {args.plot}")
    return 0


async def _run_processes(args: argparse.Namespace) -> dict[str, Any]:
    from .processes import run_processes
    from .servers import DemoServers

    servers = DemoServers(token_latency=args.token_latency, token_lifetime=_REFRESH_WINDOW + args.refresh_every)
    base_url = await servers.start()
    try:
        return await run_processes(
            servers, base_url + "/token", SCOPE, processes=args.processes, duration=args.duration, rate=args.rate
        )
    finally:
        await servers.stop()


def _main_processes(args: argparse.Namespace) -> int:
    print(
        f"{args.processes} worker processes, each with its own credential wrapper, asking for a token "
        f"{args.rate:.0f} times/s in all for {args.duration:.0f} s; token endpoint answers in "
        f"{args.token_latency:.1f} s; a new token is due every {args.refresh_every:.1f} s\n"
    )
    counts = asyncio.run(_run_processes(args))
    print(f"{'share_across_processes':<24}{'token requests at start-up':>28}{'in all':>8}")
    for option, row in counts.items():
        print(f"{option:<24}{row.start_up:>28}{row.total:>8}")
    return 0
