"""Checks on what a credential returned, before the policy relies on it."""

from __future__ import annotations

from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo

__all__ = ["checked_token"]

TokenLike = AccessToken | AccessTokenInfo


def checked_token(result: Any, method: str) -> TokenLike:
    """Return ``result`` if it looks like an access token, else raise a clear error.

    The message names types only: ``result`` may hold a token string.

    :param result: what the credential returned.
    :param str method: the credential method that returned it, for the message.
    :return: ``result``.
    :rtype: ~azure.core.credentials.AccessToken or ~azure.core.credentials.AccessTokenInfo
    :raises TypeError: ``result`` has no ``str`` token or no numeric ``expires_on``.
    """
    token = getattr(result, "token", None)
    expires_on = getattr(result, "expires_on", None)
    if not isinstance(token, str) or isinstance(expires_on, bool) or not isinstance(expires_on, (int, float)):
        raise TypeError(
            f"credential.{method} returned {type(result).__name__}; expected an AccessTokenInfo or "
            "AccessToken with a str 'token' and a numeric 'expires_on'"
        )
    refresh_on = getattr(result, "refresh_on", None)
    if refresh_on is not None and (isinstance(refresh_on, bool) or not isinstance(refresh_on, (int, float))):
        raise TypeError(f"credential.{method} returned a token whose refresh_on is {type(refresh_on).__name__}")
    return result  # type: ignore[no-any-return]
