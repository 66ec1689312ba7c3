"""share_across_processes within one process: the store's files, their permissions, bad files, the rules.

Real files and filelock's real OS locks, in a private ``XDG_RUNTIME_DIR`` per test; the processes
of the host are in ``tests/processes/test_host_sharing.py``. Wrappers of one name in one process
share through the store exactly as processes do (each has its own engine), which is what lets
these tests show the rules with gates and order alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import filelock
import pytest
import trio
from azure.core.credentials import AccessTokenInfo

import bgrefresh_policy
import bgrefresh_policy.aio
from bgrefresh_policy._host_store import FORMAT, VERSION, HostStore, NotPrivateError, host_directory
from bgrefresh_policy._key_state import TokenKey
from tests.credential.conftest import OTHER_SCOPE, SCOPE
from tests.support import HANG_GUARD, ScriptedCredential, SyncScriptedCredential, bearer, make_request

KEY = TokenKey.of([SCOPE])
NAME = "payments"
_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(directory))
    return directory


def sync_inner() -> SyncScriptedCredential:
    return SyncScriptedCredential(clock=time.time)


def sharing(inner: Any, name: str = NAME, **options: Any) -> Any:
    return bgrefresh_policy.BackgroundRefreshCredential(inner, share_across_processes=name, **options)


def store() -> HostStore:
    return HostStore(NAME, host_directory())


def seen(token: Any) -> tuple[str, int, int | None] | None:
    """What a token holds, to compare (``AccessTokenInfo`` compares by identity)."""
    return None if token is None else (token.token, token.expires_on, token.refresh_on)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bgrefresh_policy._host_store" and r.levelno == logging.WARNING]


# --- the store: where, who may read it, what it is called -----------------------------------


def test_the_store_is_a_private_directory_of_private_files_named_by_a_hash(runtime: Path) -> None:
    with sharing(sync_inner()) as wrapper:
        token = wrapper.get_token(SCOPE, OTHER_SCOPE).token
    directory = runtime / f"bgrefresh-policy-{os.geteuid()}"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(directory.iterdir())
    assert [f.suffix for f in files] == [".lock", ".token"]
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        assert re.fullmatch(r"[0-9a-f]{40}\.(lock|token)", file.name)  # no token, scope or name in it
    assert token not in (files[0].name + files[1].name)


def test_a_wrapper_of_the_same_name_takes_the_stored_token_and_one_of_another_name_does_not() -> None:
    first, same, other = sync_inner(), sync_inner(), sync_inner()
    with sharing(first) as a, sharing(same) as b, sharing(other, "reports") as c:
        token = a.get_token_info(SCOPE)
        assert seen(b.get_token_info(SCOPE)) == seen(token)
        assert c.get_token_info(SCOPE).token == "token-1"
    assert (len(first.calls), len(same.calls), len(other.calls)) == (1, 0, 1)


def test_an_existing_directory_that_is_not_private_is_refused(runtime: Path) -> None:
    directory = runtime / f"bgrefresh-policy-{os.geteuid()}"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    with pytest.raises(NotPrivateError, match="only this user"):
        sharing(sync_inner())
    directory.rmdir()
    directory.symlink_to(runtime)  # someone else's link would lead elsewhere
    with pytest.raises(PermissionError):
        sharing(sync_inner())


@pytest.mark.parametrize("name", [b"x", 3, None])
def test_a_name_must_be_a_str(name: object) -> None:
    if name is None:  # None is the default: no sharing, no store
        bgrefresh_policy.BackgroundRefreshCredential(sync_inner(), share_across_processes=None)
        return
    with pytest.raises(TypeError, match="share_across_processes must be a str"):
        sharing(sync_inner(), name)  # type: ignore[arg-type]


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        sharing(sync_inner(), "")


# --- the rules --------------------------------------------------------------------------------


def test_a_token_this_process_holds_is_never_taken_back_from_the_store() -> None:
    # The engine asks again for a token it holds only when it must (due, or refused with a 401):
    # the store's copy of that same token is then no answer.
    inner = sync_inner()
    with sharing(inner) as wrapper:
        shared = wrapper._credential
        first = shared.get_token_info(SCOPE)
        inner.lifetime = 7200  # its next token is newer
        second = shared.get_token_info(SCOPE)
    assert (first.token, second.token) == ("token-1", "token-2")
    assert seen(store().read(KEY)) == seen(second)


def test_a_stored_token_with_under_min_validity_left_is_not_taken() -> None:
    store().write(KEY, AccessTokenInfo("nearly-spent", int(time.time() + 30)))
    inner = sync_inner()
    with sharing(inner, min_validity=60) as wrapper:
        assert wrapper.get_token(SCOPE).token == "token-1"
    assert store().read(KEY).token == "token-1"  # type: ignore[union-attr]


def test_a_call_with_claims_reaches_the_credential_and_is_not_stored() -> None:
    inner = sync_inner()
    with sharing(inner) as wrapper:
        wrapper.get_token(SCOPE, claims='{"access_token": {}}')
    assert inner.calls[0].options == {"claims": '{"access_token": {}}'}
    assert store().read(KEY) is None


def test_a_stored_token_never_gives_way_to_an_older_one() -> None:
    newer = AccessTokenInfo("newer", int(time.time() + 7200))
    inner = sync_inner()  # answers with a 3600 s token
    with sharing(inner) as wrapper:
        shared = wrapper._credential
        shared._held[KEY] = newer.expires_on  # this process holds it already: the store is no answer
        store().write(KEY, newer)
        assert shared.get_token_info(SCOPE).token == "token-1"
    assert seen(store().read(KEY)) == seen(newer)


# --- bad files: ignored with one WARNING, never a token taken from them -------------------------


def _record(**changes: Any) -> bytes:
    record = {
        "format": FORMAT,
        "version": VERSION,
        "key": {"name": NAME, "scopes": [SCOPE], "tenant_id": None, "cae": False},
        "token": "from-a-bad-file",
        "expires_on": int(time.time() + 3600),
        "refresh_on": None,
        **changes,
    }
    return json.dumps(record).encode()


def _write(content: bytes, mode: int = 0o600) -> Path:
    path = store().path(KEY, ".token")
    path.write_bytes(content)
    path.chmod(mode)
    return path


BAD_FILES: dict[str, Callable[[], Path]] = {
    "not JSON": lambda: _write(b"\x00\xff garbage"),
    "truncated": lambda: _write(_record()[:40]),
    "another format": lambda: _write(json.dumps({"access_token": "from-a-bad-file"}).encode()),
    "a later version": lambda: _write(_record(version=VERSION + 1)),
    "another key's": lambda: _write(_record(key={"name": NAME, "scopes": [OTHER_SCOPE], "tenant_id": None})),
    "no expiry": lambda: _write(_record(expires_on="soon")),
    "readable by others": lambda: _write(_record(), mode=0o644),
    "too large": lambda: _write(_record(padding="x" * 300_000)),
}


def _symlink() -> Path:
    target = store().directory.parent / "elsewhere"
    target.write_bytes(_record())
    target.chmod(0o600)
    path = store().path(KEY, ".token")
    path.symlink_to(target)
    return path


BAD_FILES["a symlink"] = _symlink


@pytest.mark.parametrize("bad", sorted(BAD_FILES))
def test_a_bad_store_file_is_ignored_with_one_warning_and_replaced_by_the_credentials_token(
    bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    BAD_FILES[bad]()
    assert store().read(KEY) is None
    reader = store()
    assert (reader.read(KEY), reader.read(KEY)) == (None, None)
    inner = sync_inner()
    with sharing(inner) as wrapper:
        assert wrapper.get_token(SCOPE).token == "token-1"  # never the file's
    assert len(inner.calls) == 1
    assert store().read(KEY).token == "token-1"  # type: ignore[union-attr]
    warned = warnings_of(caplog)
    assert len(warned) == 3  # one per store object that met it: the first reader, the second, the wrapper
    assert all("from-a-bad-file" not in r.getMessage() for r in warned)


_DIES_WRITING = """
import os, signal, sys, time
from azure.core.credentials import AccessTokenInfo
from bgrefresh_policy import _host_store
from bgrefresh_policy._key_state import TokenKey

class HalfThenDie:
    def __init__(self, descriptor, mode):
        self.descriptor = descriptor
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
    def write(self, data):
        os.write(self.descriptor, data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)

store = _host_store.HostStore(sys.argv[1], _host_store.host_directory())
lock = store.lock(TokenKey.of([sys.argv[2]]))
lock.acquire()  # as a refresh holds it
_host_store.os.fdopen = HalfThenDie
store.write(TokenKey.of([sys.argv[2]]), AccessTokenInfo("the-new-one", int(time.time() + 7200)))
"""


def test_a_process_killed_while_writing_leaves_the_stored_token_and_the_lock_usable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = AccessTokenInfo("the-old-one", int(time.time() + 3600))
    store().write(KEY, old)
    died = subprocess.run([sys.executable, "-c", _DIES_WRITING, NAME, SCOPE], cwd=_ROOT, timeout=HANG_GUARD)
    assert died.returncode == -9  # killed halfway through its write, holding the lock
    assert seen(store().read(KEY)) == seen(old)
    assert warnings_of(caplog) == []
    assert store().lock(KEY).acquire(blocking=False)  # the kernel dropped the dead process's lock


# --- async callers wait for the lock on a thread -------------------------------------------------


async def test_an_asyncio_call_waits_for_the_host_lock_off_the_event_loop() -> None:
    inner = ScriptedCredential(clock=time.time)
    wrapper = bgrefresh_policy.aio.BackgroundRefreshCredential(inner, share_across_processes=NAME)
    other = store().lock(KEY)
    other.acquire()  # another process's refresh
    call = asyncio.create_task(wrapper.get_token(SCOPE))
    for _ in range(100):  # the loop runs on while the call waits
        await asyncio.sleep(0)
    assert not call.done()
    assert inner.calls == []
    store().write(KEY, AccessTokenInfo("from-the-other-process", int(time.time() + 3600)))
    other.release()
    assert (await asyncio.wait_for(call, HANG_GUARD)).token == "from-the-other-process"
    assert inner.calls == []
    await wrapper.close()


def _lock_is_free() -> bool:
    lock = store().lock(KEY)
    try:
        lock.acquire(blocking=False)
    except filelock.Timeout:
        return False
    lock.release()
    return True


@pytest.fixture
def locks_kept(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every lock the store hands out, kept alive: a lock left held is then not freed by its collection."""
    kept: list[Any] = []
    made = HostStore.lock

    def keeping(self: HostStore, key: TokenKey) -> Any:
        kept.append(made(self, key))
        return kept[-1]

    monkeypatch.setattr(HostStore, "lock", keeping)
    return kept


async def test_an_asyncio_call_cancelled_while_it_waits_for_the_host_lock_leaves_it_free(locks_kept: list[Any]) -> None:
    wrapper = bgrefresh_policy.aio.BackgroundRefreshCredential(
        ScriptedCredential(clock=time.time), share_across_processes=NAME
    )
    other = store().lock(KEY)
    other.acquire()
    call = asyncio.create_task(wrapper.get_token(SCOPE))
    for _ in range(100):
        await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    other.release()  # while the abandoned wait may still be on its thread
    # Until that thread has ended: its wait stopped, or it let the lock go as soon as it got it.
    await asyncio.get_running_loop().shutdown_default_executor()
    assert _lock_is_free(), "the cancelled call's thread kept the host lock"
    await wrapper.close()


def test_a_trio_call_waits_for_the_host_lock_off_the_event_loop_and_can_be_cancelled(locks_kept: list[Any]) -> None:
    async def main() -> None:
        inner = ScriptedCredential(clock=time.time)
        wrapper = bgrefresh_policy.aio.BackgroundRefreshCredential(inner, share_across_processes=NAME)
        other = store().lock(KEY)
        other.acquire()
        done: list[str] = []

        async def ask() -> None:
            done.append((await wrapper.get_token(SCOPE)).token)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            for _ in range(100):  # trio runs on while the call waits
                await trio.lowlevel.checkpoint()
            assert done == []
            assert inner.calls == []
            nursery.cancel_scope.cancel()
        other.release()
        with trio.fail_after(HANG_GUARD):
            while not _lock_is_free():  # noqa: ASYNC110 - a file lock has no event to wait on
                await trio.sleep(0.01)
        assert await wrapper.get_token(SCOPE) is not None  # the lock is free: this call takes it
        assert len(inner.calls) == 1
        await wrapper.close()

    trio.run(main)


def test_a_policy_built_on_a_sharing_wrapper_shares_through_the_store_too() -> None:
    first, second = sync_inner(), sync_inner()
    with sharing(first) as stored_it, sharing(second) as wrapper:
        token = stored_it.get_token(SCOPE).token
        policy = bgrefresh_policy.BackgroundRefreshTokenPolicy(wrapper, SCOPE)
        request = make_request()
        policy.on_request(request)
        assert bearer(request) == f"Bearer {token}"
        assert policy._store is wrapper._store  # the wrapper's engine
    assert second.calls == []


def test_a_host_without_posix_user_ids_is_told_the_option_needs_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "geteuid")  # as on Windows
    with pytest.raises(NotImplementedError, match="POSIX"):
        sharing(sync_inner())


def test_a_lock_held_past_refresh_timeout_is_not_waited_on_again_for_ever(caplog: pytest.LogCaptureFixture) -> None:
    # A holder that is alive but stuck (its credential call hangs): after refresh_timeout, the
    # process asks its own credential rather than keep its callers waiting.
    stuck = store().lock(KEY)
    stuck.acquire()
    inner = sync_inner()
    with sharing(inner, refresh_timeout=0.2) as wrapper:
        assert wrapper.get_token(SCOPE).token == "token-1"
        assert wrapper._credential.get_token_info(SCOPE, options={"tenant_id": None}).token == "token-2"
    stuck.release()
    assert len(inner.calls) == 2
    told = [r.getMessage() for r in caplog.records if r.name == "bgrefresh_policy._host_credential"]
    assert len(told) == 1  # once, however often
    assert "longer than refresh_timeout (0.2 s)" in told[0]
