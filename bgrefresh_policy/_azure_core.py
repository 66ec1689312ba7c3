"""Every azure-core internal this library leans on, in one place: the file to read on an azure-core upgrade.

azure-core keeps these private, and some are absent from older releases (1.32.0 is the lowest
supported), so each is found or repeated here, with the release it comes from.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Generator
from typing import Any

from azure.core.credentials import TokenRequestOptions
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy
from azure.core.pipeline.policies._authentication import HTTPRequestType, HTTPResponseType
from azure.core.pipeline.policies._authentication_async import AsyncHTTPResponseType

__all__ = [
    "DEFAULT_REFRESH_WINDOW",
    "MAX_REFRESH_JITTER",
    "SEND_POPS_INSECURE_DOMAIN_CHANGE",
    "SEND_READS_STREAMED_CHALLENGE",
    "AsyncHTTPResponseType",
    "Call",
    "ChallengeFlow",
    "HTTPRequestType",
    "HTTPResponseType",
    "ask_credential",
    "cae_enabled",
    "challenge_flow",
    "draw_jitter",
    "enforce_https",
    "is_due",
    "pipeline_policies",
    "policy_credential",
    "policy_scopes",
]

# azure.core.pipeline.policies._authentication, 1.38.3+: a token without refresh_on is due with
# less than this many seconds left, less a jitter of 0 to MAX_REFRESH_JITTER seconds drawn per token.
DEFAULT_REFRESH_WINDOW = 300
MAX_REFRESH_JITTER = 60


def draw_jitter() -> int:
    """A token's refresh jitter, drawn as azure-core's ``_request_token`` draws it (1.38.3+).

    :return: whole seconds, 0 to 60.
    :rtype: int
    """
    return random.randint(0, MAX_REFRESH_JITTER)


def is_due(expires_on: float, refresh_on: float | None, jitter: int, now: float) -> bool:
    """azure-core's ``_should_refresh_token`` (1.38.3+), the same comparisons, for a token that exists.

    :param float expires_on: the token's expiry, Unix time.
    :param refresh_on: when the credential suggests a refresh, or None (falsy counts as none).
    :param int jitter: the token's jitter.
    :param float now: Unix time.
    :return: whether a new token is needed.
    :rtype: bool
    """
    if expires_on <= now:
        return True
    if refresh_on:
        return min(refresh_on + jitter, expires_on) <= now
    return expires_on - now < DEFAULT_REFRESH_WINDOW - jitter


_enforce_https: Callable[[Any], None]
try:  # 1.38.3+
    from azure.core.pipeline.policies._authentication import _enforce_https
except ImportError:  # pragma: no cover - 1.32.0 .. 1.38.2
    from azure.core.pipeline.policies._authentication import _BearerTokenCredentialPolicyBase

    _enforce_https = _BearerTokenCredentialPolicyBase._enforce_https  # type: ignore[attr-defined]


def enforce_https(request: Any) -> None:
    """azure-core's https check for a bearer token, with its common case decided here first.

    With no ``enforce_https`` option or context entry and an https URL, azure-core's check does
    nothing; everything else (an opt-out to move into the context, an http URL to refuse) is
    azure-core's own function.

    :param request: the pipeline request.
    :raises ~azure.core.exceptions.ServiceRequestError: an http URL, https not turned off.
    """
    context = request.context
    if (
        (context.options and "enforce_https" in context.options)  # options are nearly always empty
        or "enforce_https" in context
        # The URL only once no option says otherwise, as azure-core reads it; lower() only for the
        # rare spelling.
        or ((scheme := request.http_request.url[:5]) != "https" and scheme.lower() != "https")
    ):
        _enforce_https(request)


def _send_mentions(name: str) -> bool:
    # What the installed azure-core's own send() does with a 401, read from its code's constants:
    # the policies' send() below follows it step for step.
    constants = (
        *AsyncBearerTokenCredentialPolicy.send.__code__.co_consts,
        *BearerTokenCredentialPolicy.send.__code__.co_consts,
    )
    return name in constants


# Up to some 1.3x release, send() dropped this option after a challenge, so that the redirect
# cleanup kept the new token on the re-sent request; later releases do not.
SEND_POPS_INSECURE_DOMAIN_CHANGE = _send_mentions("insecure_domain_change")
# Later releases read a streamed 401 body before raising on_challenge's error, so that the error
# carries the service's message.
SEND_READS_STREAMED_CHALLENGE = _send_mentions("stream")


# A call the driver makes for a flow (awaiting the result if it is awaitable): function and arguments.
Call = tuple[Callable[..., Any], tuple[Any, ...]]
# Yields calls; is sent each call's result, or has its exception thrown in; returns the response.
ChallengeFlow = Generator[Call, Any, Any]


def challenge_flow(policy: Any, request: Any, response: Any) -> ChallengeFlow:
    """What azure-core's ``send()`` does after a 401, step for step, with the policy's own calls yielded.

    The policy has already dropped the rejected token. With a ``WWW-Authenticate`` challenge,
    ``on_challenge`` decides whether the request is sent once more, through ``policy._send_on``
    (the next policy with the ``on_response`` / ``on_exception`` hooks). The async and the sync
    policy drive this one flow, awaiting or calling.

    :param policy: the policy answering the 401.
    :param request: the request.
    :param response: the 401 response.
    :return: the flow; its value is the response to return.
    """
    if "WWW-Authenticate" not in response.http_response.headers:
        return response
    try:
        authorized = yield policy.on_challenge, (request, response)
    except Exception as ex:
        if not SEND_READS_STREAMED_CHALLENGE:
            raise
        if response.context.options.get("stream"):  # so that the error carries the service's message
            with contextlib.suppress(Exception):
                yield response.http_response.read, ()
        raise ex from HttpResponseError(response=response.http_response)
    if not authorized:
        return response
    if SEND_POPS_INSECURE_DOMAIN_CHANGE:
        request.context.options.pop("insecure_domain_change", False)
    return (yield policy._send_on, (request,))


def ask_credential(credential: Any, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    """Call ``credential`` as the bearer policies' ``_get_token`` does (the same in 1.32.0 to 1.41.0).

    ``get_token_info`` if the credential has it, given the keywords that are ``TokenRequestOptions``
    (``claims``, ``tenant_id``, ``enable_cae``) as its ``options``, the others dropped; else
    ``get_token`` with every keyword.

    :param credential: the credential.
    :param tuple scopes: the scopes.
    :param dict kwargs: the keywords; the options are popped from it.
    :return: the method's name, and what it returned (for an async credential, an awaitable).
    """
    if hasattr(credential, "get_token_info"):
        options = {name: kwargs.pop(name) for name in list(kwargs) if name in TokenRequestOptions.__annotations__}
        return "get_token_info", credential.get_token_info(*scopes, options=options)
    return "get_token", credential.get_token(*scopes, **kwargs)


# --- what enable_background_refresh reads of objects azure-core built ----------------------


def pipeline_policies(pipeline: Any) -> list[Any]:
    """The policies of a ``Pipeline`` or ``AsyncPipeline``, in order (``_impl_policies``, since 1.0).

    A bearer policy is an ``HTTPPolicy``, so it is there itself, never wrapped in a runner.
    """
    return list(getattr(pipeline, "_impl_policies", ()))


def policy_credential(policy: Any) -> Any:
    """The credential a bearer policy built by azure-core's ``__init__`` holds (``_credential``), or None."""
    return policy.__dict__.get("_credential")


def policy_scopes(policy: Any) -> tuple[str, ...]:
    """The scopes a bearer policy built by azure-core's ``__init__`` asks for (``_scopes``)."""
    return tuple(policy.__dict__.get("_scopes", ()))


def cae_enabled(policy: Any) -> bool:
    """Whether a bearer policy built by azure-core's ``__init__`` asks for CAE tokens (``_enable_cae``)."""
    return bool(policy.__dict__.get("_enable_cae", False))
