"""The async token provider, as ``azure.identity.aio`` names it: ``bgrefresh_policy.aio.get_bearer_token_provider``."""

from __future__ import annotations

from .._providers import get_async_bearer_token_provider as get_bearer_token_provider

__all__ = ["get_bearer_token_provider"]
