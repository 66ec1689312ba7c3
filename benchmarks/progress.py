"""A benchmark run's progress, on stderr: which section runs, how many remain, and about how long is left.

The estimate scales a reference run's section times by this run's pace so far: a slower machine,
or a busier one, stretches what is left in the same proportion as what is done.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

__all__ = ["Progress", "duration_text"]


def duration_text(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``: for a person waiting."""
    whole = max(0, round(seconds))
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"


class Progress:
    """Announces each section as it begins, and the run's end.

    :param weights: each section's seconds in a reference run with the default options.
    :keyword stream: where the lines go; stderr, so that the results on stdout stay as they are.
    :keyword clock: monotonic seconds.
    """

    def __init__(
        self,
        weights: Sequence[float],
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._weights = list(weights)
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._started = clock()
        self._next = 0

    def begin(self, title: str) -> None:
        """The next section starts: its number, how many remain after it, and the time left.

        :param str title: what the section measures.
        """
        index, total = self._next, len(self._weights)
        self._next += 1
        left = f"{total - index - 1} more after it" if index < total - 1 else "the last"
        self._say(f"[{index + 1}/{total}] {title} ({left}; about {duration_text(self.left(index))} left)")

    def end(self) -> None:
        """The run is over: how long it took."""
        self._say(f"[done] {len(self._weights)} sections in {duration_text(self._clock() - self._started)}")

    def left(self, index: int) -> float:
        """Seconds left when section ``index`` begins: the reference's rest, at this run's pace so far."""
        done = sum(self._weights[:index])
        pace = (self._clock() - self._started) / done if done else 1.0
        return sum(self._weights[index:]) * pace

    def _say(self, line: str) -> None:
        print(line, file=self._stream, flush=True)
