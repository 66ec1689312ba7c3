"""A forked child keeps the cached tokens and inherits nothing in flight: each state with a real os.fork.

Each scenario runs in a process of its own (``tests/processes/fork_scenarios.py``), so that the
fork happens in a plain interpreter, not inside pytest; the child ends itself if it hangs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes.fork_scenarios import SCENARIOS
from tests.support import HANG_GUARD

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")

_ROOT = Path(__file__).resolve().parents[2]  # where the tests package is importable from


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_forked_child_gets_tokens_and_refreshes_on_its_own(scenario: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.processes.fork_scenarios", scenario],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD * 3,  # the child's own guard is HANG_GUARD
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert '"ok": true' in done.stdout  # the child's own checks passed (each scenario asserts its outcome)
