"""Background token refresh for azure-core pipelines.

:class:`AsyncBackgroundRefreshTokenPolicy` is a drop-in for azure-core's
``AsyncBearerTokenCredentialPolicy``, and :class:`BackgroundRefreshTokenPolicy` for its
``BearerTokenCredentialPolicy``: both refresh a due token in the background instead of
making requests wait for it.

Each policy's module loads when the policy is first named, so that a sync-only program never
loads the async machinery, and the other way round.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._policy_async import AsyncBackgroundRefreshTokenPolicy
    from ._policy_sync import BackgroundRefreshTokenPolicy

__all__ = ["AsyncBackgroundRefreshTokenPolicy", "BackgroundRefreshTokenPolicy"]
__version__ = "0.1.0"

_HOMES = {
    "AsyncBackgroundRefreshTokenPolicy": "._policy_async",
    "BackgroundRefreshTokenPolicy": "._policy_sync",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # found once; later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
