"""The back-off after a failed refresh: ``retry_delay``, stretched by what the error's HTTP
``Retry-After`` asks, but never past the moment requests would have to wait for a new token anyway."""

from __future__ import annotations

import math
from typing import Any

from ._key_state import CachedToken
from ._options import RefreshOptions

__all__ = ["backoff", "retry_after"]


def backoff(error: BaseException | None, current: CachedToken | None, now: float, options: RefreshOptions) -> float:
    """Seconds until the next background attempt for a key after a refresh ended with ``error``.

    ``retry_delay``, or longer if the error's HTTP response asked so (``Retry-After``), but
    never past ``min_validity`` before the current token's expiry, when requests would have to
    wait for a new token anyway.

    :param error: the refresh's error, or None.
    :param current: the key's token, or None.
    :param float now: Unix time.
    :param options: the refresh options.
    :return: the seconds.
    """
    delay = options.retry_delay
    asked = retry_after(error, now)
    if asked is None or asked <= delay:
        return delay
    if current is not None and current.expires_on > now:
        return min(asked, max(delay, current.expires_on - options.min_validity - now))
    return asked


def retry_after(error: BaseException | None, now: float) -> float | None:
    """Seconds an HTTP ``Retry-After`` carried by ``error`` asks to wait, or None.

    azure-core's ``HttpResponseError`` (and ``ClientAuthenticationError``) carry the response;
    a credential may also raise its own error from one (``__cause__``). Both the delay-seconds and
    the HTTP-date forms are read.

    :param error: the refresh's error.
    :param float now: Unix time, for the HTTP-date form.
    :return: the seconds, at least 0; None without a readable ``Retry-After``.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        value = _header(getattr(error, "response", None))
        if value is not None:
            return _seconds(value, now)
        error = error.__cause__ or error.__context__
    return None


def _header(response: Any) -> str | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("Retry-After")
    except Exception:  # noqa: BLE001 - a response object of some other shape: no header
        return None
    return value if isinstance(value, str) else None


def _seconds(value: str, now: float) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        import email.utils  # only for the rare HTTP-date form: not on import

        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
