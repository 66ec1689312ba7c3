"""Both emulators behind one HTTPS listener on 127.0.0.1, with a throwaway certificate authority."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme
from aiohttp import web

from .arm import ArmService
from .entra import TokenEndpoint

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "TENANT_ID", "Emulator"]

TENANT_ID = "72f988bf-0000-4000-8000-00000000beef"
CLIENT_ID = "0c0ffee0-0000-4000-8000-00000000cafe"
CLIENT_SECRET = "emulator-client-secret-do-not-log"


class Emulator:
    """Entra ID and ARM on one loopback HTTPS port.

    ``ca_path`` is the PEM of the certificate authority that signed the server certificate;
    clients trust it through their transport (``connection_verify=``).
    """

    def __init__(self, workdir: Path) -> None:
        self.tokens = TokenEndpoint()
        self.arm = ArmService(self.tokens)
        self._ca = trustme.CA()
        self.ca_path = str(workdir / "emulator-ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(self.tokens.routes())
        app.add_routes(self.arm.routes())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"https://127.0.0.1:{port}"
        self.tokens.base_url = self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def authority(self) -> str:
        return self.url
