"""The demo, run as users run it (``python -m bgrefresh_policy``), in a short mode."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

from bgrefresh_policy._demo.load import Pace, Run, Sample
from bgrefresh_policy._demo.report import pace_notes, plot, seconds_text, timeline


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


def test_demo_events_shows_each_refresh_of_the_background_policy_live() -> None:
    args = ["--duration", "1.5", "--refresh-every", "0.5", "--token-latency", "0.2", "--rate", "50", "--events"]
    completed = subprocess.run(
        [sys.executable, "-m", "bgrefresh_policy", *args, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    events = re.findall(r"refresh event: (background|inline) (\w+) in \d+ ms", completed.stdout)
    assert events[0] == ("inline", "new_token")  # the first token, before the timed load
    assert len(events) >= 2  # and at least one refresh while the load ran ...
    assert set(events[1:]) == {("background", "new_token")}  # ... none of them waited on
    assert "Bearer" not in completed.stdout


def test_demo_help_documents_its_flags() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bgrefresh_policy", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for flag in ("--token-latency", "--refresh-every", "--rate", "--concurrency", "--duration", "--plot"):
        assert flag in completed.stdout


def test_chart_marks_due_and_arrival_gives_each_p99_and_a_scale_per_panel() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bgrefresh_policy._demo.report import figure

    stalled = [Sample(t / 10, 0.9 if 25 <= t < 35 else 0.001, 200) for t in range(60)]
    smooth = [Sample(t / 10, 0.001 + 0.0001 * (t % 3), 200) for t in range(60)]
    # The first token arrived before the run (-0.1 s): due at 2.4 s, the next arrives at 3.4 s.
    results = {"azure-core policy": Run(stalled, 1, [-0.1, 3.4]), "background refresh": Run(smooth, 1, [-0.1, 2.5])}
    chart = figure(results, duration=6.0, due_after=2.5)
    try:
        top, bottom = chart.axes
        assert top.get_title().startswith("azure-core policy: p99 ")
        assert bottom.get_title() == "background refresh: p99 1.2 ms"
        due = [line.get_xdata()[0] for line in top.get_lines() if line.get_linestyle() == "--"]
        new = [line.get_xdata()[0] for line in top.get_lines() if line.get_linestyle() == "-"]
        assert due == pytest.approx([2.4, 5.9])  # the second token falls due inside the run too
        assert new == pytest.approx([3.4])
        assert bottom.get_ylim()[1] < 5  # its own scale: milliseconds, not azure-core's 900
        assert top.get_ylim()[1] > 800
        for panel in (top, bottom):  # each panel explains its own lines
            legend = panel.get_legend()
            assert legend is not None
            assert {text.get_text() for text in legend.get_texts()} == {"request", "token due", "new token"}
    finally:
        plt.close(chart)


def _two_runs() -> dict[str, Run]:
    samples = [Sample(t / 10, 0.001, 200) for t in range(10)]
    return {"azure-core policy": Run(samples, 1, [-0.1]), "background refresh": Run(samples, 1, [-0.1])}


@pytest.mark.parametrize(
    ("name", "magic"),
    [("chart.jpg", b"\xff\xd8\xff"), ("chart.svg", b"<?xml"), ("chart.pdf", b"%PDF"), ("chart.PNG", b"\x89PNG")],
)
def test_the_chart_is_written_in_the_format_its_suffix_names(tmp_path: Path, name: str, magic: bytes) -> None:
    path = tmp_path / name
    plot(_two_runs(), str(path), duration=1.0, due_after=0.5)
    assert path.read_bytes().startswith(magic)


def test_a_run_shorter_than_a_second_is_shown_in_its_own_seconds() -> None:
    axis = timeline(_two_runs(), 0.5).splitlines()[-1]
    assert axis.split() == ["0", "s", "0.5", "s"]
    assert seconds_text(0.5) == "0.5 s"
    assert seconds_text(8.0) == "8 s"


def test_a_generator_that_fell_behind_says_how_far_and_one_that_kept_up_says_nothing() -> None:
    samples = [Sample(0.0, 0.001, 200)]
    kept_up = Run(samples, 1, [], Pace(planned=100, issued=100, worst_lag=0.004))
    late = Run(samples, 1, [], Pace(planned=100, issued=100, worst_lag=0.25))
    skipping = Run(samples, 1, [], Pace(planned=1000, issued=600, worst_lag=0.999))
    assert pace_notes({"azure-core policy": kept_up}) == ""
    notes = pace_notes({"azure-core policy": late, "background refresh": skipping}).splitlines()
    assert notes[0].startswith("note: the load generator fell behind for azure-core policy: it issued 100 requests")
    assert "up to 250 ms after their scheduled time." in notes[0]
    assert (
        "up to 999 ms after their scheduled time; 400 of the 1000 planned were skipped, more than 1 s late"
        in (notes[1])
    )


def test_a_rate_beyond_the_machine_ends_on_time_and_says_the_generator_fell_behind() -> None:
    # The command line: it used to create 300 million tasks without yielding. The timeout
    # is a hang guard only.
    completed = subprocess.run(
        [sys.executable, "-m", "bgrefresh_policy", "--rate", "1e9", "--duration", "0.3", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = completed.stdout
    assert "1e+09 requests/s, at most 64 in flight, 0.3 s per policy" in out
    notes = re.findall(r"^note: the load generator fell behind for (.+?): it issued (\d+) .*?; (\d+) of", out, re.M)
    assert [name for name, _, _ in notes] == ["azure-core policy", "background refresh"]
    for _, issued, skipped in notes:
        assert int(issued) + int(skipped) == 300_000_000
    assert re.search(r"^\s+0 s\s+0\.3 s$", out, re.M)
