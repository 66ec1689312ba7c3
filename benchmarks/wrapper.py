"""The credential wrapper's two rows: its ``get_token_info`` on a valid token, and a pipeline during a refresh.

12. ``BackgroundRefreshCredential.get_token_info`` (sync, and ``aio``'s) on a valid token, against
    azure-identity's own ``ClientSecretCredential.get_token_info`` once MSAL's cache holds the
    token (the wrapper wraps that same credential). Ratio: wrapper / azure-identity.
13. A request through a pipeline while a refresh is in flight (the token due, the credential's
    call held open for the whole measurement): azure-core's plain ``AsyncBearerTokenCredentialPolicy``
    / ``BearerTokenCredentialPolicy`` on the wrapper, against this package's policy on a credential
    of its own. The plain policy asks the wrapper for a token on every request while the token is
    due; the wrapper answers at once. Ratio: plain policy on the wrapper / our policy.

Both in interleaved rounds, as :mod:`benchmarks.hot_path` measures, with the 2 KB token.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from azure.core.credentials import AccessTokenInfo, TokenRequestOptions
from azure.core.pipeline import AsyncPipeline, Pipeline
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy
from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential

import bgrefresh_policy.aio
from bgrefresh_policy import (
    AsyncBackgroundRefreshTokenPolicy,
    BackgroundRefreshCredential,
    BackgroundRefreshTokenPolicy,
)
from bgrefresh_policy.testing import DUE, AsyncFakeCredential, FakeCredential

from .entra import CLIENT_ID, TENANT_ID, AsyncEntraTransport, EntraTransport, identity_kwargs
from .harness import SCOPE, TOKEN, NoopTransport
from .hot_path import interleave_async, interleave_sync, ratios, run_async, run_sync, timed_async, timed_sync
from .sync_scenarios import SyncNoopTransport

__all__ = ["POLICY", "WRAPPER", "async_wrapper_rows", "sync_wrapper_rows"]

SECRET = "bench-client-secret"
WRAPPER, POLICY = "plain policy on the wrapper", "bgrefresh"
# The held refresh must stay in flight however long the measurement takes: a refresh_timeout
# would end it (and start a back-off) part-way through.
HELD_FOR = 24 * 3600.0


def _long(info: AccessTokenInfo) -> AccessTokenInfo:
    """The fake's token, 2 KB long as Entra ID's are (and as the other rows' are)."""
    return AccessTokenInfo(TOKEN + info.token, info.expires_on, refresh_on=info.refresh_on)


class _AsyncHeld(AsyncFakeCredential):
    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return _long(await super().get_token_info(*scopes, options=options))


class _SyncHeld(FakeCredential):
    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return _long(super().get_token_info(*scopes, options=options))


async def async_wrapper_rows(*, rounds: int, batch: int) -> dict[str, Any]:
    """Rows 12 and 13, async: ns per call and the ratios."""
    identity = AsyncClientSecretCredential(TENANT_ID, CLIENT_ID, SECRET, **identity_kwargs(AsyncEntraTransport()))
    wrapper = bgrefresh_policy.aio.BackgroundRefreshCredential(identity)
    await identity.get_token_info(SCOPE)  # MSAL's cache holds the token from here on
    await wrapper.get_token_info(SCOPE)
    timers = {
        "azure-identity": timed_async(partial(identity.get_token_info, SCOPE), batch),
        "bgrefresh": timed_async(partial(wrapper.get_token_info, SCOPE), batch),
    }
    token_info = ratios(await interleave_async(timers, rounds), baseline="azure-identity")
    await wrapper.close()
    return {"get_token_info": token_info, "pipeline": await _async_refreshing(rounds=rounds, batch=batch)}


async def _async_refreshing(*, rounds: int, batch: int) -> dict[str, Any]:
    wrapped, own = _AsyncHeld(lifetime=DUE), _AsyncHeld(lifetime=DUE)
    wrapper = bgrefresh_policy.aio.BackgroundRefreshCredential(wrapped, refresh_timeout=HELD_FOR)
    policy = AsyncBackgroundRefreshTokenPolicy(own, SCOPE, refresh_timeout=HELD_FOR)
    pipelines: dict[str, AsyncPipeline[Any, Any]] = {
        WRAPPER: AsyncPipeline(NoopTransport(), policies=[AsyncBearerTokenCredentialPolicy(wrapper, SCOPE)]),
        POLICY: AsyncPipeline(NoopTransport(), policies=[policy]),
        "floor": AsyncPipeline(NoopTransport(), policies=[]),
    }
    for pipeline in pipelines.values():
        await run_async(pipeline)  # the first token: due as it arrives
    for credential in (wrapped, own):
        credential.hold()
    for pipeline in pipelines.values():
        await run_async(pipeline)  # starts the one refresh, held open until the end
    for credential in (wrapped, own):
        await credential.wait_for_calls(2)
    timers = {name: timed_async(partial(run_async, pipeline), batch) for name, pipeline in pipelines.items()}
    result = ratios(await interleave_async(timers, rounds), subject=WRAPPER, baseline=POLICY)
    assert (wrapped.call_count, own.call_count) == (2, 2), "a refresh ended during the measurement"
    for credential in (wrapped, own):
        credential.release()
    await wrapper.close()
    await policy.close()
    return result


def sync_wrapper_rows(*, rounds: int, batch: int) -> dict[str, Any]:
    """Rows 12 and 13, sync: ns per call and the ratios."""
    identity = ClientSecretCredential(TENANT_ID, CLIENT_ID, SECRET, **identity_kwargs(EntraTransport()))
    wrapper = BackgroundRefreshCredential(identity)
    identity.get_token_info(SCOPE)
    wrapper.get_token_info(SCOPE)
    timers = {
        "azure-identity": timed_sync(partial(identity.get_token_info, SCOPE), batch),
        "bgrefresh": timed_sync(partial(wrapper.get_token_info, SCOPE), batch),
    }
    token_info = ratios(interleave_sync(timers, rounds), baseline="azure-identity")
    wrapper.close()
    return {"get_token_info": token_info, "pipeline": _sync_refreshing(rounds=rounds, batch=batch)}


def _sync_refreshing(*, rounds: int, batch: int) -> dict[str, Any]:
    wrapped, own = _SyncHeld(lifetime=DUE), _SyncHeld(lifetime=DUE)
    wrapper = BackgroundRefreshCredential(wrapped, refresh_timeout=HELD_FOR)
    policy = BackgroundRefreshTokenPolicy(own, SCOPE, refresh_timeout=HELD_FOR)
    pipelines: dict[str, Pipeline[Any, Any]] = {
        WRAPPER: Pipeline(SyncNoopTransport(), policies=[BearerTokenCredentialPolicy(wrapper, SCOPE)]),
        POLICY: Pipeline(SyncNoopTransport(), policies=[policy]),
        "floor": Pipeline(SyncNoopTransport(), policies=[]),
    }
    for pipeline in pipelines.values():
        run_sync(pipeline)
    for credential in (wrapped, own):
        credential.hold()
    try:
        for pipeline in pipelines.values():
            run_sync(pipeline)  # starts the one refresh thread, held at the gate until the end
        for credential in (wrapped, own):
            credential.wait_for_calls(2)
        timers = {name: timed_sync(partial(run_sync, pipeline), batch) for name, pipeline in pipelines.items()}
        result = ratios(interleave_sync(timers, rounds), subject=WRAPPER, baseline=POLICY)
        assert (wrapped.call_count, own.call_count) == (2, 2), "a refresh ended during the measurement"
    finally:
        for credential in (wrapped, own):
            credential.release()  # else closing would wait refresh_timeout for each held thread
    wrapper.close()
    policy.close()
    return result
