"""Background token refresh for azure-core pipelines.

:class:`AsyncBackgroundRefreshTokenPolicy` is a drop-in for azure-core's
``AsyncBearerTokenCredentialPolicy``, and :class:`BackgroundRefreshTokenPolicy` for its
``BearerTokenCredentialPolicy``: both refresh a due token in the background instead of
making requests wait for it.
"""

from ._policy_async import AsyncBackgroundRefreshTokenPolicy
from ._policy_sync import BackgroundRefreshTokenPolicy

__all__ = ["AsyncBackgroundRefreshTokenPolicy", "BackgroundRefreshTokenPolicy"]
__version__ = "0.1.0"
