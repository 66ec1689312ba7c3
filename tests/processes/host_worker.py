"""A worker process for the share_across_processes tests: a real azure-identity credential, wrapped.

The test drives each worker over a pipe, one command at a time, so that it decides the order of
every step: ``go`` (tell the test it has arrived, then ask for the first token), ``token`` (one
``get_token``), ``events`` (how each credential call of the wrapper ended), ``stop``. A worker
is spawned (``spawn_worker``) or forked by a spawned parent that built the wrapper before the
fork (``fork_workers``), as gunicorn --preload and multiprocessing's "fork" pool do.

The tokens the pipe carries are the loopback emulator's throwaway tokens.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
from dataclasses import dataclass
from typing import Any

from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential

import bgrefresh_policy
import bgrefresh_policy.aio
from tests.emulator.server import CLIENT_ID, CLIENT_SECRET, TENANT_ID

SCOPE = "https://vault.azure.net/.default"
Connection = multiprocessing.connection.Connection


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker builds: where the emulator is, the wrapper's name (None: no sharing) and options."""

    authority: str
    ca_path: str
    name: str | None
    asynchronous: bool = False
    refresh_timeout: float = 30.0


def _identity(config: WorkerConfig) -> dict[str, Any]:
    return {"authority": config.authority, "disable_instance_discovery": True, "connection_verify": config.ca_path}


def build(config: WorkerConfig) -> tuple[Any, list[str]]:
    """The wrapper on azure-identity's real ClientSecretCredential, and the outcomes of its credential calls."""
    outcomes: list[str] = []

    def record(event: bgrefresh_policy.RefreshEvent) -> None:
        outcomes.append(f"{'background' if event.background else 'inline'}:{event.outcome.value}")

    kind: Any = bgrefresh_policy.aio.BackgroundRefreshCredential if config.asynchronous else None
    credential: Any
    if config.asynchronous:
        credential = AsyncClientSecretCredential(TENANT_ID, CLIENT_ID, CLIENT_SECRET, **_identity(config))
    else:
        credential = ClientSecretCredential(TENANT_ID, CLIENT_ID, CLIENT_SECRET, **_identity(config))
        kind = bgrefresh_policy.BackgroundRefreshCredential
    wrapper = kind(
        credential,
        share_across_processes=config.name,
        refresh_timeout=config.refresh_timeout,
        on_refresh=record,
    )
    return wrapper, outcomes


_ASKS = ("go", "token")  # the commands answered with a token


def _answer(command: str, token: str | None, outcomes: list[str]) -> object:
    if command == "events":
        return list(outcomes)
    if token is None:
        raise ValueError(command)
    return token


def _serve_sync(wrapper: Any, outcomes: list[str], pipe: Connection, *, until: str = "stop") -> None:
    pipe.send(("ready", os.getpid()))
    while (command := pipe.recv()) != until:
        if command == "go":
            pipe.send(("arrived", os.getpid()))
        token = str(wrapper.get_token(SCOPE).token) if command in _ASKS else None
        pipe.send(_answer(command, token, outcomes))


async def _serve_async(config: WorkerConfig, pipe: Connection) -> None:
    wrapper, outcomes = build(config)
    async with wrapper:
        pipe.send(("ready", os.getpid()))
        while (command := await asyncio.to_thread(pipe.recv)) != "stop":
            if command == "go":
                pipe.send(("arrived", os.getpid()))
            token = str((await wrapper.get_token(SCOPE)).token) if command in _ASKS else None
            pipe.send(_answer(command, token, outcomes))


def serve(config: WorkerConfig, pipe: Connection) -> None:
    """A spawned worker's main: build the wrapper, then answer the test's commands until ``stop``."""
    if config.asynchronous:
        asyncio.run(_serve_async(config, pipe))
        return
    wrapper, outcomes = build(config)
    with wrapper:
        _serve_sync(wrapper, outcomes, pipe)


def fork_parent(config: WorkerConfig, pipes: list[Connection], control: Connection | None = None) -> None:
    """A spawned parent's main: build one sync wrapper, fork a worker per pipe, and wait for them.

    With a ``control`` pipe, the parent first answers ``token`` commands on it until ``fork``: the
    test can have it hold a token, and a refresh in flight, as it forks.
    """
    wrapper, outcomes = build(config)
    if control is not None:
        _serve_sync(wrapper, outcomes, control, until="fork")
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_serve_sync, args=(wrapper, outcomes, pipe)) for pipe in pipes]
    for child in children:
        child.start()
    for child in children:
        child.join()
