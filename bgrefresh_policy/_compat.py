"""The azure-core internals the policy reuses, found under their name in each supported release."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["enforce_https"]

enforce_https: Callable[[Any], None]
try:  # azure-core >= 1.38.3
    from azure.core.pipeline.policies._authentication import _enforce_https as enforce_https
except ImportError:  # pragma: no cover - azure-core 1.32.0 .. 1.38.2
    from azure.core.pipeline.policies._authentication import _BearerTokenCredentialPolicyBase

    enforce_https = _BearerTokenCredentialPolicyBase._enforce_https  # type: ignore[attr-defined]
