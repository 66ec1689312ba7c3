"""Background token refresh for azure-core async pipelines.

:class:`AsyncBackgroundRefreshTokenPolicy` is a drop-in for azure-core's
``AsyncBearerTokenCredentialPolicy`` that refreshes a due token in the background
instead of making requests wait for it.
"""

from ._policy_async import AsyncBackgroundRefreshTokenPolicy

__all__ = ["AsyncBackgroundRefreshTokenPolicy"]
__version__ = "0.1.0"
