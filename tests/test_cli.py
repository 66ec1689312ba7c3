"""The demo's and the benchmarks' command lines refuse numbers they cannot run with, before running."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.__main__ import _commit
from benchmarks.__main__ import main as benchmarks_main
from bgrefresh_policy._demo.cli import main as demo_main


def usage_error(main: Callable[[list[str]], object], argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before any run: no table of zeros, no traceback
    return captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--concurrency", "0"], "--concurrency: must be >= 1, got 0"),
        (["--concurrency", "2.5"], "--concurrency: '2.5' is not a whole number"),
        (["--refresh-every", "0"], "--refresh-every: must be > 0, got 0"),
        (["--rate", "-5"], "--rate: must be > 0, got -5"),
        (["--rate", "inf"], "--rate: 'inf' is not a finite number"),
        (["--duration", "0"], "--duration: must be > 0, got 0"),
        (["--duration", "nan"], "--duration: 'nan' is not a finite number"),
        (["--token-latency", "-1"], "--token-latency: must be >= 0, got -1"),
        (["--slow-ms", "ten"], "--slow-ms: 'ten' is not a number"),
    ],
)
def test_demo_refuses_bad_numbers(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert message in usage_error(demo_main, argv, capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--burst", "-5"], "--burst: must be >= 1, got -5"),
        (["--repeats", "0"], "--repeats: must be >= 1, got 0"),
        (["--cycles", "0"], "--cycles: must be >= 1, got 0"),
        (["--threads", "0"], "--threads: must be >= 1, got 0"),
        (["--refresh-latency", "-1"], "--refresh-latency: must be >= 0, got -1"),
        (["--refresh-latency", "nan"], "--refresh-latency: 'nan' is not a finite number"),
        (["--requests", "10", "--cycles", "20"], "--requests (10) must be at least --cycles (20)"),
    ],
)
def test_benchmarks_refuse_bad_numbers(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert message in usage_error(benchmarks_main, argv, capsys)


@pytest.mark.parametrize("main", [demo_main, benchmarks_main], ids=["demo", "benchmarks"])
def test_help_shows_each_range_and_default(
    main: Callable[[list[str]], object], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    expected = (
        ["--concurrency N most requests in flight at once, >= 1 (default: 64)", "> 0 (default: 2.5)"]
        if main is demo_main
        else ["concurrent requests per burst, >= 1 (default: 1000)", ">= 0 (default: 0.5)"]
    )
    for fragment in expected:
        assert fragment in text


def test_plot_without_matplotlib_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: find_spec() answers None
    err = usage_error(demo_main, ["--plot", str(tmp_path / "chart.png")], capsys)
    assert 'install the "plot" extra' in err


def test_the_demo_without_aiohttp_names_the_extra_and_help_still_works(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # as if the [demo] extra were not installed
    assert 'install the "demo" extra' in usage_error(demo_main, [], capsys)
    with pytest.raises(SystemExit) as exited:
        demo_main(["--help"])
    assert exited.value.code == 0


def test_plot_to_a_format_matplotlib_does_not_write_is_refused_before_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("chart.xyz", "chart"):
        err = usage_error(demo_main, ["--plot", str(tmp_path / name)], capsys)
        assert f"cannot write {tmp_path / name}: its suffix names the format, and matplotlib writes" in err
        assert "jpg" in err


def test_plot_to_a_place_that_cannot_be_written_is_refused_before_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert "no such folder" in usage_error(demo_main, ["--plot", str(tmp_path / "missing" / "chart.png")], capsys)
    assert "it is a folder" in usage_error(demo_main, ["--plot", str(tmp_path)], capsys)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root may write anywhere: nothing to refuse then
            pytest.skip("running as a user who can write to a read-only folder")
        assert "permission denied" in usage_error(demo_main, ["--plot", str(locked / "chart.png")], capsys)
    finally:
        locked.chmod(0o700)


def test_the_benchmarks_record_the_commit_they_ran_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
    recorded = _commit()
    assert recorded["commit"] == head.stdout.strip()
    assert isinstance(recorded["modified"], bool)
    monkeypatch.chdir(tmp_path)  # outside any checkout, as from an sdist: nothing to name
    assert _commit() == {"commit": None, "modified": None}
