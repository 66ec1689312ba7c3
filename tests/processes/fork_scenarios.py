"""States a process can be forked in, each run as ``python -m tests.processes.fork_scenarios NAME``.

Each scenario sets a policy up in the parent, forks with ``os.fork`` (as gunicorn --preload,
multiprocessing's "fork" and Celery's prefork pool do), and checks in the child that requests get
tokens and the child makes its own refreshes. The child ends itself on SIGALRM if it hangs; the
parent prints the child's report and exits with the child's status.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from bgrefresh_policy import _sharing
from tests.support import (
    HANG_GUARD,
    FakeClock,
    ScriptedCredential,
    SyncScriptedCredential,
    blocked_in_wait,
    eventually,
    loop_until,
    make_request,
)
from tests.sync.conftest import attach, make_sync_policy, prime
from tests.unit.conftest import make_policy

# Seconds a child may take before SIGALRM ends it: a hang, not slowness (see HANG_GUARD).
_CHILD_GUARD = int(HANG_GUARD)


def _fork(child: Callable[[], Any]) -> int:
    """Run ``child()`` in a forked child; print its report; return its exit status."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        _report_and_exit(read, write, child)
    return _reap(pid, read, write)


def _report_and_exit(read: int, write: int, check: Callable[[], Any]) -> None:
    """In the child: run ``check()`` under the hang guard, write the report to the parent, exit."""
    os.close(read)
    signal.alarm(_CHILD_GUARD)
    try:
        report: dict[str, Any] = {"ok": True, "result": check()}
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        report = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    os.write(write, json.dumps(report).encode())
    os._exit(0 if report["ok"] else 1)


def _reap(pid: int, read: int, write: int) -> int:
    """In the parent: wait for the child, print its report, return its exit status."""
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        print(pipe.read() or f"the child left no report (wait status {status})")
    return os.waitstatus_to_exitcode(status)


def _gated_sync() -> tuple[Any, SyncScriptedCredential, FakeClock]:
    clock = FakeClock()
    credential = SyncScriptedCredential(clock=clock)
    return make_sync_policy(credential, clock, refresh_timeout=3600), credential, clock


def inline_in_flight() -> int:
    """A request waits on an inline refresh in another thread as the process forks."""
    policy, credential, _ = _gated_sync()
    credential.gate = gate = threading.Event()
    waiting = threading.Thread(target=attach, args=(policy,))
    waiting.start()
    eventually(lambda: blocked_in_wait(gate) == 1)  # parked on the gate, past the credential's own lock

    def child() -> list[str]:
        credential.gate = None  # the child's own calls answer at once
        new_policy = make_sync_policy(credential, policy._store.clock)  # built after the fork, as advised
        headers = [attach(new_policy), attach(policy)]
        assert len(credential.calls) == 3, credential.calls  # the parent's, then one for each store here
        return headers

    status = _fork(child)
    gate.set()
    waiting.join()
    policy.close()
    return status


def background_in_flight() -> int:
    """A background refresh is held in the parent as it forks; in the child the token expires."""
    policy, credential, clock = _gated_sync()
    prime(policy, clock)
    credential.gate = gate = threading.Event()
    attach(policy)  # due: the background refresh starts, and waits on the gate
    eventually(lambda: blocked_in_wait(gate) == 1)  # parked on the gate, past the credential's own lock

    def child() -> str:
        credential.gate = None
        clock.advance(300)  # token-1 has expired: the request must get a new token from this process
        header = attach(policy)
        assert header == "Bearer token-3", header  # not the parent's token-2, which never comes here
        return header

    status = _fork(child)
    gate.set()
    policy.close()
    return status


def close_in_child() -> int:
    """close() and wait_for_refreshes() in a child do not wait for the parent's refresh thread."""
    policy, credential, clock = _gated_sync()
    prime(policy, clock)
    credential.gate = gate = threading.Event()
    attach(policy)
    eventually(lambda: blocked_in_wait(gate) == 1)

    def child() -> list[object]:
        credential.gate = None
        waited = policy.wait_for_refreshes()  # no timeout: the parent's thread would be waited for forever
        policy.close()  # refresh_timeout=3600: waiting for the parent's thread would hang
        return [waited, policy.closed, attach(policy)]

    status = _fork(child)
    gate.set()
    policy.close()
    return status


def locks_held() -> int:
    """Another thread holds the store's, the runner's and the registry's locks at the fork."""
    policy, credential, clock = _gated_sync()
    prime(policy, clock)
    policy._runner.flights  # noqa: B018 - the runner exists
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with _sharing._LOCK, policy._store._lock, policy._runner._lock:
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()

    def child() -> list[str]:
        header = attach(policy)  # due: decides under the store's lock, starts a thread under the runner's
        assert policy.wait_for_refreshes(HANG_GUARD)
        other = make_sync_policy(credential, clock)  # the registry's lock
        return [header, attach(policy), attach(other)]

    status = _fork(child)
    release.set()
    holder.join()
    policy.close()
    return status


def idle_timer() -> int:
    """An idle timer armed in the parent refreshes the token in the child, with no request there."""
    clock = FakeClock()
    credential = SyncScriptedCredential(clock=clock)
    policy = make_sync_policy(credential, clock, refresh_when_idle=True)
    prime(policy, clock)  # token-1 is due now; the parent's timer was armed for a real 3,400 s from now

    def child() -> str:
        eventually(lambda: len(credential.calls) == 2)  # the re-armed timer refreshed it
        assert policy.wait_for_refreshes(HANG_GUARD)
        header = attach(policy)
        assert header == "Bearer token-2", header
        return header

    status = _fork(child)
    policy.close()
    return status


def inside_event_loop() -> int:
    """Forked from a coroutine while a background refresh is in flight; the child goes on in the loop."""
    clock = FakeClock()
    credential = ScriptedCredential(clock=clock)
    policy = make_policy(credential, clock)

    async def main() -> int:
        await policy.on_request(make_request())
        clock.advance(3400)
        credential.gate = gate = asyncio.Event()
        await policy.on_request(make_request())  # the background refresh starts, and waits on the gate
        await loop_until(lambda: len(credential.calls) == 2)

        async def in_child() -> str:
            credential.gate = None
            await policy.on_request(make_request())  # due, and the parent's refresh is not here: start our own
            await policy.wait_for_refreshes()
            request = make_request()
            await policy.on_request(request)
            header = str(request.http_request.headers["Authorization"])
            assert header == "Bearer token-3", header  # this process's own background refresh
            return header

        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            # asyncio itself drops the running loop in a forked child (3.11.5+): the child runs its own,
            # as a multiprocessing target forked from a coroutine would.
            _report_and_exit(read, write, lambda: asyncio.run(in_child()))
        status = _reap(pid, read, write)
        gate.set()
        await policy.close()
        return status

    return asyncio.run(main())


def jitter_redrawn() -> int:
    """Each child draws its cached tokens' jitter anew: workers must not all refresh at one moment."""
    policy, _, clock = _gated_sync()
    prime(policy, clock, age=0)  # token-1, drawn with no jitter
    policy._store.draw_jitter = lambda: 17  # what the child's draw gives

    def child() -> str:
        current = policy._store.current(policy._default_key)
        assert current is not None
        assert current.jitter == 17, current.jitter
        return attach(policy)

    status = _fork(child)
    policy.close()
    return status


def families_lock_held() -> int:
    """Another thread holds the lock enable_background_refresh takes to make a family's class."""
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy

    from bgrefresh_policy import _families

    class SomeFamilyPolicy(BearerTokenCredentialPolicy):  # type: ignore[type-arg]
        pass

    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with _families._LOCK:
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()

    def child() -> str:
        return _families.background_class(SomeFamilyPolicy).__name__

    status = _fork(child)
    release.set()
    holder.join()
    return status


SCENARIOS = {
    scenario.__name__: scenario
    for scenario in (
        inline_in_flight,
        background_in_flight,
        close_in_child,
        locks_held,
        idle_timer,
        inside_event_loop,
        jitter_redrawn,
        families_lock_held,
    )
}

if __name__ == "__main__":
    sys.exit(SCENARIOS[sys.argv[1]]())
