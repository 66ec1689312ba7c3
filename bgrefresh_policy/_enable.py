"""enable_background_refresh: background refresh for an Azure SDK client that is already built."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from types import FunctionType, ModuleType
from typing import Any, TypeVar

from azure.core.pipeline import AsyncPipeline, Pipeline
from azure.core.pipeline.policies import AsyncHTTPPolicy, HTTPPolicy, SansIOHTTPPolicy
from azure.core.pipeline.transport import AsyncHttpTransport, HttpTransport

# The event types by their public names, which load them when first resolved (see _events).
from ._azure_core import pipeline_policies, policy_credential
from ._families import background_class, is_bearer_policy
from ._options import ClientOptions, Unpack, take_options

__all__ = ["enable_background_refresh"]

_LOGGER = logging.getLogger(__name__)

ClientT = TypeVar("ClientT")

# How deep below the client its pipelines lie: 2 or 3 attributes in every family tested
# (client._client._client._pipeline for Text Analytics); a little more, for margin.
_MAX_DEPTH = 5
# Objects not to look inside: what no pipeline hangs below, and the links between policies.
_LEAVES = (
    str,
    bytes,
    int,
    float,
    bool,
    type,
    ModuleType,
    FunctionType,
    HTTPPolicy,
    AsyncHTTPPolicy,
    SansIOHTTPPolicy,
    HttpTransport,
    AsyncHttpTransport,
)
# Attributes that are large and hold no pipeline: generated (de)serializers and their models.
_SKIPPED = frozenset({"_serialize", "_deserialize", "_models"})
# Set on a child-client factory once wrapped, so that enabling twice wraps once.
_WRAPPED = "__bgrefresh_wrapped__"


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, (list, tuple, set, frozenset)):
        yield from (("", item) for item in value)
    elif isinstance(value, dict):
        yield from (("", item) for item in value.values())
    else:
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            yield from attributes.items()


def _has_credential_methods(value: Any) -> bool:
    return hasattr(value, "get_token") or hasattr(value, "get_token_info")


def bearer_policies(client: Any) -> list[Any]:
    """Every azure-core bearer policy reachable from ``client``: in its pipelines, or held directly.

    A walk of the client's attributes, at most a few deep, that never follows the policies'
    ``next`` links, transports or modules. Nor does it look inside the credentials of the policies
    it finds: a credential holds its own clients and pipelines (azure-identity's), which are not
    the client's. An object is known for a credential by a policy holding it, never by its
    methods' names alone, since a client may have a ``get_token`` of its own (Communication
    Identity's ``get_token(user, scopes)``): objects with a credential's methods are only looked
    inside last, once every other object has been, and then only if no policy found holds them.

    :param client: an Azure SDK client, or anything holding pipelines.
    :return: the policies, each once, in the order found.
    """
    found: dict[int, Any] = {}
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(client, 0)]
    # Objects with a credential's methods, put off until the policies found tell whether they are credentials.
    put_off: list[tuple[Any, int]] = []
    while stack or put_off:
        if not stack:
            value, depth = put_off.pop(0)
            if id(value) not in {id(policy_credential(policy)) for policy in found.values()}:
                stack.extend(_inside(value, depth))
            continue
        value, depth = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, (Pipeline, AsyncPipeline)):
            found.update((id(policy), policy) for policy in pipeline_policies(value) if is_bearer_policy(policy))
        elif is_bearer_policy(value):
            found[id(value)] = value
        elif depth < _MAX_DEPTH and not isinstance(value, _LEAVES):
            if _has_credential_methods(value):
                put_off.append((value, depth))
            else:
                stack.extend(_inside(value, depth))
    return list(found.values())


def _inside(value: Any, depth: int) -> Iterator[tuple[Any, int]]:
    return ((child, depth + 1) for name, child in _children(value) if name not in _SKIPPED)


def _give_background_refresh(policies: list[Any], options: dict[str, Any]) -> None:
    """Turn each policy into its background-refreshing class in place, unless it is one already.

    Every policy is prepared (options checked, state set) before any changes class: a bad option
    changes nothing, and a request on another thread never meets the new class without its state.
    """
    pending = [(policy, background_class(type(policy))) for policy in policies]
    pending = [(policy, made) for policy, made in pending if not isinstance(policy, made)]
    states = [made._adoption_state(policy, **options) for policy, made in pending]
    for (policy, made), state in zip(pending, states, strict=True):
        policy.__dict__.update(state)
        policy.__class__ = made
        policy._adopted()
        _LOGGER.debug("%s now refreshes its token in the background", made.__name__)


def _wrap_child_factories(client: Any, options: dict[str, Any]) -> None:
    """Make the ``get_*_client`` methods of ``client`` enable the clients they hand out too."""
    for name in dir(type(client)):
        if not (name.startswith("get_") and name.endswith("_client")):
            continue
        factory = getattr(client, name, None)
        if not callable(factory) or getattr(factory, _WRAPPED, False):
            continue
        wrapped = _enabling(factory, options)
        try:
            setattr(client, name, wrapped)
        except (AttributeError, TypeError):  # a client class with __slots__: its children go as they are
            return


def _enabling(factory: Callable[..., Any], options: dict[str, Any]) -> Callable[..., Any]:
    @functools.wraps(factory)
    def child_client(*args: Any, **kwargs: Any) -> Any:
        child = factory(*args, **kwargs)
        _enable(child, options, required=False)
        return child

    setattr(child_client, _WRAPPED, True)
    return child_client


def _token_provider_keyword(client: Any) -> str | None:
    """The keyword of the client's class that takes a token provider (the OpenAI SDK's
    ``azure_ad_token_provider``), or None."""
    try:
        parameters = inspect.signature(type(client)).parameters
    except (TypeError, ValueError):  # a class whose signature cannot be read, as some builtins'
        return None
    return next((name for name in parameters if name.endswith("token_provider")), None)


def _no_policy_error(client: Any) -> TypeError:
    name = type(client).__name__
    keyword = _token_provider_keyword(client)
    if keyword is None:
        return TypeError(
            f"{name} has no azure-core bearer token policy to refresh in the background: "
            "expected an Azure SDK client built with a token credential (not a key, SAS or connection string)"
        )
    # Such a client (the OpenAI SDK's) has no azure-core pipeline at all: a provider is the way in.
    provider = (
        "bgrefresh_policy.aio.get_bearer_token_provider"
        if inspect.iscoroutinefunction(getattr(client, "close", None))
        else "bgrefresh_policy.get_bearer_token_provider"
    )
    return TypeError(
        f"{name} has no azure-core bearer token policy to refresh in the background: it takes a token "
        f"provider instead; build it with {keyword}={provider}(credential, scope)"
    )


def _enable(client: Any, options: dict[str, Any], *, required: bool) -> None:
    policies = bearer_policies(client)
    if not policies and required:
        raise _no_policy_error(client)
    _give_background_refresh(policies, options)
    _wrap_child_factories(client, options)


def enable_background_refresh(client: ClientT, **options: Unpack[ClientOptions]) -> ClientT:
    """Give every bearer token policy of an Azure SDK client background refresh, keeping what the family adds.

    Finds azure-core's bearer policies in the client's pipelines, the families' own included
    (Key Vault's challenge policy, Storage's and Tables' challenge policies, ARM's), and makes each
    refresh its token in the background as :class:`AsyncBackgroundRefreshTokenPolicy` (async
    clients) or :class:`BackgroundRefreshTokenPolicy` (sync clients) do. The family's own handling
    stays: Key Vault still learns its scope and tenant from the service's challenge, Storage and
    Tables still answer theirs. The clients the client hands out later (``get_container_client``,
    ``get_blob_client``, ``get_table_client``, ...) are given it too. Policies on the same
    credential share one token per scope and tenant (see ``share_tokens``).

    Calling it again on the same client changes nothing.

    :param client: an async or sync Azure SDK client, built with a token credential.
    :keyword float min_validity: see the policies. Defaults to 60.
    :keyword float retry_delay: see the policies. Defaults to 30.
    :keyword float refresh_timeout: see the policies. Defaults to 30.
    :keyword bool share_tokens: share tokens with every policy on the same credential object.
        Defaults to True.
    :keyword on_refresh: see the policies: called with a :class:`~bgrefresh_policy.RefreshEvent`
        after every credential call the client's policies make.
    :keyword bool refresh_when_idle: see the policies. Defaults to False.
    :return: ``client``, the same object.
    :raises TypeError: ``client`` holds no azure-core bearer policy (a client built with a key, a
        SAS or a connection string, a client that takes a token provider instead, such as the
        OpenAI SDK's, whose message names :func:`~bgrefresh_policy.get_bearer_token_provider`, or an
        object that is not an Azure SDK client), or an option of the wrong type.
    :raises ValueError: an option out of range. Either error leaves the client as it was.

    The policies of an enabled client pickle and copy as the policies do (their classes are made
    again where the pickle is loaded, and no token goes with them); a client whose child-client
    factories were wrapped (Storage, Tables) cannot be pickled whole.
    """
    taken = take_options(dict(options), ClientOptions, caller="enable_background_refresh")
    _enable(client, taken, required=True)
    return client
