"""``edgetwin kernels``: profile operators of a model and fit per-operator predictors.

Examples::

    edgetwin kernels profile --model smollm-135m --device cpu --out kernels/profiles
    edgetwin kernels profile --model smollm-135m --device cpu --out /tmp/p --quick --ops linear_qkv
    edgetwin kernels profile --model smollm-135m --out /tmp/p --cache hot   # operands cached
    edgetwin kernels fit kernels/profiles/cpu/smollm-135m

Bad input prints one line ``edgetwin kernels: error: ...`` on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgetwin.scenarios.argtypes import bounded_int, forget_given, refuse_repeated_options

PROG = "edgetwin kernels"


class _UsageError(Exception):
    """Raised instead of argparse's print-and-exit."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        refuse_repeated_options(self)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, rest = super().parse_known_args(args, namespace)
        return forget_given(ns), rest

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _error(message: str) -> None:
    """Print ``message`` as one line (whitespace folded), as every ``edgetwin`` error."""
    line = " ".join(str(message).split())
    sys.stderr.write(f"{PROG}: error: {line}\n")


#: Most torch CPU threads ``--threads`` accepts: more than a few per core only adds overhead,
#: and a huge count aborts the process inside OpenMP (``libgomp: Out of memory``).
MAX_THREADS = 4 * (os.cpu_count() or 1)


def _threads(text: str) -> int:
    return bounded_int(text, 1, MAX_THREADS)


def _cache_bytes(text: str) -> int:
    return bounded_int(text, 1, 2**40)


def _out_root(text: str) -> Path:
    if not text.strip():  # Path('') is '.': the profiles would land in the working directory
        raise argparse.ArgumentTypeError("expected a folder path, got ''")
    return Path(text)


def _ops(values: Sequence[str]) -> list[str]:
    twice = sorted({o for o in values if list(values).count(o) > 1})
    if twice:
        raise ValueError(f"--ops names {', '.join(twice)} twice; give each operator once")
    return list(values)


def build_parser() -> argparse.ArgumentParser:
    """Parser with the ``profile`` and ``fit`` subcommands."""
    parser = _Parser(prog=PROG, description="Time real LLM operators and fit cost models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("profile", help="measure operators and write profile CSVs")
    p.add_argument("--model", required=True, help="model id, e.g. smollm-135m")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--out", required=True, type=_out_root, help="output root folder")
    p.add_argument("--quick", action="store_true", help="small grids, few repeats")
    p.add_argument("--ops", nargs="+", default=None, help="operators to measure (default all)")
    p.add_argument(
        "--threads",
        type=_threads,
        default=None,
        help=f"torch CPU threads, 1..{MAX_THREADS} (default torch's)",
    )
    p.add_argument(
        "--cache",
        choices=["cold", "hot"],
        default="cold",
        help="cold (default): rotate operand sets over twice the last-level cache, as inside a "
        "model; hot: the same operands every call",
    )
    p.add_argument(
        "--cache-bytes",
        type=_cache_bytes,
        default=None,
        metavar="N",
        help="last-level cache size in bytes (default: read from the machine)",
    )
    f = sub.add_parser("fit", help="fit per-operator predictors of profile folders")
    f.add_argument("dir", type=Path, help="a <device>/<model> folder, or a root holding them")
    return parser


def _profile_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise FileNotFoundError(f"profile folder not found: {str(root)!r}")
    if any(root.glob("*.csv")):
        return [root]
    dirs = sorted({p.parent for p in root.rglob("*.csv")})
    if not dirs:
        raise FileNotFoundError(f"no profile CSVs under {str(root)!r}")
    return dirs


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``edgetwin kernels``; returns the exit status (0 ok, 2 bad input)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args_list):
        try:
            build_parser().parse_args(args_list)
        except SystemExit as exc:
            return int(exc.code) if isinstance(exc.code, int) else 0
    debug = os.environ.get("EDGETWIN_DEBUG", "") not in ("", "0")
    try:
        args = build_parser().parse_args(args_list)
        if args.command == "profile":
            import torch

            from edgetwin.kernels.profile import profile

            ops = None if args.ops is None else _ops(args.ops)
            if args.threads is not None:
                torch.set_num_threads(args.threads)
            written = profile(
                args.model,
                args.device,
                args.out,
                ops=ops,
                quick=args.quick,
                cache=args.cache,
                cache_bytes=args.cache_bytes,
            )
            for path in written.values():
                sys.stdout.write(f"{path}\n")
        else:
            from edgetwin.kernels.fit import error_table, fit

            for folder in _profile_dirs(args.dir):
                result = fit(folder)
                sys.stdout.write(f"{folder / 'fit.json'}\n{error_table(result)}\n")
    except (_UsageError, ValueError, OSError, KeyError, json.JSONDecodeError) as exc:
        if debug:
            raise
        _error(str(exc))
        return 2
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:  # a bug, not bad input: still one line, and how to see more
        if debug:
            raise
        _error(
            f"internal error {type(exc).__name__}: {exc} (a bug in EdgeTwin: rerun with "
            "EDGETWIN_DEBUG=1 for the traceback and report it)"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
