"""The demo's ``--processes N`` mode, run as users run it: real worker processes, without and with the option."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support import HANG_GUARD


def test_demo_processes_shows_one_token_request_per_host_with_the_option() -> None:
    args = ["--processes", "4", "--duration", "3", "--refresh-every", "1", "--token-latency", "0.2", "--rate", "40"]
    completed = subprocess.run(
        [sys.executable, "-m", "bgrefresh_policy", *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD * 4,
        check=True,
    )
    rows = {
        option: (int(start), int(total))
        for option, start, total in re.findall(r"^(off|on)\s+(\d+)\s+(\d+)$", completed.stdout, re.M)
    }
    assert rows["off"][0] == 4  # one request per process at start-up
    assert rows["on"][0] == 1  # one for the host
    assert rows["on"][1] < rows["off"][1]  # and fewer refreshes: one per cycle instead of one per process
