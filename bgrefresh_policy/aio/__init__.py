"""The async faces, as ``azure.identity.aio`` names them: ``bgrefresh_policy.aio.BackgroundRefreshCredential``
and ``bgrefresh_policy.aio.get_bearer_token_provider``.

Each loads when first used, as the names of :mod:`bgrefresh_policy` do.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._credential_async import BackgroundRefreshCredential
    from .._providers import get_async_bearer_token_provider as get_bearer_token_provider

__all__ = ["BackgroundRefreshCredential", "get_bearer_token_provider"]

_HOMES = {
    "BackgroundRefreshCredential": ("bgrefresh_policy._credential_async", "BackgroundRefreshCredential"),
    "get_bearer_token_provider": ("bgrefresh_policy._providers", "get_async_bearer_token_provider"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home[0]), home[1])
    globals()[name] = value  # found once; later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
