"""Command-line pieces shared by every ``edgetwin`` subcommand: ``type=`` converters, ``--set``.

Each converter raises ``argparse.ArgumentTypeError`` with the bad text, so argparse prints one
line ``edgetwin ...: error: argument --x: expected ..., got '...'`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

from edgetwin.sim.rng import MAX_SEED

_N = TypeVar("_N", int, float)


class UsageError(Exception):
    """A bad command line; the CLI prints it as one line ``edgetwin: error: ...`` (exit 2)."""


class StoreOnce(argparse.Action):
    """``store`` that refuses an option given twice (argparse silently keeps the last).

    ``--seed 1 --seed 2`` or ``--out a --out b`` is a typo or a pasted command line; which one
    wins is a guess, so it fails in one line instead. Repeatable options use ``append``.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        """Store ``values``; refuse a second occurrence of the same option."""
        given: set[str] = namespace.__dict__.setdefault("_given_once", set())
        if self.dest in given and option_string is not None:
            raise argparse.ArgumentError(self, "given twice; give it once")
        given.add(self.dest)
        setattr(namespace, self.dest, values)


def refuse_repeated_options(parser: argparse.ArgumentParser) -> None:
    """Make ``parser``'s plain ``store`` options :class:`StoreOnce` (call in ``__init__``)."""
    parser.register("action", None, StoreOnce)
    parser.register("action", "store", StoreOnce)


def forget_given(namespace: argparse.Namespace) -> argparse.Namespace:
    """Drop :class:`StoreOnce`'s bookkeeping from a parsed namespace."""
    namespace.__dict__.pop("_given_once", None)
    return namespace


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


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose error is one line ``PROG: error: ... (see 'PROG --help')``.

    Exit status 2, as the ``edgetwin`` CLI; the example scripts use it.
    """

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        """Print ``message`` as one line on stderr and exit with status 2."""
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)

    def check_out(self, out: str | None) -> None:
        """Refuse an unusable ``--out`` folder in one line, before any work (None: no output)."""
        if out is None:
            return
        from edgetwin.scenarios.run import check_output_dir  # lazy: pandas, the run machinery

        try:
            check_output_dir(out)
        except ValueError as exc:
            self.error(f"--out: {exc}")


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer ≥ ``low``: ``"expected an integer, got '…'"`` or ``"must be >= low, got …"``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def positive_float_up_to(high: float = math.inf, unit: str = "") -> Callable[[str], float]:
    """A finite number in ``(0, high]``; the message names the range (and ``unit``)."""
    what = "a finite number > 0" if math.isinf(high) else f"a number in (0, {high:g}]"
    what += f" {unit}" if unit else ""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (math.isfinite(value) and 0 < value <= high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return parse


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


@contextlib.contextmanager
def one_line_warnings(prog: str) -> Iterator[None]:
    """Show every warning raised inside as one line ``<prog>: warning: ...`` on stderr.

    Python's default shows the file, line and source line of the ``warn`` call: two lines of
    EdgeTwin internals for what is a message to the user.
    """

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        sys.stderr.write(f"{prog}: warning: {' '.join(str(message).split())}\n")

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def internal_error_text(exc: BaseException) -> str:
    """The one line a CLI prints for an unexpected exception: a bug, and how to see more."""
    return (
        f"internal error {type(exc).__name__}: {exc} (a bug in EdgeTwin: rerun with "
        "EDGETWIN_DEBUG=1 for the traceback and report it)"
    )
