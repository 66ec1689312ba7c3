"""A service's Azure side: one credential for three clients, warmed, probed, closed in order.

``service_aiohttp.py`` and ``service_fastapi.py`` serve the same routes with it. Configured from
the environment:

- ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET`` (or a managed identity, or
  any other source ``DefaultAzureCredential`` tries), and ``AZURE_AUTHORITY_HOST`` for another
  cloud's token endpoint: read by azure-identity itself.
- ``AZURE_KEYVAULT_URL``; ``AZURE_KEYVAULT_TENANT_ID``, the tenant the vault's challenge names
  (defaults to ``AZURE_TENANT_ID``); ``AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE=false`` only for
  a vault whose address is not under the challenge's resource (an emulator, a custom domain).
- ``AZURE_STORAGE_ACCOUNT_URL``; ``AZURE_STORAGE_TENANT_ID`` only when the account is in another
  tenant than the credential.
- ``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_DEPLOYMENT``, ``OPENAI_API_VERSION`` (optional).

A certificate authority of your own (a TLS-inspecting proxy) goes in ``SSL_CERT_FILE``, which
every HTTP stack here reads when the process starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import bgrefresh_policy.aio
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient
from azure.storage.blob.aio import BlobServiceClient
from bgrefresh_policy import TokenStatus
from openai import AsyncAzureOpenAI

__all__ = ["AzureServices", "Readiness", "Settings", "TokenKey"]

_LOGGER = logging.getLogger(__name__)

VAULT_SCOPE = "https://vault.azure.net/.default"
STORAGE_SCOPE = "https://storage.azure.com/.default"
OPENAI_SCOPE = "https://cognitiveservices.azure.com/.default"


@dataclass(frozen=True)
class TokenKey:
    """One token the clients ask the credential for: what start-up warms and readiness checks.

    The credential keeps one token per scopes, tenant and CAE setting, as it was asked: a token
    for the same scope with another tenant, or without CAE, is another key.
    """

    scope: str
    tenant_id: str | None = None
    cae: bool = False

    def matches(self, status: TokenStatus) -> bool:
        """Whether ``status`` (from ``token_status()``) is this key's."""
        return (
            status.scopes == (self.scope,)
            and status.tenant_id == self.tenant_id
            and status.cae == self.cae
        )

    def __str__(self) -> str:
        return f"{self.scope} tenant={self.tenant_id or 'home'}{' cae' if self.cae else ''}"


@dataclass(frozen=True)
class Settings:
    """Where the services are, and which tenants their challenges name."""

    vault_url: str
    vault_tenant: str
    verify_vault_challenge: bool
    account_url: str
    storage_tenant: str | None
    openai_endpoint: str
    openai_deployment: str
    openai_api_version: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the variables the module's docstring lists.

        :raises KeyError: a required variable is missing.
        """
        vault_tenant = environ.get("AZURE_KEYVAULT_TENANT_ID") or environ.get("AZURE_TENANT_ID")
        if not vault_tenant:
            raise KeyError(
                "AZURE_KEYVAULT_TENANT_ID (or AZURE_TENANT_ID): Key Vault's token is per tenant"
            )
        return cls(
            vault_url=environ["AZURE_KEYVAULT_URL"],
            vault_tenant=vault_tenant,
            verify_vault_challenge=environ.get(
                "AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE", "true"
            ).lower()
            != "false",
            account_url=environ["AZURE_STORAGE_ACCOUNT_URL"],
            storage_tenant=environ.get("AZURE_STORAGE_TENANT_ID") or None,
            openai_endpoint=environ["AZURE_OPENAI_ENDPOINT"],
            openai_deployment=environ["AZURE_OPENAI_DEPLOYMENT"],
            openai_api_version=environ.get("OPENAI_API_VERSION", "2024-10-21"),
        )

    def token_keys(self) -> tuple[TokenKey, ...]:
        """Exactly the keys the three clients ask for: each cold one makes a request wait.

        :return: the keys, one per token the service needs.
        """
        # Key Vault's challenge policy first sends a request without a token; the vault's 401
        # names its tenant, and the policy asks for the challenge's scope with that tenant, even
        # when it is the credential's own, and with enable_cae=True (azure-keyvault-secrets 4.8
        # and later).
        keys = [TokenKey(VAULT_SCOPE, self.vault_tenant, cae=True)]
        # Storage's policy (azure-core's) asks for its scope with no tenant. An account in
        # another tenant answers that token with a 401 naming its tenant, and the policy asks
        # again for that tenant; it does so at each refresh too (it refreshes with no tenant):
        # two keys.
        keys.append(TokenKey(STORAGE_SCOPE))
        if self.storage_tenant is not None:
            keys.append(TokenKey(STORAGE_SCOPE, self.storage_tenant))
        # The token provider asks for the scope it was given, no tenant, no CAE.
        keys.append(TokenKey(OPENAI_SCOPE))
        return tuple(keys)

    def other_tenants(self) -> list[str]:
        """The tenants the challenges name, which azure-identity refuses unless allowed."""
        return [
            tenant for tenant in (self.vault_tenant, self.storage_tenant) if tenant is not None
        ]


@dataclass(frozen=True)
class Readiness:
    """What ``/ready`` answers: ready once no key the service needs is without a valid token."""

    waiting_for: tuple[TokenKey, ...]

    @property
    def status(self) -> int:
        """The HTTP status: 200 when ready, 503 before."""
        return 503 if self.waiting_for else 200

    def body(self) -> dict[str, Any]:
        """The JSON body: the keys still waited for, never a token."""
        return {
            "ready": not self.waiting_for,
            "waiting_for": [str(key) for key in self.waiting_for],
        }


class AzureServices:
    """The credential, the three clients on it, and the warm-up of the tokens they need.

    Build it on the event loop that serves requests (in a lifespan handler), then call
    :meth:`start_warm_up`; :meth:`close` at shutdown.

    :param settings: where the services are.
    """

    def __init__(self, settings: Settings) -> None:
        identity = DefaultAzureCredential(additionally_allowed_tenants=settings.other_tenants())
        # refresh_when_idle: every key a call was served for (prefetch's too) is refreshed when
        # it falls due even if no request comes. Without it a quiet hour lets the tokens expire,
        # the probe below turns the service unready, and a service that gets no traffic while
        # unready gets none to refresh them. A key asked for once with claims is not kept fresh.
        self.credential = bgrefresh_policy.aio.BackgroundRefreshCredential(
            identity, refresh_when_idle=True
        )
        self.vault = SecretClient(
            settings.vault_url,
            self.credential,
            verify_challenge_resource=settings.verify_vault_challenge,
        )
        self.blobs = BlobServiceClient(settings.account_url, credential=self.credential)
        provider = bgrefresh_policy.aio.get_bearer_token_provider(self.credential, OPENAI_SCOPE)
        self.openai = AsyncAzureOpenAI(
            azure_endpoint=settings.openai_endpoint,
            api_version=settings.openai_api_version,
            azure_ad_token_provider=provider,
        )
        self.deployment = settings.openai_deployment
        self.keys = settings.token_keys()
        self._warm_up: asyncio.Task[None] | None = None

    # --- start-up and readiness -------------------------------------------------------------

    def start_warm_up(self) -> None:
        """Prefetch every key in a background task, unless one runs already.

        Not awaited: the server answers ``/live`` (and ``/ready`` with 503) while the token
        endpoint is slow, rather than failing its liveness probe.
        """
        if self._warm_up is None or self._warm_up.done():
            self._warm_up = asyncio.create_task(self._prefetch_all(), name="token warm-up")

    async def _prefetch_all(self) -> None:
        prefetches = (
            self.credential.prefetch(k.scope, tenant_id=k.tenant_id, enable_cae=k.cae)
            for k in self.keys
        )
        outcomes = await asyncio.gather(*prefetches, return_exceptions=True)
        for key, outcome in zip(self.keys, outcomes, strict=True):
            if isinstance(outcome, Exception):
                # The type only: azure-core's DecodeError quotes the response body, and a token
                # response cut short would put part of a token in the log.
                _LOGGER.warning("no token for %s yet: %s", key, type(outcome).__name__)

    def readiness(self) -> Readiness:
        """Ready once every key holds a valid token; never waits.

        Reads only the service's own keys: a token the engine holds for another key does not
        count. While a key has none, start a warm-up: nothing else would ask for it once the
        load balancer stops sending requests to a service that is not ready (a start-up that met
        a failing token endpoint, or tokens that expired while it was down).
        """
        statuses = self.credential.token_status()
        waiting = tuple(
            key for key in self.keys if not any(key.matches(s) and s.healthy for s in statuses)
        )
        if waiting:
            self.start_warm_up()
        return Readiness(waiting)

    # --- shutdown ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the clients, then the credential wrapper, which closes the credential it wraps.

        In this order because a client that is still finishing a request may ask the credential
        for a token: closed first, the credential would reopen its HTTP session for it, and
        nothing would close that one. The wrapper cancels its background refreshes, and the
        token provider's, before it closes the credential, so none runs on a closed one.
        """
        if self._warm_up is not None:
            self._warm_up.cancel()
            await asyncio.gather(self._warm_up, return_exceptions=True)
        await self.vault.close()
        await self.blobs.close()
        await self.openai.close()
        await self.credential.close()

    # --- what the routes do -----------------------------------------------------------------

    async def secret(self, name: str) -> str | None:
        """A secret's value, from Key Vault."""
        return (await self.vault.get_secret(name)).value

    async def containers(self) -> list[str]:
        """The names of the storage account's containers."""
        return [container.name async for container in self.blobs.list_containers()]

    async def chat(self, message: str) -> str | None:
        """One chat completion from the Azure OpenAI deployment."""
        completion = await self.openai.chat.completions.create(
            model=self.deployment, messages=[{"role": "user", "content": message}]
        )
        return completion.choices[0].message.content
