"""The demo, run as users run it (``python -m bgrefresh_policy``), in a short mode."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image


def test_demo_short_run_prints_table_timeline_and_writes_a_png(tmp_path: Path) -> None:
    chart = tmp_path / "latency.png"
    args = ["--duration", "1.5", "--refresh-every", "0.5", "--token-latency", "0.3", "--rate", "100"]
    completed = subprocess.run(
        [sys.executable, "-m", "bgrefresh_policy", *args, "--plot", str(chart)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = completed.stdout
    assert re.search(r"^policy\s+requests\s+failed\s+p50 ms\s+p99 ms\s+max ms\s+>100 ms\s+token requests$", out, re.M)
    rows = dict(
        re.findall(r"^(azure-core policy|background refresh)\s+(\d+\s+\d+(?:\s+[\d.]+){3}\s+\d+\s+\d+)$", out, re.M)
    )
    assert set(rows) == {"azure-core policy", "background refresh"}
    for name, row in rows.items():
        requests, failed, _p50, _p99, _worst, _slow, token_requests = row.split()
        assert int(requests) == 150, name
        assert int(failed) == 0, name
        assert int(token_requests) >= 2, name  # the load crossed at least two refreshes
    # azure-core's policy makes requests wait for the 0.3 s token endpoint: a lower bound, not a timing guess.
    assert float(rows["azure-core policy"].split()[4]) >= 250
    timeline = re.findall(r"^(azure-core policy|background refresh)\s+\|(.{64})\|$", out, re.M)
    assert [name for name, _ in timeline] == ["azure-core policy", "background refresh"]
    assert "chart written to" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(chart)
    assert pixels.shape[0] > 100
    assert pixels.shape[1] > 100


def test_demo_help_documents_its_flags() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bgrefresh_policy", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for flag in ("--token-latency", "--refresh-every", "--rate", "--concurrency", "--duration", "--plot"):
        assert flag in completed.stdout
