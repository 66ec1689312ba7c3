"""Validation of the policy's constructor arguments."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["RefreshOptions", "check_credential", "check_no_misspelt_option", "check_scopes"]

_OPTION_NAMES = ("enable_cae", "min_validity", "retry_delay", "refresh_timeout")


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


@dataclass(frozen=True)
class RefreshOptions:
    """The policy's refresh tuning, validated once at construction.

    :ivar float min_validity: below this remaining lifetime a request waits for a new token.
    :ivar float retry_delay: least time between background attempts for one token key.
    :ivar float refresh_timeout: a background refresh running longer is cancelled.
    """

    min_validity: float = 60.0
    retry_delay: float = 30.0
    refresh_timeout: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_validity", _seconds("min_validity", self.min_validity, allow_zero=True))
        object.__setattr__(self, "retry_delay", _seconds("retry_delay", self.retry_delay, allow_zero=True))
        object.__setattr__(self, "refresh_timeout", _seconds("refresh_timeout", self.refresh_timeout, allow_zero=False))


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


def check_credential(credential: Any) -> None:
    """Reject objects that cannot give tokens before any request is made.

    :param credential: the credential given to the constructor.
    :raises TypeError: it has neither ``get_token_info`` nor ``get_token``.
    """
    if not (callable(getattr(credential, "get_token_info", None)) or callable(getattr(credential, "get_token", None))):
        raise TypeError(
            f"credential must have a get_token_info or get_token method; {type(credential).__name__} has neither"
        )


def check_no_misspelt_option(kwargs: dict[str, Any]) -> None:
    """Refuse a keyword that looks like a misspelt option.

    Other keywords pass through to azure-core's policy, which accepts and ignores them (SDK
    code and subclasses pass their own), so a typo would otherwise be silently dropped.

    :param dict kwargs: the keyword arguments the policy did not recognise.
    :raises TypeError: one of them is close to an option's name.
    """
    for name in kwargs:
        close = difflib.get_close_matches(name, _OPTION_NAMES, n=1, cutoff=0.8)
        if close:
            raise TypeError(f"unexpected keyword argument {name!r}; did you mean {close[0]!r}?")
