"""Argument types for the command lines of the demo and the benchmarks: numbers checked by argparse."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
from collections.abc import Callable

__all__ = ["check_plot_target", "count", "seconds"]


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def seconds(*, allow_zero: bool) -> Callable[[str], float]:
    """A finite number, > 0 (or >= 0 with ``allow_zero``): for durations, rates and latencies.

    :keyword bool allow_zero: whether 0 is accepted.
    :return: the argparse ``type``.
    """

    def parse(text: str) -> float:
        value = _number(text)
        if value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"must be {'>= 0' if allow_zero else '> 0'}, got {text}")
        return value

    parse.__name__ = "non-negative number" if allow_zero else "positive number"
    return parse


def count(text: str) -> int:
    """A whole number >= 1: for counts of requests, threads, rounds and the like.

    :param str text: the argument.
    :return: the count.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def check_plot_target(parser: argparse.ArgumentParser, path: str) -> None:
    """Before a run: matplotlib is installed, writes the format ``path``'s suffix names, and ``path``
    can be written; else exit with a usage error.

    :param parser: reports the error.
    :param str path: where the chart goes.
    """
    if importlib.util.find_spec("matplotlib") is None:
        parser.error('--plot needs matplotlib: install the "plot" extra (from a checkout: pip install ".[plot]")')
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or not os.path.isdir(folder):
        parser.error(f"--plot: cannot write {path}: no such folder, or it is a folder")
    if not os.access(path if os.path.exists(path) else folder, os.W_OK):
        parser.error(f"--plot: cannot write {path}: permission denied")
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    if suffix not in formats:
        known = ", ".join(sorted(formats))
        parser.error(f"--plot: cannot write {path}: its suffix names the format, and matplotlib writes {known}")
