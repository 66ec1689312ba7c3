"""AsyncBackgroundRefreshTokenPolicy: azure-core's async bearer policy, refreshing in the background."""

from __future__ import annotations

import contextvars
import copy
import logging
from collections.abc import Hashable
from types import TracebackType
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.credentials_async import AsyncTokenProvider
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy
from azure.core.pipeline.policies._authentication_async import AsyncHTTPResponseType, HTTPRequestType

from ._compat import enforce_https
from ._decision import Action, CachedToken
from ._flight import RETRY, Flight, Verdict
from ._key_state import BackgroundMark, TokenKey
from ._options import RefreshOptions, check_credential, check_no_misspelt_option, check_scopes
from ._runners import Runner, RunnerRegistry
from ._token_check import checked_token
from ._token_store import TokenStore

__all__ = ["AsyncBackgroundRefreshTokenPolicy"]

_LOGGER = logging.getLogger(__name__)

TokenLike = AccessToken | AccessTokenInfo


class _SendScope:
    """What one ``send()`` of one policy attached: the key and the serial of the token.

    azure-core's ``send()`` answers a 401 with ``self._token = None``; the setter reads this to
    drop that token only if it is still the cached one, and only for the key it was attached
    for. Outside ``send()`` there is no scope, and ``_token = None`` drops the token as in azure-core.
    """

    __slots__ = ("key", "policy_id", "serial")

    def __init__(self, policy_id: int) -> None:
        self.policy_id = policy_id
        self.key: TokenKey | None = None
        self.serial: int | None = None


_SEND_SCOPE: contextvars.ContextVar[_SendScope | None] = contextvars.ContextVar(
    "bgrefresh_policy_send_scope", default=None
)


def _flight_key(key: TokenKey, generation: int, kwargs: dict[str, Any]) -> Hashable:
    # Plain refreshes of one key and generation share a flight; an explicit request shares
    # only with one asking with the same arguments (claims, tenant_id, ...).
    if not kwargs:
        return (key, generation)
    try:
        frozen = tuple(sorted(kwargs.items()))
        hash(frozen)
    except TypeError:
        return object()  # unhashable arguments: never shared
    return (key, generation, frozen)


class AsyncBackgroundRefreshTokenPolicy(AsyncBearerTokenCredentialPolicy[HTTPRequestType, AsyncHTTPResponseType]):
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
    :raises ValueError: no scope, an empty scope, or a negative or non-finite option.
    :raises TypeError: a scope that is not a str, an option of the wrong type, or a
        credential with neither ``get_token_info`` nor ``get_token``.
    """

    def __init__(
        self,
        credential: AsyncTokenProvider,
        *scopes: str,
        enable_cae: bool = False,
        min_validity: float = 60.0,
        retry_delay: float = 30.0,
        refresh_timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        check_credential(credential)
        check_scopes(scopes)
        check_no_misspelt_option(kwargs)
        if not isinstance(enable_cae, bool):
            raise TypeError(f"enable_cae must be a bool, not {type(enable_cae).__name__}")
        self._store = TokenStore(
            RefreshOptions(min_validity=min_validity, retry_delay=retry_delay, refresh_timeout=refresh_timeout)
        )
        self._default_key = TokenKey.of(scopes)
        # The key azure-core's single _token attribute stands for: the one last used by
        # on_request (the policy's scopes), _request_token() or authorize_request().
        self._token_key = self._default_key
        self._runners = RunnerRegistry()
        # Last, because the base class assigns self._token, which our setter handles.
        super().__init__(credential, *scopes, enable_cae=enable_cae, **kwargs)

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
        enforce_https(request)
        key = self._default_key
        # Hot path, no lock and no coroutine: a token that is not due, or due with a refresh
        # already running (or backing off), is attached as it is.
        current = self._store.attachable(key)
        if current is None:
            current = await self._token_for(key, self._scopes)
        self._token_key = key
        self._attach(request, key, current)

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
        key = TokenKey.of(scopes, kwargs.get("tenant_id"))
        cached = await self._refresh_explicit(key, scopes, kwargs)
        self._token_key = key
        self._attach(request, key, cached)

    async def send(
        self, request: PipelineRequest[HTTPRequestType]
    ) -> PipelineResponse[HTTPRequestType, AsyncHTTPResponseType]:
        """Authorize ``request``, send it, and answer a 401 challenge, exactly as azure-core does.

        :param request: the request.
        :type request: ~azure.core.pipeline.PipelineRequest
        :return: the response.
        :rtype: ~azure.core.pipeline.PipelineResponse
        """
        reset = _SEND_SCOPE.set(_SendScope(id(self)))
        try:
            # mypy expands the constrained type variables and loses them through super().
            return await super().send(request)  # type: ignore[arg-type,return-value]
        finally:
            _SEND_SCOPE.reset(reset)

    async def wait_for_refreshes(self) -> None:
        """Wait until no refresh this policy started on the running event loop is in flight.

        For tests, recorded ones especially: awaiting it before a test ends makes the token
        request of a background refresh happen inside the test (and its cassette). It waits for
        refreshes that start while it waits, too. Cancelling the wait leaves them running.
        """
        runner = self._runners.existing()
        if runner is not None:
            await runner.drain()

    async def close(self) -> None:
        """Cancel and await the refreshes running on this event loop; start none from now on.

        Refreshes on other running loops are asked to cancel. Requests that need a token
        after this wait for one inline. Safe to call more than once.
        """
        self._store.closed = True
        await self._runners.aclose()

    async def __aenter__(self) -> AsyncBackgroundRefreshTokenPolicy[HTTPRequestType, AsyncHTTPResponseType]:
        """Enter: the policy, ready; it closes on exit.

        :return: the policy.
        """
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the policy (see :meth:`close`)."""
        await self.close()

    # --- azure-core's private surface, kept working for subclasses ----------------------

    @property
    def _token(self) -> TokenLike | None:
        """The token azure-core's attribute would hold: the cached one for the key last used."""
        current = self._store.current(self._token_key)
        return current.token if current is not None else None

    @_token.setter
    def _token(self, value: TokenLike | None) -> None:
        if value is not None:
            self._store.store(self._token_key, checked_token(value, "get_token_info"))
            return
        scope = _SEND_SCOPE.get()
        if scope is not None and scope.policy_id == id(self) and scope.key is not None:
            # A 401 inside send(): drop the token that request carried, if still cached.
            self._store.invalidate(scope.key, scope.serial)
        else:
            self._store.invalidate(self._token_key)

    @property
    def _lock(self) -> Any:
        """A lock of the running event loop (asyncio or trio), one per loop."""
        return self._runners.current().lock

    def _need_new_token(self) -> bool:
        """Whether the token ``_token`` stands for is missing or due, under azure-core's rule."""
        current = self._store.current(self._token_key)
        return current is None or current.is_due(self._store.clock())

    async def _request_token(self, *scopes: str, **kwargs: Any) -> None:
        """Get a token from the credential and cache it; ``_token`` is that token from then on.

        :param str scopes: the scopes the token is for.
        """
        key = TokenKey.of(scopes, kwargs.get("tenant_id"))
        await self._refresh_explicit(key, scopes, kwargs)
        self._token_key = key

    # --- machinery ---------------------------------------------------------------------

    def _attach(self, request: PipelineRequest[HTTPRequestType], key: TokenKey, cached: CachedToken) -> None:
        request.http_request.headers["Authorization"] = "Bearer " + cached.token.token
        scope = _SEND_SCOPE.get()
        if scope is not None and scope.policy_id == id(self):
            scope.key, scope.serial = key, cached.serial

    async def _token_for(self, key: TokenKey, scopes: tuple[str, ...]) -> CachedToken:
        """The token a request for ``key`` attaches, after whatever refresh the rule asks for."""
        while True:
            runner = self._runners.current()
            action, current, generation, mark = self._store.begin(key, runner.alive)
            if action is Action.ATTACH:
                assert current is not None  # decide() attaches only a valid token
                return current
            if action is Action.BACKGROUND:
                assert current is not None
                _LOGGER.debug("token for %s is due; refreshing in the background", key.scopes)
                flight = self._start(runner, key, scopes, {}, generation, mark=mark)
                await runner.started(flight)
                return current
            flight = runner.flights.get(_flight_key(key, generation, {})) or self._start(
                runner, key, scopes, {}, generation
            )
            verdict = await runner.wait(flight)
            if verdict is RETRY:
                continue
            if verdict.token is not None:
                return verdict.token
            assert verdict.error is not None
            still_valid = self._store.still_valid(key)
            if still_valid is not None:  # logged once, by the store, for all the waiters
                return still_valid
            raise verdict.error

    async def _refresh_explicit(self, key: TokenKey, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> CachedToken:
        """Ask the credential (sharing a call with the same arguments already in flight) and cache the result."""
        while True:
            generation = self._store.generation(key)
            runner = self._runners.current()
            flight_key = ("explicit", _flight_key(key, generation, kwargs))
            flight = runner.flights.get(flight_key) or self._start(
                runner, key, scopes, kwargs, generation, explicit=True, flight_key=flight_key
            )
            verdict = await runner.wait(flight)
            if verdict is RETRY:
                continue
            if verdict.error is not None:
                raise verdict.error
            assert verdict.token is not None
            return verdict.token

    def _start(
        self,
        runner: Runner,
        key: TokenKey,
        scopes: tuple[str, ...],
        kwargs: dict[str, Any],
        generation: int,
        *,
        mark: BackgroundMark | None = None,
        explicit: bool = False,
        flight_key: Hashable | None = None,
    ) -> Flight:
        method = "get_token_info" if hasattr(self._credential, "get_token_info") else "get_token"

        async def fetch() -> TokenLike:
            # The task copied the context of the request that started it; the refresh is not
            # part of that request's send(), so it does not keep its scope.
            _SEND_SCOPE.set(None)
            # A copy: azure-core's _get_token pops options out of the dict it is given.
            return checked_token(await self._get_token(*scopes, **dict(kwargs)), method)

        def finish(result: TokenLike | None, error: BaseException | None) -> Verdict:
            return self._store.finish(key, generation, result, error, mark=mark, explicit=explicit)

        flight: Flight = runner.start(
            flight_key if flight_key is not None else _flight_key(key, generation, kwargs),
            fetch,
            finish,
            timeout=self._store.options.refresh_timeout if mark is not None else None,
        )
        return flight

    # --- pickling: locks, tasks and cached tokens stay behind (see TokenStore too) --------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_runners"]
        # Its own store even for copy.copy, which would otherwise share it (and close it).
        state["_store"] = copy.copy(self._store)
        state["_lock_instance"] = None
        state["next"] = None  # the links belong to the pipeline this copy is not part of
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._runners = RunnerRegistry()
