"""The emulators behind loopback HTTPS listeners, with a throwaway certificate authority."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme
from aiohttp import web

from .arm import ArmService
from .entra import TokenEndpoint

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "TENANT_ID", "Emulator", "abort_connections"]

TENANT_ID = "72f988bf-0000-4000-8000-00000000beef"
CLIENT_ID = "0c0ffee0-0000-4000-8000-00000000cafe"
CLIENT_SECRET = "emulator-client-secret-do-not-log"  # the value the secrets checks look for


def abort_connections(runner: web.AppRunner) -> None:
    """Drop every open connection of ``runner`` at once, without a TLS goodbye the client may never answer."""
    server = runner.server
    for handler in server.connections if server is not None else []:
        if handler.transport is not None:
            handler.transport.abort()


class _Listener:
    """One aiohttp app on 127.0.0.1 over HTTPS, which can stop and resume on the same port."""

    def __init__(self, app: web.Application, ca: trustme.CA) -> None:
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        self._ca = ca
        self._site: web.TCPSite | None = None
        self._trusted = True
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _tls(self, *, trusted: bool) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # An untrusted certificate comes from a CA no client was told about: a TLS failure.
        issuer = self._ca if trusted else trustme.CA()
        issuer.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context

    async def start(self) -> None:
        await self._runner.setup()
        await self.listen(trusted=True)

    async def listen(self, *, trusted: bool) -> None:
        if self._site is not None:
            if trusted == self._trusted:
                return  # already serving as asked: keep the clients' connections
            await self.refuse()
        self._trusted = trusted
        self._site = web.TCPSite(
            self._runner, "127.0.0.1", self.port, ssl_context=self._tls(trusted=trusted), reuse_address=True
        )
        await self._site.start()
        self.port = self._runner.addresses[0][1]

    async def refuse(self) -> None:
        """Stop listening and drop open connections: clients get 'connection refused'."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        server = self._runner.server
        for handler in server.connections if server is not None else []:
            handler.force_close()
            if handler.transport is not None:
                handler.transport.close()

    def abort_connections(self) -> None:
        abort_connections(self._runner)

    async def stop(self) -> None:
        await self._runner.cleanup()


class Emulator:
    """Entra ID (``authority``) and ARM (``url``) on two loopback HTTPS ports.

    Two ports, so the token endpoint can go down while ARM stays up. ``ca_path`` is the PEM of
    the certificate authority that signed both certificates; clients trust it through their
    transport (``connection_verify=``).
    """

    def __init__(self, workdir: Path) -> None:
        self.tokens = TokenEndpoint()
        self.arm = ArmService(self.tokens)
        ca = trustme.CA()
        self.ca_path = str(workdir / "emulator-ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        login_app, arm_app = web.Application(), web.Application()
        login_app.add_routes(self.tokens.routes())
        arm_app.add_routes(self.arm.routes())
        self._login = _Listener(login_app, ca)
        self._arm = _Listener(arm_app, ca)

    @property
    def authority(self) -> str:
        return self._login.url

    @property
    def url(self) -> str:
        return self._arm.url

    async def start(self) -> None:
        await self._login.start()
        await self._arm.start()
        self.tokens.base_url = self.authority

    async def token_endpoint_offline(self) -> None:
        """The token endpoint refuses connections (ARM stays up)."""
        await self._login.refuse()

    async def token_endpoint_online(self, *, trusted_certificate: bool = True) -> None:
        """The token endpoint listens again, on the same port, with a trusted or an untrusted certificate."""
        await self._login.listen(trusted=trusted_certificate)

    async def stop(self, *, abort: bool = False) -> None:
        """Stop both listeners; with ``abort``, drop open connections first (clients in other threads
        may hold theirs open past the end, and a graceful TLS close would wait for them)."""
        if abort:
            self._arm.abort_connections()
            self._login.abort_connections()
        await self._arm.stop()
        await self._login.stop()
