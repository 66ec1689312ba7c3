"""Validation of the constructor arguments of the policies, providers and credential wrappers."""

from __future__ import annotations

import inspect
import math
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypedDict

# The event type by its public name, which loads it when first resolved (see _events).
import bgrefresh_policy

from ._azure_core import DEFAULT_REFRESH_WINDOW, MAX_REFRESH_JITTER

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Unpack

__all__ = [
    "ClientOptions",
    "CredentialOptions",
    "FaceOptions",
    "PolicyOptions",
    "RefreshOptions",
    "Unpack",
    "check_callback",
    "check_credential",
    "check_flags",
    "check_no_misspelt_option",
    "check_options_of_wrapper",
    "check_scopes",
    "check_wait_limit",
    "checked_refresh_options",
    "refresh_options",
    "take_options",
    "warn_if_inline_only",
]

# The user's call, seen from warn_if_inline_only: the policy's _configure, then its __init__.
_CALLER = 4


class FaceOptions(TypedDict, total=False):
    """The options of every face: the policies, providers, enabled clients and credential wrappers.

    The public classes and functions document them; keyword-only and typed (``**options:
    Unpack[...]``), so that a type checker catches a misspelt one, and written here once.
    """

    min_validity: float
    retry_delay: float
    refresh_timeout: float
    on_refresh: Callable[[bgrefresh_policy.RefreshEvent], object] | None
    refresh_when_idle: bool


class CredentialOptions(FaceOptions, total=False):
    """What a ``BackgroundRefreshCredential`` takes: a face's options, and the host store's name."""

    share_across_processes: str | None


class ClientOptions(FaceOptions, total=False):
    """What ``enable_background_refresh`` takes: a face's options, and whether to share tokens."""

    share_tokens: bool


class PolicyOptions(ClientOptions, total=False):
    """What the policies and providers take: a client's options, and azure-core's ``enable_cae``."""

    enable_cae: bool


# Every option's default, and so every option's name.
_DEFAULTS: dict[str, Any] = {
    "enable_cae": False,
    "min_validity": 60.0,
    "retry_delay": 30.0,
    "refresh_timeout": 30.0,
    "share_tokens": True,
    "on_refresh": None,
    "refresh_when_idle": False,
    "share_across_processes": None,
}
_OPTION_NAMES = tuple(_DEFAULTS)


def take_options(kwargs: dict[str, Any], allowed: Any, *, caller: str, others_allowed: bool = False) -> dict[str, Any]:
    """Pop the options ``allowed`` names out of ``kwargs``; each one not given has its default.

    :param dict kwargs: the keyword arguments; what is left in it is not an option.
    :param allowed: the ``TypedDict`` of the options the caller takes.
    :keyword str caller: the function or class, for messages.
    :keyword bool others_allowed: keywords that are no option pass through (the policies give them
        to azure-core's), unless they look like a misspelt option.
    :return: every option ``allowed`` names, with its value.
    :raises TypeError: a keyword that looks like a misspelt option; any other keyword, unless
        ``others_allowed``.
    """
    names = allowed.__optional_keys__
    taken = {name: kwargs.pop(name, _DEFAULTS[name]) for name in _OPTION_NAMES if name in names}
    check_no_misspelt_option(kwargs, tuple(taken))
    if kwargs and not others_allowed:
        raise TypeError(f"{caller}() got an unexpected keyword argument {next(iter(kwargs))!r}")
    return taken


def _seconds(name: str, value: Any, *, allow_zero: bool) -> float:
    # bool is an int subclass; ``retry_delay=True`` is a mistake, not one second.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound} seconds, got {value!r}")
    return seconds


class RefreshOptions:
    """The policy's refresh tuning, validated once at construction.

    :keyword float min_validity: below this remaining lifetime a request waits for a new token.
    :keyword float retry_delay: least time between background attempts for one token key.
    :keyword float refresh_timeout: a background refresh running longer is cancelled.
    :raises TypeError: a value that is not a number.
    :raises ValueError: a negative or non-finite value, or a zero ``refresh_timeout``.
    """

    __slots__ = ("min_validity", "refresh_timeout", "retry_delay")

    def __init__(self, *, min_validity: float = 60.0, retry_delay: float = 30.0, refresh_timeout: float = 30.0) -> None:
        self.min_validity = _seconds("min_validity", min_validity, allow_zero=True)
        self.retry_delay = _seconds("retry_delay", retry_delay, allow_zero=True)
        self.refresh_timeout = _seconds("refresh_timeout", refresh_timeout, allow_zero=False)

    def __repr__(self) -> str:
        return (
            f"RefreshOptions(min_validity={self.min_validity}, retry_delay={self.retry_delay}, "
            f"refresh_timeout={self.refresh_timeout})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RefreshOptions):
            return NotImplemented
        return (self.min_validity, self.retry_delay, self.refresh_timeout) == (
            other.min_validity,
            other.retry_delay,
            other.refresh_timeout,
        )

    def __hash__(self) -> int:
        return hash((self.min_validity, self.retry_delay, self.refresh_timeout))

    def __getstate__(self) -> tuple[float, float, float]:
        return self.min_validity, self.retry_delay, self.refresh_timeout

    def __setstate__(self, state: tuple[float, float, float]) -> None:
        self.min_validity, self.retry_delay, self.refresh_timeout = state


_DEFAULT = RefreshOptions()


def refresh_options(*, min_validity: float, retry_delay: float, refresh_timeout: float) -> RefreshOptions:
    """The validated options; the one shared instance when they are the defaults, as most are.

    :keyword float min_validity: see :class:`RefreshOptions`.
    :keyword float retry_delay: see :class:`RefreshOptions`.
    :keyword float refresh_timeout: see :class:`RefreshOptions`.
    :return: the options.
    """
    options = RefreshOptions(min_validity=min_validity, retry_delay=retry_delay, refresh_timeout=refresh_timeout)
    return _DEFAULT if options == _DEFAULT else options


def check_options_of_wrapper(given: RefreshOptions, held: RefreshOptions) -> None:
    """A policy or provider built on a ``BackgroundRefreshCredential`` takes the credential's options.

    :param given: the options the policy or provider was given.
    :param held: the credential's.
    :raises ValueError: one was given a value that is neither the default nor the credential's.
    """
    for name in RefreshOptions.__slots__:
        value = getattr(given, name)
        if value not in (getattr(_DEFAULT, name), getattr(held, name)):
            raise ValueError(
                f"{name}={value:g} differs from the BackgroundRefreshCredential's {getattr(held, name):g}: every "
                f"policy and provider on it shares its engine and its options; give {name} to the credential"
            )


def checked_refresh_options(taken: dict[str, Any], *, wait_limit: float | None) -> RefreshOptions:
    """Check the flags and the callback among options ``take_options`` took; the refresh options.

    :param dict taken: the options.
    :keyword wait_limit: the longest wait the face's runtime can do, or None.
    :return: the validated refresh options.
    :raises TypeError: a flag that is not a bool, a callback that is not callable, or a number
        of seconds that is not a number.
    :raises ValueError: a number of seconds out of range.
    """
    check_flags(**{name: taken[name] for name in ("enable_cae", "share_tokens", "refresh_when_idle") if name in taken})
    check_callback("on_refresh", taken["on_refresh"])
    options = refresh_options(
        min_validity=taken["min_validity"], retry_delay=taken["retry_delay"], refresh_timeout=taken["refresh_timeout"]
    )
    if wait_limit is not None:
        check_wait_limit("refresh_timeout", options.refresh_timeout, wait_limit)
    return options


def warn_if_inline_only(min_validity: float, *, stacklevel: int = _CALLER) -> None:
    """Warn when ``min_validity`` leaves no background window for a token without ``refresh_on``.

    Such a token falls due with under 300 s (less its 0-60 s jitter) left, which is then already
    under ``min_validity``: every request that finds it due waits.

    :param float min_validity: the validated option.
    :keyword int stacklevel: where the user's call is, seen from here.
    """
    if min_validity >= DEFAULT_REFRESH_WINDOW:
        warnings.warn(
            f"min_validity={min_validity:g} s is not below azure-core's {DEFAULT_REFRESH_WINDOW} s refresh window: "
            "a token without refresh_on is then refreshed only inline, with requests waiting for it. Use a "
            f"min_validity under {DEFAULT_REFRESH_WINDOW - MAX_REFRESH_JITTER} s to keep the background refresh.",
            UserWarning,
            stacklevel=stacklevel,
        )


def check_wait_limit(name: str, seconds: float | None, limit: float) -> None:
    """Refuse a wait the runtime cannot do (``threading`` waits at most ``threading.TIMEOUT_MAX``).

    :param str name: what the value is called, for the message.
    :param seconds: the wait, or None for no limit.
    :param float limit: the longest wait the runtime can do.
    :raises ValueError: ``seconds`` is above ``limit``.
    """
    if seconds is not None and seconds > limit:
        raise ValueError(
            f"{name}={seconds:g} s is longer than threads can wait (threading.TIMEOUT_MAX = {limit:g} s); "
            "give at most that"
        )


def check_scopes(scopes: tuple[Any, ...]) -> tuple[str, ...]:
    """Return ``scopes`` if it is a non-empty tuple of non-empty strings.

    :param tuple scopes: the scopes given to the constructor.
    :return: the same scopes.
    :rtype: tuple[str, ...]
    :raises ValueError: no scope, or an empty one.
    :raises TypeError: a scope that is not a ``str``.
    """
    if not scopes:
        raise ValueError("scopes: at least one scope is required, e.g. 'https://management.azure.com/.default'")
    for index, scope in enumerate(scopes):
        if not isinstance(scope, str):
            raise TypeError(f"scopes[{index}] must be a str, not {type(scope).__name__}")
        if not scope:
            raise ValueError(f"scopes[{index}] is an empty string")
    return scopes


def _sync_by_type(credential: Any, method_name: str) -> str | None:
    """The module that proves, by the credential's type, that ``method_name`` is sync; else None.

    azure-identity keeps its async credentials in ``azure.identity.aio`` and its sync ones
    elsewhere in ``azure.identity`` (``azure.identity.broker`` too), and a credential's method
    is the one its class, or the first base defining it, holds. A method set on the instance
    (a mock's, a patch) or defined anywhere else proves nothing: azure-core awaits whatever
    returns an awaitable, so only the first call can tell.

    :param credential: the credential given to the constructor.
    :param str method_name: the method the policy calls, ``get_token_info`` or ``get_token``.
    :return: the module of the class defining that method, or None.
    :rtype: str or None
    """
    if method_name in getattr(credential, "__dict__", ()):
        return None
    owner = next((klass for klass in type(credential).__mro__ if method_name in vars(klass)), None)
    if owner is None:
        return None
    module: str = getattr(owner, "__module__", None) or ""
    parts = module.split(".")
    if parts[:2] != ["azure", "identity"] or "aio" in parts:
        return None
    # In case a later release puts an async credential outside .aio: that one would be awaited.
    if inspect.iscoroutinefunction(vars(owner)[method_name]):
        return None
    return module


def check_credential(credential: Any, *, asynchronous: bool, face: str = "policy") -> None:
    """Reject objects that surely cannot give tokens the way the policy asks, before any request is made.

    Only what is certain: azure-core's policies take any object with ``get_token_info`` or
    ``get_token``, and its async policy awaits what the method returns only if it is awaitable,
    so a plain function returning a coroutine or a future (a ``functools.partial``, a
    decorator, a mock) is a valid async credential. A sync credential in the async policy would
    block the event loop on every refresh, the background ones too: refused here when its type
    proves it (azure-identity's sync classes), otherwise at its first call, when what it
    returned is not awaitable. An async credential in the sync policy would return coroutines,
    not tokens: refused here when its method is a coroutine function.

    :param credential: the credential given to the constructor.
    :keyword bool asynchronous: the policy awaits the credential.
    :keyword str face: ``"policy"``, or ``"credential"`` for ``BackgroundRefreshCredential``: what
        the message names.
    :raises TypeError: it is a class, not an instance; it has neither ``get_token_info`` nor
        ``get_token``; or it is surely sync where it must be async, or the other way round.
    """
    if isinstance(credential, type):
        raise TypeError(
            f"credential must be an instance, not the class {credential.__name__}: pass {credential.__name__}()"
        )
    method_name = "get_token_info" if hasattr(credential, "get_token_info") else "get_token"
    method = getattr(credential, method_name, None)
    if not callable(method):
        raise TypeError(
            f"credential must have a get_token_info or get_token method; {type(credential).__name__} has neither"
        )
    kind = type(credential).__name__
    sync_face, async_face = _FACES[face]
    if asynchronous:
        module = _sync_by_type(credential, method_name)
        if module is not None:
            raise TypeError(
                f"{kind} is a sync credential (its {method_name} is from {module}): the async {face} needs an "
                f"async credential, such as those in azure.identity.aio (or use {sync_face} for a sync credential)"
            )
    elif inspect.iscoroutinefunction(method):
        raise TypeError(
            f"{kind}.{method_name} is a coroutine function: the sync {face} needs a sync credential, such as "
            f"those in azure.identity (or use {async_face} for an async credential)"
        )


# What a message about the wrong kind of credential suggests instead, for each face: (sync, async).
_FACES = {
    "policy": ("BackgroundRefreshTokenPolicy", "AsyncBackgroundRefreshTokenPolicy"),
    "credential": ("bgrefresh_policy.BackgroundRefreshCredential", "bgrefresh_policy.aio.BackgroundRefreshCredential"),
}


def check_no_misspelt_option(kwargs: dict[str, Any], names: tuple[str, ...] = _OPTION_NAMES) -> None:
    """Refuse a keyword that looks like a misspelt option.

    Other keywords pass through to azure-core's policy, which accepts and ignores them (SDK
    code and subclasses pass their own), so a typo would otherwise be silently dropped.

    :param dict kwargs: the keyword arguments the policy did not recognise.
    :param tuple names: the options' names.
    :raises TypeError: one of them is close to an option's name.
    """
    if not kwargs:
        return
    import difflib  # only when there is something to compare: it is slow to import

    for name in kwargs:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
        if close:
            raise TypeError(f"unexpected keyword argument {name!r}; did you mean {close[0]!r}?")


def check_flags(**flags: Any) -> None:
    """Each keyword's value is a ``bool``.

    :raises TypeError: one is not (``1`` is not ``True`` here: a mistake, not a flag).
    """
    for name, flag in flags.items():
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, not {type(flag).__name__}")


def check_callback(name: str, value: Any) -> None:
    """``value`` is None or callable.

    :raises TypeError: it is neither.
    """
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable taking a RefreshEvent, or None, not {type(value).__name__}")
