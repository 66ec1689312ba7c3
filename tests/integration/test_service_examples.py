"""The service examples (``docs/examples/service_aiohttp.py``, ``service_fastapi.py``), run for real.

Each runs in a process of its own (``service_runner``: aiohttp's ``web.run_app``, a real uvicorn
server), configured only through its environment: azure-identity's ``DefaultAzureCredential``
signs in at the loopback Entra ID emulator, and the real Key Vault, Blob and OpenAI clients talk
HTTPS to the loopback services, whose certificate authorities the process trusts through
``SSL_CERT_FILE``. The test holds token requests open at the emulator and shows, by order:
``/ready`` is 503 while the start-up token requests are held, 200 once they are answered; the
routes then use exactly the tokens warmed at start-up; with every token due and a refresh held
open, each route still answers; SIGTERM closes the clients and the credential.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.emulator.entra import Fault
from tests.emulator.server import CLIENT_ID, CLIENT_SECRET, TENANT_ID, Emulator
from tests.emulator.services import STORAGE_TENANT, VAULT_TENANT, Services
from tests.support import HANG_GUARD, eventually_async

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ["aiohttp", "fastapi"]
# A process importing azure, openai and a web framework on a busy machine.
START_GUARD = 2 * HANG_GUARD
DUE = 3400  # seconds after the tokens were issued: 200 s left, due whatever the jitter, above min_validity
# What /ready waits for before the warm-up: exactly the keys the three clients ask for.
KEYS = [
    f"https://vault.azure.net/.default tenant={VAULT_TENANT} cae",
    "https://storage.azure.com/.default tenant=home",
    f"https://storage.azure.com/.default tenant={STORAGE_TENANT}",
    "https://cognitiveservices.azure.com/.default tenant=home",
]


def environment(emulator: Emulator, services: Services, ca_bundle: Path) -> dict[str, str]:
    """The example's configuration: the emulators' addresses and tenants, and their CAs."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(("AZURE_", "OPENAI_"))}
    return {
        **inherited,
        "PYTHONPATH": str(ROOT),
        "SSL_CERT_FILE": str(ca_bundle),
        "AZURE_AUTHORITY_HOST": emulator.authority,
        "AZURE_TENANT_ID": TENANT_ID,
        "AZURE_CLIENT_ID": CLIENT_ID,
        "AZURE_CLIENT_SECRET": CLIENT_SECRET,
        "AZURE_KEYVAULT_URL": services.url,
        "AZURE_KEYVAULT_TENANT_ID": VAULT_TENANT,
        "AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE": "false",  # the vault is 127.0.0.1, not *.vault.azure.net
        "AZURE_STORAGE_ACCOUNT_URL": f"{services.url}/devstoreaccount1",
        "AZURE_STORAGE_TENANT_ID": STORAGE_TENANT,
        "AZURE_OPENAI_ENDPOINT": services.url,
        "AZURE_OPENAI_DEPLOYMENT": "gpt",
    }


@dataclass
class Service:
    """A running example, as the test drives it: over HTTP, and through its runner's stdin and stdout."""

    process: asyncio.subprocess.Process
    url: str
    http: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: dict[str, str]) -> tuple[int, Any]:
        async with self.http.post(self.url + path, json=body) as response:
            return response.status, await response.json()

    async def command(self, line: str) -> str:
        """Send the runner one command; its answer."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()
        return (await asyncio.wait_for(self.process.stdout.readline(), HANG_GUARD)).decode().strip()

    async def stop(self) -> tuple[dict[str, Any], str]:
        """SIGTERM, as an orchestrator stops it; the runner's report and the process's stderr."""
        self.process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(self.process.communicate(), START_GUARD)
        assert self.process.returncode == 0, stderr.decode()
        (report,) = [line[len("report ") :] for line in stdout.decode().splitlines() if line.startswith("report ")]
        return json.loads(report), stderr.decode()


@asynccontextmanager
async def running(example: str, emulator: Emulator, services: Services, ca_bundle: Path) -> AsyncIterator[Service]:
    """Start ``example`` on a loopback port the test bound; kill it if the test did not stop it."""
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.service_runner",
            example,
            str(listener.fileno()),
            pass_fds=[listener.fileno()],
            env=environment(emulator, services, ca_bundle),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=START_GUARD)) as http:
            yield Service(process, url, http)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


async def until(condition: Callable[[], object]) -> None:
    """Until the emulators have seen what the example process does (its own pace: a new process)."""
    await eventually_async(condition, timeout=START_GUARD)


async def until_ready(service: Service) -> Any:
    """Poll ``/ready`` as a probe does, until 200; its last body."""

    async def poll() -> Any:
        while True:
            status, body = await service.get("/ready")
            if status == 200:
                return body
            assert status == 503, body
            await asyncio.sleep(0.01)  # a probe's period, shortened: nothing waits on it

    return await asyncio.wait_for(poll(), START_GUARD)


async def every_route(service: Service) -> None:
    """Each route answers, through its client, with what the loopback service holds."""
    assert await service.get("/secrets/db") == (200, {"value": "value-of-db"})
    assert await service.get("/containers") == (200, {"containers": ["c1"]})
    assert await service.post("/chat", {"message": "hello"}) == (200, {"reply": "hi"})


def bearer_tokens(services: Services) -> set[str]:
    return {header.removeprefix("Bearer ") for header in services.authorizations if header is not None}


@pytest.fixture
def ca_bundle(emulator: Emulator, services: Services, tmp_path: Path) -> Path:
    """Both emulators' certificate authorities, for the example's ``SSL_CERT_FILE``."""
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(Path(emulator.ca_path).read_text() + Path(services.ca_path).read_text())
    return bundle


@pytest.mark.parametrize("example", EXAMPLES)
async def test_warm_up_readiness_routes_refresh_and_shutdown(
    example: str, emulator: Emulator, services: Services, ca_bundle: Path
) -> None:
    tokens = emulator.tokens
    tokens.hold()
    async with running(example, emulator, services, ca_bundle) as service:
        # Start-up: one token request per key, all held open at the token endpoint.
        await until(lambda: tokens.held == len(KEYS))
        assert await service.get("/live") == (200, {"live": True})
        assert await service.get("/ready") == (503, {"ready": False, "waiting_for": KEYS})
        tokens.release()
        assert await until_ready(service) == {"ready": True, "waiting_for": []}
        assert tokens.requests == len(KEYS)

        await every_route(service)
        # The clients asked for no token the warm-up had not fetched, and used every one it had.
        assert tokens.requests == len(KEYS)
        assert bearer_tokens(services) == set(tokens.issued)

        # Every token due, and the token endpoint holding every request open.
        tokens.hold()
        assert await service.command(f"shift {DUE}") == "shifted"
        services.forget()
        await every_route(service)  # each answered while no new token could be issued
        assert await service.get("/ready") == (200, {"ready": True, "waiting_for": []})
        await until(lambda: tokens.held >= 1)  # a background refresh the routes started, still held
        assert len(tokens.issued) == len(KEYS)
        assert bearer_tokens(services) <= set(tokens.issued)
        tokens.release()
        await until(lambda: tokens.held == 0 and len(tokens.issued) > len(KEYS))

        sessions = await service.command("snapshot")
        report, stderr = await service.stop()
    # The credential's, Key Vault's and Blob's sessions at least (the wrapped credential's own chain may hold more).
    assert int(sessions.removeprefix("sessions ")) >= 3
    assert report == {
        "credential_closed": True,
        "openai_closed": True,
        "sessions": int(sessions.removeprefix("sessions ")),
        "open_sessions": 0,
    }
    for trouble in ("Traceback", "Unclosed", "was destroyed", "never awaited"):
        assert trouble not in stderr, stderr


@pytest.mark.parametrize("example", EXAMPLES)
async def test_a_failed_warm_up_is_retried_by_the_probe_alone(
    example: str, emulator: Emulator, services: Services, ca_bundle: Path
) -> None:
    """A service that is not ready gets no requests: its readiness probe must bring the tokens in itself."""
    tokens = emulator.tokens
    tokens.fault = Fault.MALFORMED_JSON
    async with running(example, emulator, services, ca_bundle) as service:
        await until(lambda: tokens.failed >= len(KEYS))
        assert await service.get("/ready") == (503, {"ready": False, "waiting_for": KEYS})
        tokens.fault = Fault.NONE
        assert await until_ready(service) == {"ready": True, "waiting_for": []}
        assert services.seen == []  # no route was called: the probes fetched the tokens
        _, stderr = await service.stop()
    for key in KEYS:  # each failure logged by its key and type, never with the response body it quotes
        assert f"no token for {key} yet: ClientAuthenticationError\n" in stderr
