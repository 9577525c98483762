"""The ``edgetwin`` command line: run, compare, sweep, serve, train, kernels, list.

Examples::

    edgetwin list
    edgetwin run nr_cell --policy prb=pf --policy power=equal --seed 3 --set cell.bandwidth_hz=40e6
    edgetwin compare scenarios/nr_cell.yaml --policies prb=pf,prb=rr,prb=maxrate --seeds 5
    edgetwin compare nr_cell --policies prb=pf+power=equal,prb=pf+power=waterfilling
    edgetwin sweep nr_cell --grid cell.bandwidth_hz=20e6,40e6 --policies prb=pf,prb=rr --seeds 4
    edgetwin serve --trace azure-conv --model llama-3.1-8b --hardware rtx4090 --out results/x
    edgetwin run scenarios/serving/azure_conv_serving.yaml
    edgetwin compare scenarios/serving/azure_conv_serving.yaml --policies serve=fcfs,serve=sjf
    edgetwin train ppo --control prb --steps 50000 --out runs/ppo/model.pt
    edgetwin run nr_cell --policy prb=ppo:runs/ppo/model.pt
    edgetwin run nr_cell --policy prb=pf:beta=0.99:initial_rate_bps=1e3

A policy is ``ID``, ``ID:PATH`` (a checkpoint, for ``ppo``) or ``ID:key=value[:key=value...]``
(keyword arguments of the policy's constructor, checked against it before anything runs).

Bad input (a field, type, range, policy id or path) prints one line ``edgetwin: error: ...``
on stderr and exits with status 2; no traceback (set ``EDGETWIN_DEBUG=1`` to get one).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from edgetwin.scenarios.argtypes import (
    UsageError,
    add_set_option,
    bounded_int,
    forget_given,
    internal_error_text,
    nonneg_float,
    one_line_warnings,
    pos_float,
    pos_int,
    refuse_repeated_options,
    seed_int,
)
from edgetwin.scenarios.errors import ScenarioError
from edgetwin.sim.compute.hardware import hardware_name

PROG = "edgetwin"

#: Exit status of a run stopped by SIGTERM (128 + 15, the shell convention).
SIGTERM_STATUS = 143

#: Most seeds one ``compare`` may run: each seed is one simulation per policy set and keeps its
#: per-run tables in memory until the comparison is summarized, so an unbounded count (a typo
#: such as ``--seeds 100000000``) exhausts memory (8 GB seen) instead of failing; 10 000 runs is
#: already days of wall time at the built-in scenarios' speed.
MAX_SEEDS = 10_000

#: Most worker processes of ``compare``: more than a few per core only adds memory and
#: start-up cost (each worker imports the simulator), and a huge count would fork-bomb.
MAX_WORKERS = 4 * (os.cpu_count() or 1)


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`UsageError` instead of printing usage.

    Why: argparse prints a 4–10 line usage block before its error; EdgeTwin answers every bad
    input in one line. Subparsers inherit the class (``add_subparsers`` defaults to it), so
    ``train``'s parsers from :mod:`edgetwin.agents.rl.cli` get it too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        refuse_repeated_options(self)  # --seed 1 --seed 2: one line, not "the last wins"

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse as argparse does, without the bookkeeping of repeated options."""
        ns, rest = super().parse_known_args(args, namespace)
        return forget_given(ns), rest

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        """Raise the message with where to read the (sub)command's usage.

        The line keeps the one prefix ``edgetwin: error:`` of every other error; the
        subcommand is named by the help hint (``see 'edgetwin run --help'``).
        """
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ----------------------------------------------------------------------------------------
# Argument parsing
# ----------------------------------------------------------------------------------------


def _seed_list(text: str) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]``; empty entries and more than :data:`MAX_SEEDS` are refused."""
    items = [s.strip() for s in text.split(",")]
    if not any(items):
        raise argparse.ArgumentTypeError("expected at least one seed, e.g. 0,1,2")
    if not all(items):
        raise argparse.ArgumentTypeError(f"empty entry in {text!r}; expected e.g. 0,1,2")
    if len(items) > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"at most {MAX_SEEDS} seeds, got {len(items)}")
    try:
        return [seed_int(s) for s in items]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} in {text!r}") from None


def _duration(text: str) -> float:
    """``--duration``: ``duration_s``, a finite number > 0 (``nan`` and ``inf`` refused)."""
    try:
        return pos_float(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"duration_s {exc}") from None


def _seed_count(text: str) -> int:
    """A number of seeds in 1..:data:`MAX_SEEDS`."""
    return bounded_int(text, 1, MAX_SEEDS)


def _workers(text: str) -> int:
    """A number of worker processes in 1..:data:`MAX_WORKERS`."""
    return bounded_int(text, 1, MAX_WORKERS)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="built-in scenario name (see 'edgetwin list') or YAML path")
    add_set_option(p)
    p.add_argument("--duration", type=_duration, metavar="S", help="simulated seconds (duration_s)")
    p.add_argument("--out", metavar="DIR", help="result directory (replaced atomically)")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    _add_progress(p)


def _add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )


def _add_sweep(sub: Any) -> None:
    swp = sub.add_parser(
        "sweep",
        help="run policy sets over a grid of scenario values and seeds (resumable)",
        description="Run every grid point x policy set x seed (common random numbers: one seed "
        "gives every set the same channels and arrivals). Each run is stored under DIR/runs/ "
        "by a hash of its resolved config, so a sweep started again runs only what is missing. "
        "Writes results.parquet (one row per run x metric), summary.csv (mean and 95 % CI), "
        "paired.csv (differences to --baseline, paired by seed) and plots/.",
    )
    _add_common(swp)
    for action in swp._actions:  # a sweep folder is resumed, not replaced
        if action.dest == "out":
            action.help = "sweep folder: new, empty, or an earlier sweep's (then resumed)"
    swp.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a grid axis: a dotted scenario field and its values, e.g. --grid "
        "cell.bandwidth_hz=20e6,40e6 (repeatable; the first axis is the plots' x axis)",
    )
    swp.add_argument(
        "--sweep",
        metavar="FILE",
        help="YAML sweep file with grid:, policies:, seeds:, baseline: (flags add to it)",
    )
    swp.add_argument(
        "--policies",
        metavar="SETS",
        help="comma-separated policy sets, as for compare, e.g. B0=prb=pf+power=equal,RR=prb=rr",
    )
    _add_seed_options(swp)
    swp.add_argument(
        "--baseline", metavar="NAME", help="policy set of the paired differences (default: first)"
    )
    swp.add_argument(
        "--backend",
        default="local",
        metavar="NAME",
        help="local (a process pool on this machine, default) or ray (Ray tasks: a local Ray, "
        "or the cluster at --address / RAY_ADDRESS; needs pip install 'edgetwin[ray]')",
    )
    swp.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster address, e.g. ray://HOST:10001 (--backend ray; default RAY_ADDRESS, "
        "else a local Ray started and shut down by the sweep)",
    )
    swp.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help=f"worker processes of the local backend (default 2, at most {MAX_WORKERS}); with "
        "ray, the local Ray's CPUs (default all) or the runs in flight on a cluster",
    )
    swp.set_defaults(func=_cmd_sweep)


def _add_serve(sub: Any) -> None:
    srv = sub.add_parser(
        "serve",
        help="replay a request trace through LLM server replicas (continuous batching)",
        description="Replay a request trace (CSV arrival_s,prompt_tokens,output_tokens, an Azure "
        "LLM 2023 CSV, a Mooncake JSONL, or the names azure-conv / azure-code) through vLLM-like "
        "replicas; writes "
        "requests.csv, summary.json and config.resolved.yaml to --out.",
    )
    srv.add_argument(
        "--trace", required=True, metavar="FILE|NAME", help="CSV, Mooncake JSONL or azure-conv"
    )
    srv.add_argument("--model", default="llama-3.1-8b", help="model id (default llama-3.1-8b)")
    srv.add_argument(
        "--hardware", default="rtx4090", help="a100, h100, rtx4090 or cpu (needs --profiles)"
    )
    srv.add_argument(
        "--profiles",
        metavar="DIR",
        help="table cost model from measured profiles: a folder (an EdgeTwin <hardware>/<model>/ "
        "tree, an LLMServingSim perf/<GPU>/<org>/<model>/<dtype>/ or a Vidur "
        "profiling/compute/<gpu>/<org>/<model>/ folder, or a folder above one; only it is used), "
        "'shipped' for the CPU profiles measured for this release, or 'public' for the shipped "
        "public profiles (default: roofline model)",
    )
    srv.add_argument(
        "--kv-blocks",
        type=pos_int,
        metavar="N",
        help="KV blocks per replica (default: from 0.9 x device memory minus weights)",
    )
    srv.add_argument("--block-size", type=pos_int, default=16, metavar="N")
    srv.add_argument("--max-num-seqs", type=pos_int, default=256, metavar="N")
    srv.add_argument("--max-num-batched-tokens", type=pos_int, default=8192, metavar="N")
    srv.add_argument("--chunked-prefill", action="store_true", help="Sarathi-style chunks")
    srv.add_argument(
        "--overhead-s", type=nonneg_float, default=0.0, metavar="S", help="per iteration"
    )
    srv.add_argument("--replicas", type=pos_int, default=1, metavar="R")
    srv.add_argument(
        "--router",
        default="least_outstanding",
        choices=["round_robin", "random", "least_outstanding", "least_kv"],
    )
    srv.add_argument(
        "--scheduler",
        metavar="ID",
        help="request scheduler of each replica: a 'serve' policy, e.g. sjf or serve/srpt "
        "(default: built-in FCFS; see `edgetwin list`)",
    )
    srv.add_argument("--ttft-slo", type=pos_float, metavar="S", help="TTFT SLO (s)")
    srv.add_argument("--tpot-slo", type=pos_float, metavar="S", help="TPOT SLO (s)")
    srv.add_argument("--max-requests", type=pos_int, metavar="N", help="first N requests only")
    srv.add_argument("--horizon", type=pos_float, metavar="S", help="stop at this simulated time")
    srv.add_argument("--seed", type=seed_int, default=0, help="seed (routing=random)")
    srv.add_argument("--name", default="serve", help="run name in summary.json")
    srv.add_argument("--out", metavar="DIR", help="result directory (replaced atomically)")
    _add_progress(srv)
    srv.set_defaults(func=_cmd_serve)


def _seed_range(config: Any, seeds: int | Sequence[int] | None) -> list[int]:
    """Explicit seeds as given, or N (default 3) seeds counted from the scenario's seed."""
    if seeds is not None and not isinstance(seeds, int):
        return list(seeds)
    n = 3 if seeds is None else seeds
    if not 1 <= n <= MAX_SEEDS:
        raise ScenarioError(f"seeds: expected a count in 1..{MAX_SEEDS}, got {n}")
    return list(range(config.seed, config.seed + n))


def _add_seed_options(parser: argparse.ArgumentParser) -> None:
    """``--seeds N`` or ``--seed-list S,S,...`` (compare and sweep)."""
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seeds",
        type=_seed_count,
        metavar="N",
        help=f"N seeds from the scenario's seed (default 3, at most {MAX_SEEDS})",
    )
    seeds.add_argument("--seed-list", type=_seed_list, metavar="S,S,...", help="explicit seeds")


def build_parser() -> argparse.ArgumentParser:
    """The ``edgetwin`` argument parser."""
    parser = CliParser(
        prog=PROG,
        description="EdgeTwin: discrete-event simulation of 5G NR cells and their policies.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run one scenario and write its results")
    _add_common(run)
    run.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="FAMILY=ID",
        help="policy of a decision family, once per family, e.g. --policy prb=pf --policy "
        "power=equal; keyword arguments as ID:key=value[:key=value], e.g. prb=pf:beta=0.99",
    )
    run.add_argument("--seed", type=seed_int, help="seed of the run (default: scenario's)")
    run.set_defaults(func=_cmd_run)

    cmp_ = sub.add_parser(
        "compare", help="compare policy sets on the same seeds (common random numbers)"
    )
    _add_common(cmp_)
    cmp_.add_argument(
        "--policies",
        required=True,
        metavar="SETS",
        help="comma-separated policy sets; '+' joins families within a set, an optional NAME= "
        "names it, e.g. prb=pf,prb=rr or B0=prb=pf+power=equal,WF=prb=pf+power=waterfilling; "
        "keyword arguments as ID:key=value[:key=value] in named sets, e.g. "
        "A=prb=pf:beta=0.9,B=prb=pf:beta=0.99",
    )
    _add_seed_options(cmp_)
    cmp_.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help=f"worker processes (default min(2, runs), at most {MAX_WORKERS})",
    )
    cmp_.set_defaults(func=_cmd_compare)

    _add_sweep(sub)
    _add_serve(sub)

    # The train parser imports no torch; its handlers import the trainers when they run.
    from edgetwin.agents.rl.cli import add_train_parser

    add_train_parser(sub)

    # A stub, so that `edgetwin --help` lists it: main() hands `kernels ...` to
    # edgetwin.kernels.cli before this parser runs (that parser imports torch lazily).
    sub.add_parser(
        "kernels",
        help="profile real LLM operators on this machine and fit cost models "
        "(see 'edgetwin kernels --help')",
        add_help=False,
    )

    lst = sub.add_parser("list", help="list registered policies and built-in scenarios")
    lst.set_defaults(func=_cmd_list)
    return parser


# ----------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------
def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 120)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.4e}"
    return str(value)


def _load(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> Any:
    from edgetwin.scenarios.load import load_scenario, parse_overrides

    overrides = parse_overrides(args.overrides)
    flags = dict(extra or {})
    if args.duration is not None:
        flags["duration_s"] = args.duration
    _merge_flags(overrides, flags)
    return load_scenario(args.scenario, overrides)


def _merge_flags(overrides: dict[str, Any], flags: dict[str, Any]) -> None:
    """Add the fields set by flags (``--duration``, ``--seed``, ``--policy``) to ``--set``'s.

    Raises:
        ScenarioError: A field set both ways (``--duration 1 --set duration_s=2``), where
            silently preferring one would be a guess.
    """
    for key, value in flags.items():
        if key in overrides:
            raise ScenarioError(
                f"{key} is set twice: by --set {key}={overrides[key]!r} and by a flag "
                f"({value!r}); give it once"
            )
        overrides[key] = value


def _progress(args: argparse.Namespace, config: Any) -> bool:
    if args.progress is not None:
        return bool(args.progress)
    if config.output.progress is not None:
        return bool(config.output.progress)
    return sys.stderr.isatty()


# ----------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from edgetwin.scenarios.run import HEADLINE_METRICS, default_out_dir, run_scenario

    raw = _serving_raw(args)
    if raw is not None:
        return _cmd_run_serving(args, raw)
    extra = {f"policies.{f}": name for f, name in _policy_options(args.policy).items()}
    if args.seed is not None:
        extra["seed"] = args.seed
    config = _load(args, extra)
    out = _out(args)
    if out is None:
        out = default_out_dir(config, "run", config.seed)
    notes: list[str] = []
    result = run_scenario(
        config,
        out_dir=out,
        progress=_progress(args, config),
        plots=False if args.no_plots else None,
        notify=notes.append,
    )
    s = result.summary
    refs = config.policies.as_dict()
    policies = ", ".join(f"{f}={refs[f].label}" for f in config.families)
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for metric in (m for m in HEADLINE_METRICS if m in s):
        table.add_row(metric, _fmt(s[metric]))
    console = _console()
    console.print(f"{config.name} · seed {config.seed} · {config.duration_s:g} s · {policies}")
    console.print(table)
    console.print(f"wall time {s.get('wall_s', float('nan')):.2f} s; results: {out}")
    _print_notes(console, notes)
    return 0


def _policy_options(items: Sequence[str]) -> dict[str, str]:
    """``["prb=pf", "power=equal"]`` → ``{"prb": "pf", "power": "equal"}``.

    Raises:
        ScenarioError: For an item that is not ``FAMILY=ID``, or a family given twice (which
            would otherwise silently keep the last one).
    """
    out: dict[str, str] = {}
    for item in items:
        family, sep, name = (x.strip() for x in item.partition("="))
        if not sep or not family or not name:
            raise ScenarioError(
                f"--policy {item!r} must look like FAMILY=ID[:key=value...], e.g. prb=pf or "
                f"prb=pf:beta=0.99"
            )
        if family in out:
            raise ScenarioError(
                f"--policy gives the family {family!r} twice ({out[family]!r} and {name!r}); "
                f"give each family once"
            )
        out[family] = name
    return out


def _serving_raw(args: argparse.Namespace) -> dict[str, Any] | None:
    """The parsed YAML of ``args.scenario`` when it is a serving scenario, else ``None``."""
    from edgetwin.scenarios.load import parse_yaml
    from edgetwin.scenarios.serving_schema import is_serving_scenario

    path = Path(args.scenario).expanduser()
    if not path.is_file():
        return None
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except Exception:  # the regular loader reports unreadable files and YAML errors
        return None
    return raw if is_serving_scenario(raw) else None


def _out(args: argparse.Namespace) -> Path | str | None:
    """``--out`` as given, ``None`` when absent.

    ``''`` is kept as it is (``Path('')`` would be ``.``), so that the output check refuses it
    instead of writing into the working directory.
    """
    if args.out is None:
        return None
    return Path(args.out) if args.out else ""


def _print_notes(console: Any, notes: Sequence[str]) -> None:
    """Lines the result writer reported (where a previous result went, runs reused)."""
    for line in notes:
        console.print(line)


def _run_serving(
    config: Any, out: Path | str, scheduler: str | None = None, progress: bool = False
) -> int:
    from rich.table import Table

    from edgetwin.scenarios.serve import run_serving, summary_rows

    notes: list[str] = []
    _, summary = run_serving(
        config, out, scheduler=scheduler, notify=notes.append, progress=progress
    )
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, value in summary_rows(summary):
        table.add_row(label, value)
    console = _console()
    s = config.serving
    console.print(
        f"{config.name} · {s.model} on {hardware_name(s.hardware)} x{s.replicas} · "
        f"cost model {summary['cost_model']['kind']} · seed {config.seed}"
    )
    console.print(table)
    console.print(
        f"simulated {summary['inputs']['n_requests']} requests in {summary['wall_s']:.2f} s "
        f"wall; results: {out}"
    )
    _print_notes(console, notes)
    return 0


def _cmd_run_serving(args: argparse.Namespace, raw: dict[str, Any]) -> int:
    from edgetwin.scenarios.load import apply_overrides, parse_overrides
    from edgetwin.scenarios.serving_schema import validate_serving

    if args.policy:
        raise ScenarioError("--policy does not apply to a serving scenario")
    overrides = parse_overrides(args.overrides)
    flags: dict[str, Any] = {}
    if args.seed is not None:
        flags["seed"] = args.seed
    if args.duration is not None:
        flags["horizon_s"] = args.duration
    _merge_flags(overrides, flags)
    config = validate_serving(apply_overrides(raw, overrides), source=repr(args.scenario))
    out = _out(args)
    if out is None:
        out = Path(config.output.dir or Path("results") / f"{config.name}_serve_seed{config.seed}")
    return _run_serving(config, out, progress=_progress(args, config))


def _cmd_serve(args: argparse.Namespace) -> int:
    from edgetwin.scenarios.serving_schema import validate_serving

    raw = {
        "name": args.name,
        "seed": args.seed,
        "horizon_s": args.horizon,
        "serving": {
            "model": args.model,
            "hardware": args.hardware,
            "profiles": args.profiles,
            "replicas": args.replicas,
            "router": args.router,
            "max_num_seqs": args.max_num_seqs,
            "max_num_batched_tokens": args.max_num_batched_tokens,
            "block_size": args.block_size,
            "kv_blocks": args.kv_blocks,
            "chunked_prefill": args.chunked_prefill,
            "overhead_s": args.overhead_s,
            "ttft_slo_s": args.ttft_slo,
            "tpot_slo_s": args.tpot_slo,
        },
        "workload": {"trace": args.trace, "max_requests": args.max_requests},
    }
    config = validate_serving(raw, source="from the command line")
    out = _out(args)
    if out is None:
        out = Path("results") / f"serve_{args.model}_{args.hardware}_seed{args.seed}"
    return _run_serving(config, out, scheduler=args.scheduler, progress=_progress(args, config))


def _check_policy_sets(text: str) -> None:
    """Refuse empty entries of ``--policies`` (``prb=pf,,prb=rr``), which would be skipped.

    Raises:
        ScenarioError: Naming the empty entry's position.
    """
    items = [s.strip() for s in text.split(",")]
    empty = [str(i + 1) for i, item in enumerate(items) if not item]
    if empty:
        raise ScenarioError(
            f"--policies {text!r} has an empty entry (number {', '.join(empty)}); expected "
            f"comma-separated policy sets, e.g. prb=pf,prb=rr"
        )
    for item in items:
        if any(not part.strip() for part in item.split("+")):
            raise ScenarioError(
                f"--policies entry {item!r} has an empty part around '+'; expected e.g. "
                f"prb=pf+power=equal"
            )


def _cmd_compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    from edgetwin.scenarios.run import (
        HEADLINE_METRICS,
        compare,
        default_out_dir,
        parse_named_policy_sets,
        summarize_comparison,
    )

    raw = _serving_raw(args)
    if raw is not None:
        return _cmd_compare_serving(args, raw)
    _check_policy_sets(args.policies)
    names, sets = parse_named_policy_sets(args.policies)
    config = _load(args)
    seeds = _seed_range(config, args.seed_list if args.seed_list is not None else args.seeds)
    out = _out(args)
    if out is None:
        out = default_out_dir(config, "compare")
    notes: list[str] = []
    runs = compare(
        config,
        sets,
        seeds,
        out_dir=out,
        workers=args.workers,
        progress=_progress(args, config),
        plots=False if args.no_plots else None,
        labels=names,
        notify=notes.append,
    )
    summary = summarize_comparison(runs)
    labels = list(dict.fromkeys(runs["policy_set"]))
    table = Table()
    table.add_column("metric")
    for label in labels:
        table.add_column(label, justify="right")
    by_key: dict[tuple[str, str], tuple[float, float]] = {
        (str(r["policy_set"]), str(r["metric"])): (float(r["mean"]), float(r["ci95_half_width"]))
        for r in summary.to_dict("records")
    }
    for metric in (m for m in HEADLINE_METRICS if (labels[0], m) in by_key):
        cells = []
        for label in labels:
            mean, half = by_key[(label, metric)]
            if math.isfinite(half) and half <= 1e-9 * abs(mean):
                half = 0.0  # rounding noise of identical values
            ci = f" ± {_fmt(half)}" if math.isfinite(half) else ""
            cells.append(f"{_fmt(mean)}{ci}")
        table.add_row(metric, *cells)
    console = _console()
    seeds_text = ", ".join(map(str, seeds))
    console.print(f"{config.name} · {config.duration_s:g} s · seeds {seeds_text} · mean ± 95 % CI")
    console.print(table)
    wall = float(runs["wall_s"].sum()) if "wall_s" in runs else float("nan")
    console.print(f"{len(runs)} runs, simulation wall time {wall:.2f} s; results: {out}")
    _print_notes(console, notes)
    return 0


def _cmd_compare_serving(args: argparse.Namespace, raw: dict[str, Any]) -> int:
    """``compare`` of a serving scenario: request schedulers (``serve=...``) on common seeds."""
    from rich.table import Table

    from edgetwin.scenarios.load import apply_overrides, parse_overrides
    from edgetwin.scenarios.run import parse_named_policy_sets
    from edgetwin.scenarios.serve_compare import SERVING_METRICS, compare_serving
    from edgetwin.scenarios.serving_schema import validate_serving

    _check_policy_sets(args.policies)
    names, sets = parse_named_policy_sets(args.policies)
    overrides = parse_overrides(args.overrides)
    flags: dict[str, Any] = {}
    if args.duration is not None:
        flags["horizon_s"] = args.duration
    _merge_flags(overrides, flags)
    config = validate_serving(apply_overrides(raw, overrides), source=repr(args.scenario))
    seeds = _seed_range(config, args.seed_list if args.seed_list is not None else args.seeds)
    out = _out(args)
    if out is None:
        out = Path(config.output.dir or Path("results") / f"{config.name}_compare")
    notes: list[str] = []
    result = compare_serving(
        config,
        sets,
        seeds,
        out,
        workers=args.workers,
        labels=names,
        progress=_progress(args, config),
        notify=notes.append,
    )
    labels = list(dict.fromkeys(result.runs["policy_set"]))
    others = labels[1:]

    def cell(mean: float, half: float) -> str:
        if math.isfinite(half) and half <= 1e-9 * abs(mean):
            half = 0.0  # rounding noise of identical values
        return _fmt(mean) + (f" ± {_fmt(half)}" if math.isfinite(half) else "")

    means = {
        (str(r["policy_set"]), str(r["metric"])): cell(r["mean"], r["ci95_half_width"])
        for r in result.summary.to_dict("records")
    }
    diffs = {
        (str(r["policy_set"]), str(r["metric"])): cell(r["mean_diff"], r["ci95_half_width"])
        for r in result.paired.to_dict("records")
    }
    table = Table()
    table.add_column("metric")
    for label in labels:
        table.add_column(label, justify="right")
    for label in others:
        table.add_column(f"Δ {label}", justify="right")
    for metric in (m for m in SERVING_METRICS if (labels[0], m) in means):
        row = [means.get((lbl, metric), "n/a") for lbl in labels]
        row += [diffs.get((lbl, metric), "n/a") for lbl in others]
        table.add_row(metric, *row)
    s = config.serving
    console = _console()
    console.print(
        f"{config.name} · {s.model} on {hardware_name(s.hardware)} x{s.replicas} · seeds "
        f"{', '.join(map(str, seeds))} · mean ± 95 % CI (times in s)"
        + (f"; Δ: paired difference to {result.baseline}" if others else "")
    )
    console.print(table)
    wall = float(result.runs["wall_s"].sum())
    console.print(f"{len(result.runs)} runs, simulation wall time {wall:.2f} s; results: {out}")
    if config.workload.trace is not None and len(seeds) > 1:
        varies = "only the routing draws" if s.replicas > 1 and s.router == "random" else "nothing"
        notes.append(f"note: a trace replays the same requests on every seed ({varies} varies)")
    _print_notes(console, notes)
    return 0


def _sweep_inputs(args: argparse.Namespace) -> tuple[dict[str, list[Any]], Any, Any, Any]:
    """Grid, policy sets, seeds and baseline from ``--sweep FILE`` and the flags.

    Raises:
        ScenarioError: One thing given both in the file and by a flag, or missing in both.
    """
    from edgetwin.scenarios.run import parse_named_policy_sets
    from edgetwin.scenarios.sweep import parse_grid_option
    from edgetwin.scenarios.sweep_schema import SweepFile, load_sweep_file

    spec = load_sweep_file(args.sweep) if args.sweep else SweepFile()
    grid: dict[str, list[Any]] = dict(spec.grid)
    for text in args.grid:
        key, values = parse_grid_option(text)
        if key in grid:
            where = "the --sweep file and --grid" if key in spec.grid else "--grid twice"
            raise ScenarioError(f"grid axis {key} is given by {where}; give it once")
        grid[key] = values
    if args.policies is not None and spec.policies:
        raise ScenarioError("policy sets are given by the --sweep file and --policies; give once")
    if args.policies is not None:
        _check_policy_sets(args.policies)
        names, sets = parse_named_policy_sets(args.policies)
        policy_sets: list[tuple[str | None, Any]] = list(zip(names, sets, strict=True))
    elif spec.policies:
        policy_sets = []
        for name, value in spec.policies.items():
            if isinstance(value, str):
                _check_policy_sets(value)
                _, (given, *rest) = parse_named_policy_sets(value)
                if rest:
                    raise ScenarioError(f"sweep file: policies.{name} holds more than one set")
            else:
                given = dict(value)
            policy_sets.append((name, given))
    else:
        raise ScenarioError(
            "no policy sets: give --policies, e.g. B0=prb=pf+power=equal,RR=prb=rr "
            "(or policies: in the --sweep file)"
        )
    given_seeds = args.seeds is not None or args.seed_list is not None
    if given_seeds and spec.seeds is not None:
        raise ScenarioError("seeds are given by the --sweep file and a flag; give them once")
    if args.baseline is not None and spec.baseline is not None:
        raise ScenarioError("the baseline is given by the --sweep file and --baseline; give once")
    seeds = args.seed_list if args.seed_list is not None else args.seeds
    seeds = spec.seeds if seeds is None else seeds
    return grid, policy_sets, seeds, args.baseline or spec.baseline


def _cmd_sweep(args: argparse.Namespace) -> int:
    from edgetwin.scenarios.run import default_out_dir
    from edgetwin.scenarios.sweep import make_backend, plan_sweep, sweep

    backend = make_backend(args.backend, args.workers, args.address)  # ray: fail at once
    grid, policy_sets, seeds, baseline = _sweep_inputs(args)
    config = _load(args)
    seeds = _seed_range(config, seeds)
    plan = plan_sweep(config, grid, policy_sets, seeds, baseline)
    out = _out(args)
    if out is None:
        out = default_out_dir(config, "sweep")
    notes: list[str] = []
    tidy = sweep(
        plan,
        out,
        backend,
        progress=_progress(args, config),
        plots=False if args.no_plots else None,
        notify=notes.append,
    )
    console = _console()
    _print_notes(console, notes)
    axes = " x ".join(f"{a} ({len(v)})" for a, v in zip(plan.axes, plan.values, strict=True))
    console.print(
        f"{config.name} · {config.duration_s:g} s · {axes} · {len(plan.sets)} policy sets · "
        f"{len(plan.seeds)} seeds = {len(plan.runs)} runs, {tidy['metric'].nunique()} metrics"
    )
    base = f"; paired differences against {plan.baseline}" if len(plan.sets) > 1 else ""
    console.print(f"results: {out} (results.parquet, summary.csv{base})")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from edgetwin.agents import pprint_policies
    from edgetwin.scenarios.load import builtin_scenarios, scenario_descriptions

    print("Policies (give the id, or within its family the short name: --policy prb=pf)")
    print(pprint_policies() or "  (none registered)")
    print()
    print("Built-in scenarios (give the name, or a path to a YAML file)")
    descriptions = scenario_descriptions()
    width = max((len(n) for n in descriptions), default=0)
    for name in builtin_scenarios():
        print(f"{name:<{width}}  {descriptions.get(name, '')}")
    return 0


# ----------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------
def _error(message: str) -> None:
    """Print ``message`` as the one line ``edgetwin: error: ...`` (whitespace folded)."""
    line = " ".join(str(message).split())
    print(f"{PROG}: error: {line}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``edgetwin`` command line; returns the exit status (0 ok, 2 bad input)."""
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["kernels"]:  # lazy: only `edgetwin kernels ...` imports torch
        from edgetwin.kernels.cli import main as kernels_main

        return kernels_main(raw[1:])
    from edgetwin.agents.registry import PolicyRegistryError

    parser = build_parser()
    try:
        args = parser.parse_args(raw)
    except UsageError as exc:
        _error(str(exc))
        return 2
    except SystemExit as exc:  # --help printed its text
        return int(exc.code) if isinstance(exc.code, int) else 0
    debug = os.environ.get("EDGETWIN_DEBUG", "") not in ("", "0")
    from edgetwin.sim.radio.channel_raytraced import RayTracingUnavailableError

    try:
        with one_line_warnings(PROG):
            status: int = args.func(args)
    except (ScenarioError, PolicyRegistryError, ValueError, RayTracingUnavailableError) as exc:
        if debug:
            raise
        _error(str(exc))
        return 2
    except OSError as exc:  # a file or folder the user named could not be read or written
        if debug:
            raise
        _error(_os_error_text(exc))
        return 2
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except SystemExit as exc:
        if exc.code == SIGTERM_STATUS:  # the result writers turn SIGTERM into this exit
            _error("terminated")
        raise
    except Exception as exc:  # a bug, not bad input: still one line, and how to see more
        if debug:
            raise
        _error(internal_error_text(exc))
        return 1
    return status


def _os_error_text(exc: OSError) -> str:
    """``[Errno 13] Permission denied: 'x'`` → ``cannot write or read 'x': Permission denied``."""
    name = exc.filename if exc.filename is not None else ""
    why = exc.strerror or str(exc)
    return f"cannot access {str(name)!r}: {why}" if name else why


if __name__ == "__main__":
    sys.exit(main())
