"""Background token refresh for azure-core pipelines, Azure SDK clients and token providers.

:class:`AsyncBackgroundRefreshTokenPolicy` is a drop-in for azure-core's
``AsyncBearerTokenCredentialPolicy``, and :class:`BackgroundRefreshTokenPolicy` for its
``BearerTokenCredentialPolicy``: both refresh a due token in the background instead of
making requests wait for it. :func:`enable_background_refresh` gives an already built client
the same, whatever its family's policy; :func:`get_bearer_token_provider` (and
``bgrefresh_policy.aio.get_bearer_token_provider``) does it for consumers that take a token
provider; :class:`BackgroundRefreshCredential` (and ``bgrefresh_policy.aio``'s) for everything
that takes a credential. All of them on one credential object share one engine: one token per
key, and one refresh in flight.

Each name's module loads when the name is first used, so that a sync-only program never
loads the async machinery, and the other way round.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._credential_sync import BackgroundRefreshCredential
    from ._enable import enable_background_refresh
    from ._events import RefreshEvent, TokenStatus
    from ._outcome import RefreshOutcome
    from ._policy_async import AsyncBackgroundRefreshTokenPolicy
    from ._policy_sync import BackgroundRefreshTokenPolicy
    from ._providers import get_bearer_token_provider

__all__ = [
    "AsyncBackgroundRefreshTokenPolicy",
    "BackgroundRefreshCredential",
    "BackgroundRefreshTokenPolicy",
    "RefreshEvent",
    "RefreshOutcome",
    "TokenStatus",
    "enable_background_refresh",
    "get_bearer_token_provider",
]
__version__ = "0.1.0"

_HOMES = {
    "AsyncBackgroundRefreshTokenPolicy": "._policy_async",
    "BackgroundRefreshCredential": "._credential_sync",
    "BackgroundRefreshTokenPolicy": "._policy_sync",
    "RefreshEvent": "._events",
    "RefreshOutcome": "._outcome",
    "TokenStatus": "._events",
    "enable_background_refresh": "._enable",
    "get_bearer_token_provider": "._providers",
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
