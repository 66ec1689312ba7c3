"""Reliability suite: the fault table is collected across tests and printed at the end of the run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class FaultRow:
    fault: str
    phase: str
    requests: int
    failed: int
    token_requests: int
    error: str
    recovery_s: float


FAULT_ROWS: list[FaultRow] = []
SOAK_FIGURES: list[str] = []


def fault_table() -> str:
    header = "| fault | phase | requests | failed | token requests | what failed requests raised | recovery |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for row in sorted(FAULT_ROWS, key=lambda r: (r.fault, r.phase)):
        lines.append(
            f"| {row.fault} | {row.phase} | {row.requests} | {row.failed} | {row.token_requests} | "
            f"{row.error or '-'} | {row.recovery_s:.2f} s |"
        )
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FAULT_ROWS:
        terminalreporter.write_sep("-", "fault injection (tests/reliability/test_faults.py)")
        terminalreporter.write_line(fault_table())
    for figures in SOAK_FIGURES:
        terminalreporter.write_sep("-", "soak (tests/reliability/test_soak.py)")
        terminalreporter.write_line(figures)


@pytest.fixture
def record_fault_row() -> Any:
    return FAULT_ROWS.append


from tests.integration.conftest import emulator, wall_clock  # noqa: E402, F401 - shared fixtures
