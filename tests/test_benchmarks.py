"""``python -m benchmarks`` as a newcomer meets it: its help, its extra, and its progress on stderr."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import main as benchmarks_main
from benchmarks.progress import Progress, duration_text
from benchmarks.sections import SECTIONS
from tests.support import FakeClock

ROOT = Path(__file__).resolve().parents[1]
SMALLEST = [
    *("--refresh-latency", "0", "--burst", "1", "--repeats", "1", "--threads", "1", "--per-thread", "1"),
    *("--rounds", "1", "--batch", "1", "--import-rounds", "1", "--requests", "1", "--cycles", "1"),
]


def test_help_names_the_extra_the_root_and_readable_metavars(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        benchmarks_main(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert 'Needs the "bench" extra (python -m pip install -e ".[bench]")' in text
    assert "must run from the repository's root" in text
    assert '"No module named benchmarks"' in text
    for option in ("--refresh-latency S", "--burst N", "--rounds N", "--json FILE"):
        assert option in text
    metavars = re.findall(r"--([\w-]+) ([A-Z_]+)", text)
    assert len(metavars) > 10
    assert not [name for name, metavar in metavars if metavar == name.upper().replace("-", "_")]  # no REFRESH_LATENCY


@pytest.mark.parametrize(
    ("module", "package"), [("time_machine", "time-machine"), ("azure.identity", "azure-identity")]
)
def test_a_missing_extra_is_named_before_anything_runs(
    module: str, package: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: find_spec() answers None
    with pytest.raises(SystemExit) as exited:
        benchmarks_main([])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f'{package} is not installed: install the "bench" extra' in captured.err


def test_progress_names_each_section_and_scales_the_reference_by_this_runs_pace() -> None:
    clock, stream = FakeClock(0.0), io.StringIO()
    progress = Progress([10.0, 20.0, 30.0], stream=stream, clock=clock)
    progress.begin("first")
    clock.advance(20.0)  # twice the reference's 10 s: what is left should take twice as long too
    progress.begin("second")
    clock.advance(40.0)
    progress.begin("third")
    clock.advance(60.0)
    progress.end()
    assert stream.getvalue().splitlines() == [
        "[1/3] first (2 more after it; about 1 min 00 s left)",
        "[2/3] second (1 more after it; about 1 min 40 s left)",
        "[3/3] third (the last; about 1 min 00 s left)",
        "[done] 3 sections in 2 min 00 s",
    ]
    assert duration_text(59.6) == "1 min 00 s"


def test_every_section_has_a_reference_time() -> None:
    assert all(section.weight > 0 for section in SECTIONS)


def test_the_smallest_run_reports_progress_on_stderr_only_and_writes_every_row(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", *SMALLEST, "--json", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard: the smallest run takes a minute or two
        check=True,
    )
    announced = re.findall(
        r"^\[(\d+)/(\d+)\] (.+) \((?:\d+ more after it|the last); about .+ left\)$", completed.stderr, re.M
    )
    assert [(int(n), int(total)) for n, total, _ in announced] == [
        (n, len(SECTIONS)) for n in range(1, len(SECTIONS) + 1)
    ]
    assert [title for _, _, title in announced] == [section.title for section in SECTIONS]
    assert re.search(rf"^\[done\] {len(SECTIONS)} sections in ", completed.stderr, re.M)
    assert "[1/" not in completed.stdout  # the tables on stdout are as they were
    report = json.loads(results.read_text())
    for row in ("wrapper_get_token_info", "wrapper_pipeline_refreshing"):
        assert set(report[row]) == {"async", "sync"}
        for side in report[row].values():
            assert side["ratio"]["median"] > 0
    assert set(report["wrapper_get_token_info"]["async"]["ns"]) == {"azure-identity", "bgrefresh"}
    assert set(report["wrapper_pipeline_refreshing"]["sync"]["ns"]) == {
        "plain policy on the wrapper",
        "bgrefresh",
        "floor",
    }
    assert "12. BackgroundRefreshCredential.get_token_info" in completed.stdout
    assert "13. a request while a refresh is in flight" in completed.stdout
