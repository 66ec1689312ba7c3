"""AsyncBackgroundRefreshTokenPolicy: azure-core's async bearer policy, refreshing in the background."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from azure.core.credentials_async import AsyncTokenProvider
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy

# The event types by their public names, which load them when first resolved (see _events).
from ._azure_core import (
    AsyncHTTPResponseType,
    HTTPRequestType,
    cae_enabled,
    challenge_flow,
    enforce_https,
)
from ._face_async import LoopFace
from ._options import PolicyOptions, Unpack
from ._policy_base import PolicyBase

__all__ = ["AsyncBackgroundRefreshTokenPolicy"]


async def _maybe_await(outcome: Any) -> None:
    # azure-core lets a hook of the async policy be sync or async.
    if inspect.isawaitable(outcome):
        await outcome


class AsyncBackgroundRefreshTokenPolicy(
    AsyncBearerTokenCredentialPolicy[HTTPRequestType, AsyncHTTPResponseType], PolicyBase, LoopFace
):
    """Adds a bearer token to requests, refreshing it in the background before it runs out.

    A drop-in for :class:`~azure.core.pipeline.policies.AsyncBearerTokenCredentialPolicy`: once a
    token is due for refresh (azure-core's rule) requests keep using it while one background
    task asks the credential for a new one. Requests wait only when there is no usable token:
    none yet, expired, or less than ``min_validity`` seconds left.

    :param credential: any async credential (``get_token_info`` or ``get_token``); it is
        never modified or wrapped.
    :type credential: ~azure.core.credentials_async.AsyncTokenProvider
    :param str scopes: the scopes requests need, e.g. ``"https://management.azure.com/.default"``.
    :keyword bool enable_cae: request CAE-enabled tokens, as in azure-core. Defaults to False.
    :keyword float min_validity: seconds; a request finding a due token with less than this
        left waits for a new one. Defaults to 60.
    :keyword float retry_delay: seconds; least time between background attempts for one
        token after a failed attempt or one that gave no newer token. Defaults to 30.
    :keyword float refresh_timeout: seconds; a background refresh running longer is cancelled
        and counts as failed. Defaults to 30.
    :keyword bool share_tokens: share cached tokens and refreshes with every policy (and token
        provider) on the same credential object with the same CAE setting and options.
        Defaults to True.
    :keyword on_refresh: called with a :class:`~bgrefresh_policy.RefreshEvent` after every
        credential call the policy makes (never with the token); one that raises is logged once.
    :keyword bool refresh_when_idle: refresh a token that falls due while no request comes, on
        schedule, so the first request after a quiet period does not wait. Defaults to False.
    :ivar bool closed: True once :meth:`close` has run.
    :raises ValueError: no scope, an empty scope, or a negative or non-finite option.
    :raises TypeError: a scope that is not a str, an option of the wrong type, a credential
        with neither ``get_token_info`` nor ``get_token``, one of ``azure.identity``'s sync
        credentials (use one from ``azure.identity.aio``), or a credential class instead of an
        instance. Any other sync credential is used as azure-core uses it (awaiting only what is
        awaitable), and its first call logs a WARNING: it blocks the event loop.

    A ``min_validity`` of 300 s or more warns (``UserWarning``): a token without ``refresh_on``
    would then be refreshed only inline, with requests waiting.
    """

    if TYPE_CHECKING:

        def __init__(self, credential: AsyncTokenProvider, *scopes: str, **kwargs: Unpack[PolicyOptions]) -> None: ...

    else:
        __init__ = PolicyBase._init_policy

    # --- public ------------------------------------------------------------------------

    async def on_request(self, request: PipelineRequest[HTTPRequestType]) -> None:
        """Attach a bearer token for the policy's scopes, refreshing it if needed.

        :param request: the pipeline request.
        :type request: ~azure.core.pipeline.PipelineRequest
        :raises ~azure.core.exceptions.ServiceRequestError: the URL is not https and
            ``enforce_https`` was not turned off.
        :raises ~azure.core.exceptions.ClientAuthenticationError: or whatever else the
            credential raises, unchanged, when there is no valid token to fall back on.
        :raises TypeError: the credential returned something that is not a token.
        """
        if self._attach_own(request):  # not due, or due with a refresh running or backing off
            return
        enforce_https(request)
        key = self._default_key
        self._attach(request, key, await self._token_for(key, self._scopes))

    async def authorize_request(self, request: PipelineRequest[HTTPRequestType], *scopes: str, **kwargs: Any) -> None:
        """Get a new token from the credential and attach it to ``request``.

        As in azure-core, keyword arguments (``claims``, ``tenant_id``, ...) go to the
        credential, and the token is cached: requests for the same scopes and tenant use it
        from then on. It replaces the cached token even if it expires sooner.

        :param request: the request.
        :type request: ~azure.core.pipeline.PipelineRequest
        :param str scopes: the scopes the token is for.
        :raises ~azure.core.exceptions.ClientAuthenticationError: or whatever else the
            credential raises, unchanged.
        :raises TypeError: the credential returned something that is not a token.
        """
        key = self._key(scopes, kwargs.get("tenant_id"))
        cached = await self._refresh_explicit(key, scopes, kwargs)
        self._attach(request, key, cached)

    async def send(
        self, request: PipelineRequest[HTTPRequestType]
    ) -> PipelineResponse[HTTPRequestType, AsyncHTTPResponseType]:
        """Authorize ``request``, send it, and answer a 401 challenge, as azure-core's policy does.

        The same steps as the installed azure-core's ``send()``: ``on_request``, the next policy,
        ``on_response`` (``on_exception`` if it raised), and on a 401 with a challenge,
        ``on_challenge`` and one more try. A 401 drops only the token the request carried.

        :param request: the request.
        :type request: ~azure.core.pipeline.PipelineRequest
        :return: the response.
        :rtype: ~azure.core.pipeline.PipelineResponse
        """
        # An on_request of a subclass, or one patched onto this instance, is called as azure-core calls it.
        if not (self._own_on_request and "on_request" not in self.__dict__ and self._attach_own(request)):
            await _maybe_await(self.on_request(request))
        response = await self._send_on(request)
        if response.http_response.status_code == 401:
            return await self._challenged(request, response)
        return response

    async def close(self) -> None:
        """Cancel and await the refreshes this policy started on this event loop; start none from now on.

        Its refreshes on other running loops are asked to cancel. Refreshes that other policies
        on the same credential started go on: they are theirs. Requests that need a token after
        this wait for one inline (or attach the one another policy keeps fresh). Sets
        ``closed``. Safe to call more than once.
        """
        await self._aclose_refreshes()

    # --- azure-core's private surface, kept working for subclasses ----------------------

    @property
    def _lock(self) -> Any:
        """A lock of the running event loop (asyncio or trio), one per loop."""
        return self._runners.current().lock

    def _need_new_token(self) -> bool:
        """Whether the token ``_token`` stands for is missing or due, under azure-core's rule."""
        return self._token_is_due()

    async def _request_token(self, *scopes: str, **kwargs: Any) -> None:
        """Get a token from the credential and cache it; ``_token`` is that token from then on.

        :param str scopes: the scopes the token is for.
        """
        key = self._key(scopes, kwargs.get("tenant_id"))
        await self._refresh_explicit(key, scopes, kwargs)
        self._token_key = key

    # --- machinery ---------------------------------------------------------------------

    _ASYNCHRONOUS = True

    _RUNTIME = ("_runners", "_lock_instance")
    _AZURE_CORE_POLICY = AsyncBearerTokenCredentialPolicy

    def _new_runtime(self) -> None:
        super()._new_runtime()
        self._lock_instance = None  # azure-core's; our _lock is per loop instead

    def _send_on(
        self, request: PipelineRequest[HTTPRequestType]
    ) -> Awaitable[PipelineResponse[HTTPRequestType, AsyncHTTPResponseType]]:
        """What awaiting gives the next policy's response, with ``on_exception`` / ``on_response``
        called around it as azure-core does."""
        # Hooks of a subclass, or patched onto this instance (mock.patch.object), are called.
        if self._hooks or "on_response" in self.__dict__ or "on_exception" in self.__dict__:
            return self._send_hooked(request)
        # Nothing to call around it: the next policy's own awaitable, one coroutine frame less
        # for every request, and for every resumption of a request suspended in the transport.
        return self.next.send(request)

    async def _send_hooked(
        self, request: PipelineRequest[HTTPRequestType]
    ) -> PipelineResponse[HTTPRequestType, AsyncHTTPResponseType]:
        try:
            response: PipelineResponse[HTTPRequestType, AsyncHTTPResponseType] = await self.next.send(request)
        except Exception:
            await _maybe_await(self.on_exception(request))  # type: ignore[func-returns-value]
            raise
        await _maybe_await(self.on_response(request, response))
        return response

    async def _challenged(
        self,
        request: PipelineRequest[HTTPRequestType],
        response: PipelineResponse[HTTPRequestType, AsyncHTTPResponseType],
    ) -> PipelineResponse[HTTPRequestType, AsyncHTTPResponseType]:
        """After a 401: drop the rejected token, and answer a challenge as azure-core's ``send()`` does."""
        self._rejected(request)
        flow = challenge_flow(self, request, response)
        try:
            call = next(flow)
            while True:
                try:
                    outcome = call[0](*call[1])
                    if inspect.isawaitable(outcome):
                        outcome = await outcome
                except Exception as exc:  # noqa: BLE001 - the flow decides, as azure-core's send() does
                    call = flow.throw(exc)
                else:
                    call = flow.send(outcome)
        except StopIteration as stop:
            answer: PipelineResponse[HTTPRequestType, AsyncHTTPResponseType] = stop.value
            return answer

    def _caller(self) -> Callable[..., Awaitable[Any]]:
        # A _get_token of a subclass, or patched onto this instance, is called as azure-core calls it.
        own = "_get_token" not in self.__dict__ and type(self)._get_token is AsyncBearerTokenCredentialPolicy._get_token
        return self._ask_credential if own else self._get_token

    async def _ask_credential(self, *scopes: str, **kwargs: Any) -> Any:
        """azure-core's ``_get_token`` (the same in 1.32.0 to 1.41.0), telling of a sync credential.

        As azure-core does, what the credential returns is awaited only if it is awaitable, so a
        sync credential works, blocking the event loop for each of its calls (see
        :meth:`~bgrefresh_policy._face_async.LoopFace._ask`).

        :param str scopes: the scopes the token is for.
        :keyword kwargs: ``claims``, ``tenant_id``, ``enable_cae`` and the like, as azure-core's
            ``_get_token`` takes them.
        :return: what the credential returned, awaited if it is awaitable.
        """
        if cae_enabled(self):
            kwargs.setdefault("enable_cae", True)
        return await self._ask(scopes, kwargs)
