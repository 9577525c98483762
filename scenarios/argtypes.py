"""Command-line pieces shared by every ``edgetwin`` subcommand: ``type=`` converters, ``--set``.

Each converter raises ``argparse.ArgumentTypeError`` with the bad text, so argparse prints one
line ``edgetwin ...: error: argument --x: expected ..., got '...'`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

from edgetwin.sim.rng import MAX_SEED

_N = TypeVar("_N", int, float)


class UsageError(Exception):
    """A bad command line; the CLI prints it as one line ``edgetwin: error: ...`` (exit 2)."""


def _number(text: str, cast: Callable[[str], _N], ok: Callable[[_N], bool], what: str) -> _N:
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def bounded_int(text: str, low: int, high: int) -> int:
    """An integer in ``low..high`` (inclusive); the message names the range."""
    return _number(text, int, lambda v: low <= v <= high, f"an integer in {low}..{high}")


def seed_int(text: str) -> int:
    """A seed: an integer in ``0..MAX_SEED``."""
    return bounded_int(text, 0, MAX_SEED)


def nonneg_float(text: str) -> float:
    """A finite number ≥ 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")


def nonneg_int(text: str) -> int:
    """An integer ≥ 0."""
    return _number(text, int, lambda v: v >= 0, "a non-negative integer")


def pos_int(text: str) -> int:
    """An integer ≥ 1."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def pos_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``: dotted scenario overrides."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario field by dotted path, e.g. --set cell.bandwidth_hz=40e6 "
        "(repeatable)",
    )
