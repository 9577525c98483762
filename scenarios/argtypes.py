"""Command-line pieces shared by every ``edgetwin`` subcommand: ``type=`` converters, ``--set``.

Each converter raises ``argparse.ArgumentTypeError`` with the bad text, so argparse prints one
line ``edgetwin ...: error: argument --x: expected ..., got '...'`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

_N = TypeVar("_N", int, float)


def _number(text: str, cast: Callable[[str], _N], ok: Callable[[_N], bool], what: str) -> _N:
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def nonneg_int(text: str) -> int:
    """An integer ≥ 0."""
    return _number(text, int, lambda v: v >= 0, "a non-negative integer")


def pos_int(text: str) -> int:
    """An integer ≥ 1."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def pos_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a positive number")


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
