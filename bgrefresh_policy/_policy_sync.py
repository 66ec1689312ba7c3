"""BackgroundRefreshTokenPolicy: azure-core's sync bearer policy, refreshing on a background thread."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from azure.core.credentials import TokenProvider
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import BearerTokenCredentialPolicy

# The event types by their public names, which load them when first resolved (see _events).
from ._azure_core import HTTPRequestType, HTTPResponseType, challenge_flow, enforce_https
from ._face_sync import ThreadFace
from ._options import PolicyOptions, Unpack
from ._policy_base import PolicyBase

__all__ = ["BackgroundRefreshTokenPolicy"]


class BackgroundRefreshTokenPolicy(
    BearerTokenCredentialPolicy[HTTPRequestType, HTTPResponseType], PolicyBase, ThreadFace
):
    """Adds a bearer token to requests, refreshing it on a background thread before it runs out.

    A drop-in for :class:`~azure.core.pipeline.policies.BearerTokenCredentialPolicy`: once a
    token is due for refresh (azure-core's rule) requests keep using it while one daemon
    thread per token asks the credential for a new one. Requests wait only when there is no
    usable token (none yet, expired, or less than ``min_validity`` seconds left), and then
    only one of the waiting threads calls the credential.

    :param credential: any sync credential (``get_token_info`` or ``get_token``); it is
        never modified or wrapped. It is called from more than one thread, as azure-identity's
        credentials allow.
    :type credential: ~azure.core.credentials.TokenProvider
    :param str scopes: the scopes requests need, e.g. ``"https://management.azure.com/.default"``.
    :keyword bool enable_cae: request CAE-enabled tokens, as in azure-core. Defaults to False.
    :keyword float min_validity: seconds; a request finding a due token with less than this
        left waits for a new one. Defaults to 60.
    :keyword float retry_delay: seconds; least time between background attempts for one
        token after a failed attempt or one that gave no newer token. Defaults to 30.
    :keyword float refresh_timeout: seconds; requests stop waiting for a background refresh
        running longer, which counts as failed for them; its thread cannot be stopped and runs
        on until the credential returns. Also the longest :meth:`close` waits. Defaults to 30.
    :keyword bool share_tokens: share cached tokens and refreshes with every policy (and token
        provider) on the same credential object with the same CAE setting and options.
        Defaults to True.
    :keyword on_refresh: called with a :class:`~bgrefresh_policy.RefreshEvent` after every
        credential call the policy makes (never with the token); one that raises is logged once.
    :keyword bool refresh_when_idle: refresh a token that falls due while no request comes, on
        schedule (a daemon timer thread), so the first request after a quiet period does not wait.
        Defaults to False.
    :ivar bool closed: True once :meth:`close` has run.
    :raises ValueError: no scope, an empty scope, a negative or non-finite option, or a
        ``refresh_timeout`` above ``threading.TIMEOUT_MAX``.
    :raises TypeError: a scope that is not a str, an option of the wrong type, a credential
        with neither ``get_token_info`` nor ``get_token``, a credential whose method is a coroutine
        function (use one from ``azure.identity``), or a credential class instead of an instance.
        Any other async credential is refused at its first call.

    A ``min_validity`` of 300 s or more warns (``UserWarning``): a token without ``refresh_on``
    would then be refreshed only inline, with requests waiting.
    """

    if TYPE_CHECKING:

        def __init__(self, credential: TokenProvider, *scopes: str, **kwargs: Unpack[PolicyOptions]) -> None: ...

    else:
        __init__ = PolicyBase._init_policy

    # --- public ------------------------------------------------------------------------

    def on_request(self, request: PipelineRequest[HTTPRequestType]) -> None:
        """Attach a bearer token for the policy's scopes, refreshing it if needed.

        :param request: the pipeline request.
        :type request: ~azure.core.pipeline.PipelineRequest
        :raises ~azure.core.exceptions.ServiceRequestError: the URL is not https and
            ``enforce_https`` was not turned off.
        :raises ~azure.core.exceptions.ClientAuthenticationError: or whatever else the
            credential raises, unchanged, when there is no valid token to fall back on.
        :raises TypeError: the credential returned something that is not a token, or an awaitable
            (an async credential).
        """
        if self._attach_own(request):  # not due, or due with a refresh running or backing off
            return
        enforce_https(request)
        key = self._default_key
        self._attach(request, key, self._token_for(key, self._scopes))

    def authorize_request(self, request: PipelineRequest[HTTPRequestType], *scopes: str, **kwargs: Any) -> None:
        """Get a new token from the credential and attach it to ``request``.

        As in azure-core, keyword arguments (``claims``, ``tenant_id``, ...) go to the
        credential, and the token is cached: requests for the same scopes and tenant use it
        from then on. It replaces the cached token even if it expires sooner. Threads asking
        with the same arguments at once share one credential call.

        :param request: the request.
        :type request: ~azure.core.pipeline.PipelineRequest
        :param str scopes: the scopes the token is for.
        :raises ~azure.core.exceptions.ClientAuthenticationError: or whatever else the
            credential raises, unchanged.
        :raises TypeError: the credential returned something that is not a token, or an awaitable
            (an async credential).
        """
        key = self._key(scopes, kwargs.get("tenant_id"))
        self._attach(request, key, self._refresh_explicit(key, scopes, kwargs))

    def send(self, request: PipelineRequest[HTTPRequestType]) -> PipelineResponse[HTTPRequestType, HTTPResponseType]:
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
            self.on_request(request)
        response = self._send_on(request)
        if response.http_response.status_code == 401:
            return self._challenged(request, response)
        return response

    def close(self) -> None:
        """Start no background refresh from now on, and join the ones this policy started.

        A thread cannot be stopped in the middle of a credential call, so this waits at most
        ``refresh_timeout`` seconds; a refresh still running then is left to end on its own
        daemon thread, and logged. Refreshes that other policies on the same credential started
        go on: they are theirs. Requests that need a token after this wait for one inline (or
        attach the one another policy keeps fresh). Sets ``closed``. Safe to call more than once.
        """
        self._close_refreshes()

    # --- azure-core's private surface, kept working for subclasses ----------------------

    @property
    def _need_new_token(self) -> bool:
        """Whether the token ``_token`` stands for is missing or due, under azure-core's rule."""
        return self._token_is_due()

    def _request_token(self, *scopes: str, **kwargs: Any) -> None:
        """Get a token from the credential and cache it; ``_token`` is that token from then on.

        :param str scopes: the scopes the token is for.
        """
        key = self._key(scopes, kwargs.get("tenant_id"))
        self._refresh_explicit(key, scopes, kwargs)
        self._token_key = key

    # --- machinery ---------------------------------------------------------------------

    _ASYNCHRONOUS = False
    _WAIT_LIMIT = threading.TIMEOUT_MAX

    _RUNTIME = ("_runner",)
    _AZURE_CORE_POLICY = BearerTokenCredentialPolicy

    def _send_on(
        self, request: PipelineRequest[HTTPRequestType]
    ) -> PipelineResponse[HTTPRequestType, HTTPResponseType]:
        """The next policy's response, with ``on_exception`` / ``on_response`` called as azure-core does."""
        # Hooks of a subclass, or patched onto this instance (mock.patch.object), are called.
        hooks = self._hooks or "on_response" in self.__dict__ or "on_exception" in self.__dict__
        try:
            response: PipelineResponse[HTTPRequestType, HTTPResponseType] = self.next.send(request)
        except Exception:
            if hooks:
                self.on_exception(request)
            raise
        if hooks:
            self.on_response(request, response)
        return response

    def _challenged(
        self,
        request: PipelineRequest[HTTPRequestType],
        response: PipelineResponse[HTTPRequestType, HTTPResponseType],
    ) -> PipelineResponse[HTTPRequestType, HTTPResponseType]:
        """After a 401: drop the rejected token, and answer a challenge as azure-core's ``send()`` does."""
        self._rejected(request)
        flow = challenge_flow(self, request, response)
        try:
            call = next(flow)
            while True:
                try:
                    outcome = call[0](*call[1])
                except Exception as exc:  # noqa: BLE001 - the flow decides, as azure-core's send() does
                    call = flow.throw(exc)
                else:
                    call = flow.send(outcome)
        except StopIteration as stop:
            answer: PipelineResponse[HTTPRequestType, HTTPResponseType] = stop.value
            return answer

    def _call_credential(self, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> Any:
        # azure-core's _get_token (or a subclass's), as azure-core's policy calls the credential.
        return self._get_token(*scopes, **kwargs)
