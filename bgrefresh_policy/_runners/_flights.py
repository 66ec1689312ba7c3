"""The table of joinable refreshes that every runner keeps, by flight key."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

__all__ = ["without"]


def without(flights: dict[Hashable, Any], flight_key: Hashable, flight: Any) -> dict[Hashable, Any]:
    """``flights`` less ``flight`` under ``flight_key`` (if it is still the one there).

    Once none is left, a new empty dict: a dict keeps the table it grew, and a policy that
    refreshed once would keep paying for it.

    :param flights: a runner's joinable refreshes (the caller holds the runner's lock, if any).
    :param flight_key: the refresh's key.
    :param flight: the refresh that ended.
    :return: the dict to keep.
    """
    if flights.get(flight_key) is flight:
        del flights[flight_key]
    return flights if flights else {}
