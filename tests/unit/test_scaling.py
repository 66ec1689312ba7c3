"""Costs that must not grow with the number of keys a store holds (thousands, in multi-tenant services).

Counted in bytecodes executed, which the machine's load cannot change, never in seconds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from azure.core.credentials import AccessTokenInfo

from bgrefresh_policy._key_state import TokenKey
from bgrefresh_policy._options import RefreshOptions
from bgrefresh_policy._store import TokenStore
from tests.support import FakeClock


def _bytecodes(call: Callable[[], object]) -> int:
    """How many bytecodes ``call()`` executes, in every Python frame it enters."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        call()
    finally:
        sys.settrace(None)
    return count


def _store_with(tenants: int) -> tuple[TokenStore, TokenKey]:
    clock = FakeClock()
    store = TokenStore(RefreshOptions())
    store.clock = clock
    for tenant in range(tenants):
        key = TokenKey.of(["https://vault.azure.net/.default"], f"tenant-{tenant}")
        store.store(key, AccessTokenInfo(f"token-{tenant}", int(clock() + 3600)))
    return store, TokenKey.of(["https://vault.azure.net/.default"], "tenant-7")


def _cost_of_a_401(tenants: int) -> int:
    store, key = _store_with(tenants)
    warm_up = store.current(TokenKey.of(["https://vault.azure.net/.default"], "tenant-9"))
    assert warm_up is not None
    # Traced, not counted: the first log call fills logging's caches, and on Python 3.12+ the first
    # traced call of a code object may go untraced while the tracer instruments it.
    _bytecodes(lambda: store.invalidate_carrying(warm_up.header))
    current = store.current(key)
    assert current is not None
    cost = _bytecodes(lambda: store.invalidate_carrying(current.header))
    assert store.current(key) is None  # the refused token is gone ...
    assert store.current(TokenKey.of(["https://vault.azure.net/.default"], "tenant-8")) is not None  # ... only it
    return cost


def test_a_401_costs_the_same_with_10_000_keys_as_with_100() -> None:
    assert _cost_of_a_401(10_000) == _cost_of_a_401(100) > 0  # > 0: the tracer counted something


def test_a_401_for_a_token_the_store_never_held_costs_the_same_with_10_000_keys_as_with_100() -> None:
    def cost(tenants: int) -> int:
        store, _ = _store_with(tenants)
        _bytecodes(lambda: store.invalidate_carrying("Bearer not-ours"))  # see _cost_of_a_401's warm-up
        return _bytecodes(lambda: store.invalidate_carrying("Bearer not-ours"))

    assert cost(10_000) == cost(100) > 0
