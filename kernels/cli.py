"""``edgetwin kernels``: profile operators of a model and fit per-operator predictors.

Examples::

    edgetwin kernels profile --model smollm-135m --device cpu --out kernels/profiles
    edgetwin kernels profile --model smollm-135m --device cpu --out /tmp/p --quick --ops linear_qkv
    edgetwin kernels profile --model smollm-135m --out /tmp/p --cache hot   # operands cached
    edgetwin kernels profile --model smollm-135m --out /tmp/p --framework torch --ops decoder_layer
    edgetwin kernels fit kernels/profiles/cpu/smollm-135m
    edgetwin kernels validate --model smollm-135m --device cpu --quick --threads 1

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

from edgetwin.scenarios.argtypes import (
    bounded_int,
    forget_given,
    internal_error_text,
    one_line_warnings,
    refuse_repeated_options,
)

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


#: Grid bounds of ``validate`` (the same as ``edgetwin.kernels.validate.MAX_BATCH`` /
#: ``MAX_CONTEXT``; kept here so that a bad list fails before torch is imported).
VALIDATE_MAX_BATCH = 1024
VALIDATE_MAX_CONTEXT = 32768


def _int_list(text: str, top: int) -> list[int]:
    """``"1,4,16"``: distinct integers in ``1..top``, comma-separated."""
    what = f"comma-separated distinct integers in 1..{top}"
    values: list[int] = []
    for item in text.split(","):
        try:
            value = int(item.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not 1 <= value <= top:
            where = "" if item.strip() == text.strip() else f" in {text!r}"
            raise argparse.ArgumentTypeError(f"expected {what}, got {item.strip()!r}{where}")
        if value in values:
            raise argparse.ArgumentTypeError(
                f"expected {what}, got {value} twice in {text!r}; give each value once"
            )
        values.append(value)
    return values


def _batches(text: str) -> list[int]:
    return _int_list(text, VALIDATE_MAX_BATCH)


def _contexts(text: str) -> list[int]:
    return _int_list(text, VALIDATE_MAX_CONTEXT)


def _repeats(text: str) -> int:
    return bounded_int(text, 1, 1000)


def _prefill_tokens(text: str) -> int:
    return bounded_int(text, 1, VALIDATE_MAX_BATCH * VALIDATE_MAX_CONTEXT)


def _out_file(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file path, got ''")
    return Path(text)


def _add_validate(sub: Any) -> None:
    v = sub.add_parser(
        "validate",
        help="time a real model (random weights) against the profiles' prediction",
        description="Build a Hugging Face Llama model of the model's dimensions (random "
        "weights), time decode steps and prefills over a batch x context grid, and print "
        "measured vs predicted (the table cost model of the profiles) with the error per cell. "
        "Needs transformers: pip install 'edgetwin[validate]'.",
    )
    v.add_argument("--model", required=True, help="model id, e.g. smollm-135m")
    v.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    v.add_argument(
        "--profiles",
        default="shipped",
        help="profile root holding <device>/<model>/, or 'shipped' (default: the profiles "
        "shipped with EdgeTwin)",
    )
    v.add_argument(
        "--batch",
        type=_batches,
        default=None,
        metavar="B,B,...",
        help="batch sizes (default 1,4,16)",
    )
    v.add_argument(
        "--context",
        type=_contexts,
        default=None,
        metavar="C,C,...",
        help=f"cached tokens of a decode step / tokens of a prefill, at most "
        f"{VALIDATE_MAX_CONTEXT} (default 128,512,2048)",
    )
    v.add_argument(
        "--quick",
        action="store_true",
        help="3 repeats, 1 warm-up call, prefill cells above 2048 tokens skipped",
    )
    v.add_argument(
        "--threads",
        type=_threads,
        default=None,
        help=f"torch CPU threads, 1..{MAX_THREADS} (default torch's; use the profiles')",
    )
    v.add_argument(
        "--repeats", type=_repeats, default=None, help="timed calls per cell (default 5, quick 3)"
    )
    v.add_argument(
        "--max-prefill-tokens",
        type=_prefill_tokens,
        default=None,
        metavar="N",
        help="skip prefill cells of more than N tokens (default: 2048 with --quick, else none)",
    )
    v.add_argument("--out", type=_out_file, default=None, help="write the table as CSV here")


def _run_validate(args: argparse.Namespace) -> None:
    import torch

    from edgetwin.kernels import validate as val
    from edgetwin.sim.fsio import check_creatable

    if args.out is not None:
        if args.out.is_dir():
            raise ValueError(f"--out {str(args.out)!r} is a folder; give a file path (.csv)")
        check_creatable(args.out.parent, "--out folder")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def start(info: dict[str, Any]) -> None:
        for line in val.format_preamble(info):
            say(line)
        say(val.HEADER)

    try:
        df = val.validate(
            args.model,
            args.device,
            args.profiles,
            batches=args.batch or val.DEFAULT_BATCHES,
            contexts=args.context or val.DEFAULT_CONTEXTS,
            quick=args.quick,
            repeats=args.repeats,
            max_prefill_tokens=args.max_prefill_tokens,
            on_start=start,
            on_cell=lambda cell: say(val.format_cell(cell)),
        )
    except val.TransformersMissingError as exc:  # the optional extra: bad setup, not a bug
        raise _UsageError(str(exc)) from None
    for line in val.format_summary(df):
        say(line)
    if args.out is not None:
        say(f"wrote {val.write_csv(df, args.out)}")


def build_parser() -> argparse.ArgumentParser:
    """Parser with the ``profile``, ``fit`` and ``validate`` subcommands."""
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
    p.add_argument(
        "--framework",
        choices=["auto", "transformers", "torch"],
        default="auto",
        help="framework of the whole-layer operator decoder_layer: transformers (Hugging Face "
        "LlamaDecoderLayer + DynamicCache), torch (the profiled operators, KV written in place "
        "as a paged engine), auto (default: transformers when installed, else torch)",
    )
    f = sub.add_parser("fit", help="fit per-operator predictors of profile folders")
    f.add_argument("dir", type=Path, help="a <device>/<model> folder, or a root holding them")
    _add_validate(sub)
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
    """Run ``edgetwin kernels``; returns the exit status (0 ok, 2 bad input).

    Warnings are one line ``edgetwin kernels: warning: ...``, as errors are.
    """
    with one_line_warnings(PROG):
        return _run(list(sys.argv[1:] if argv is None else argv))


def _run(args_list: list[str]) -> int:
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
            from edgetwin.kernels.hf import TransformersMissingError

            try:
                written = profile(
                    args.model,
                    args.device,
                    args.out,
                    ops=ops,
                    quick=args.quick,
                    cache=args.cache,
                    cache_bytes=args.cache_bytes,
                    framework=args.framework,
                )
            except TransformersMissingError as exc:  # the optional extra: bad setup
                raise _UsageError(f"--framework transformers: {exc}") from None
            for path in written.values():
                sys.stdout.write(f"{path}\n")
        elif args.command == "validate":
            _run_validate(args)
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
        _error(internal_error_text(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
