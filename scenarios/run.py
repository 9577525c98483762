"""Runs, replications with common random numbers, and atomic result writing.

* :func:`run_scenario` runs one scenario (optionally writing a result directory).
* :func:`compare` runs every policy set on the same seeds — hence the same channels, arrivals
  and HARQ draws (common random numbers, since every stream derives from the seed) — serially
  or in a process pool, with identical results either way.

Every result directory is assembled as a temporary directory next to its target and renamed
into place at the end; files inside are written to a temporary name and ``os.replace``-d. A
failure (SIGTERM included) therefore leaves nothing half-written, and a result directory already
there survives. Nothing a user made is lost: the marker file lists what EdgeTwin wrote, only
those files are replaced, a user's other files are carried into the new result (see
:func:`atomic_dir`), and a path that is not EdgeTwin's is refused before anything runs
(:func:`check_output_dir`). A comparison caches each finished run in ``NAME.partial/<key>`` (key:
hash of the resolved config, label, plots flag and EdgeTwin version), so a killed ``compare``
rerun with the same arguments resumes; the cache is removed once the result is in place.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgetwin.scenarios.builder import FAMILIES, PolicyLike, build, policy_label, policy_plan
from edgetwin.scenarios.load import dump_yaml
from edgetwin.scenarios.schema import PolicyRef, ScenarioConfig
from edgetwin.sim.fsio import check_creatable
from edgetwin.sim.metrics.summary import RunResult
from edgetwin.sim.rng import MAX_SEED

__all__ = [
    "HEADLINE_METRICS",
    "atomic_dir",
    "check_output_dir",
    "compare",
    "default_out_dir",
    "mean_ci",
    "metric_values",
    "parse_named_policy_sets",
    "parse_policy_sets",
    "policy_set_label",
    "resolved_config",
    "run_once",
    "run_scenario",
    "summarize_comparison",
    "write_run",
]

#: Headline metrics, in display order (those a run reports are shown).
HEADLINE_METRICS: tuple[str, ...] = (
    "cell_throughput_mbps",
    "spectral_efficiency_bps_per_hz",
    "ue_throughput_mean_mbps",
    "ue_throughput_median_mbps",
    "ue_throughput_p5_mbps",
    "jain_index",
    "bler",
    "mean_mcs",
    "prb_utilization",
    # edge-cloud scenarios: measured at the UE (sim/system.py)
    "ttft_ue_p50_s",
    "ttft_ue_p90_s",
    "tpot_ue_mean_s",
    "e2e_ue_p90_s",
    "slo_attainment",
    "goodput_rps",
    "share_local",
    "share_edge",
    "share_cloud",
    "utilization_edge",
    "utilization_cloud",
)

#: Summary entries that describe the run rather than measure the policy.
_NOT_METRICS = frozenset({"seed", "horizon_s", "wall_s"})

#: File marking a directory as an EdgeTwin result (only such directories are ever replaced).
MARKER = ".edgetwin-result"

#: File marking a directory as the resume cache of a comparison (``NAME.partial``).
PARTIAL_MARKER = ".edgetwin-partial"

#: The tables a run writes as parquet (others the components report are written too).
TABLES: tuple[str, ...] = ("ue", "slot", "mcs")


# ----------------------------------------------------------------------------------------
# Atomic writing
# ----------------------------------------------------------------------------------------
def _check_replaceable(target: Path) -> None:
    """Refuse a ``target`` that EdgeTwin may not replace (a file, or a directory not its own)."""
    if not target.exists():
        return
    if not target.is_dir():
        raise ValueError(f"output path {str(target)!r} exists and is not a directory")
    if (target / MARKER).exists() or not any(target.iterdir()):
        return
    raise ValueError(
        f"output directory {str(target)!r} exists and is not an EdgeTwin result directory "
        f"(no {MARKER} file); refusing to replace it: choose another --out"
    )


def check_output_dir(path: str | Path) -> Path:
    """Check, before anything is simulated, that a result directory can be written at ``path``.

    Checking first matters because a run can take hours: a bad ``--out`` must fail in one line
    at once, not with a traceback after the simulation.

    Returns:
        The absolute path.

    Raises:
        ValueError: One line for an empty path, a path component that is a file, a parent that
            cannot be written, or a target that is a file or a non-EdgeTwin directory.
    """
    if not str(path).strip():
        raise ValueError("output directory is an empty string (--out ''); give a directory path")
    target = Path(os.path.abspath(Path(path).expanduser()))  # '..' folded, as the OS will
    here = Path.cwd().resolve()
    if target.resolve() == here or target.resolve() in here.parents:
        raise ValueError(
            f"output directory {str(path)!r} is the current directory or holds it; replacing it "
            "would move the folder you are working in: give a new folder, e.g. results/run1"
        )
    check_creatable(target.parent, "output directory")
    _check_replaceable(target)
    return target


def _manifest(folder: Path) -> list[str]:
    """Relative paths of the files under ``folder`` (what EdgeTwin wrote there)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def _written_by_edgetwin(folder: Path) -> set[str] | None:
    """The files the marker of ``folder`` lists; ``None`` for a marker without a manifest.

    A marker of an older EdgeTwin holds no list: all its files count as EdgeTwin's (as before).
    """
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    return set(files) if isinstance(files, list) else None


def _user_entries(old: Path) -> list[str]:
    """Top-most entries under ``old`` that EdgeTwin did not write (per its manifest)."""
    written = _written_by_edgetwin(old)
    if written is None:
        return []
    dirs = {str(Path(f).parent) for f in written} | {
        str(q) for f in written for q in Path(f).parents
    }
    found: list[str] = []

    def walk(folder: Path) -> None:
        for p in sorted(folder.iterdir()):
            rel = str(p.relative_to(old))
            if rel == MARKER or rel in written:
                continue
            if p.is_dir() and not p.is_symlink() and rel in dirs:
                walk(p)
            else:
                found.append(rel)

    walk(old)
    return found


def _carry(old: Path, new: Path, entries: Sequence[str]) -> list[str]:
    """Move the user's ``entries`` from ``old`` into ``new``; returns those that clashed.

    A user's file whose name the new result also writes stays in ``old`` (never overwritten).
    """
    clashed = []
    for rel in entries:
        dest = new / rel
        if dest.exists() or dest.is_symlink():
            clashed.append(rel)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(old / rel, dest)
    return clashed


def _normal_mode(folder: Path) -> None:
    """Give ``folder`` the mode a plain ``mkdir`` would (``mkdtemp`` makes 0700)."""
    umask = os.umask(0)  # reading the umask needs setting it; restored at once
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` in the main thread, so cleanup runs as on Ctrl-C.

    Only when SIGTERM has its default action (a handler of the caller is respected); the
    previous handler is restored on exit.
    """
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def atomic_dir(
    target: str | Path, on_replaced: Callable[[str], None] | None = None
) -> Iterator[Path]:
    """Build a directory aside and move it into place at the end.

    Yields a temporary directory ``.NAME.*.tmp`` next to ``target``. On success it replaces
    ``target`` (an existing EdgeTwin result directory, or an empty one) and gets the normal
    mode (0777 minus the umask); the marker file lists the files EdgeTwin wrote (a manifest).
    The replaced result is kept as ``NAME.prev`` (see :func:`_place`; ``on_replaced`` is told
    where). Files a user added to it (not in its manifest) are **carried** into the new
    directory; one whose name the new result also writes stays in ``NAME.prev`` — nothing a
    user made is deleted. On any exception, SIGTERM included, the temporary directory is
    removed and ``target`` is left exactly as it was.

    Args:
        target: The result directory.
        on_replaced: Called with one line saying where a replaced result went.

    Raises:
        ValueError: If ``target`` exists and is not an EdgeTwin result directory, or cannot be
            written (see :func:`check_output_dir`).
    """
    target = check_output_dir(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        with _sigterm_raises():
            yield tmp
            manifest = {"format": "edgetwin-result/1", "files": _manifest(tmp)}
            (tmp / MARKER).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
            _normal_mode(tmp)
            _check_replaceable(target)
            note = _place(tmp, target)
        if note and on_replaced:
            on_replaced(note)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _place(tmp: Path, target: Path) -> str | None:
    """Move ``tmp`` to ``target``; returns a line saying where a replaced result went.

    The replaced result becomes ``NAME.prev`` (one generation is kept, like ``mv --backup``):
    an older ``NAME.prev`` holding only EdgeTwin's files gives way to it, one holding a user's
    files is kept and the new backup takes the next free ``NAME.prev.N``.
    """
    if not target.exists():
        os.replace(tmp, target)
        return None
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    os.replace(target, old)
    entries = _user_entries(old)
    try:
        clashed = _carry(old, tmp, entries)
        os.replace(tmp, target)
    except BaseException:
        _carry(tmp, old, [e for e in entries if (tmp / e).exists()])
        os.replace(old, target)
        raise
    prev = _backup_name(target)
    os.replace(old, prev)
    line = f"the previous result is now {prev}"
    if clashed:
        line += f" (with your {', '.join(clashed)}: the new result writes files of those names)"
    carried = [e for e in entries if e not in clashed]
    if carried:
        line += f"; carried your {', '.join(carried)} into {target}"
    return line


def _backup_name(target: Path) -> Path:
    """``NAME.prev`` for the replaced result, clearing an older one that is all EdgeTwin's."""
    prev = target.with_name(target.name + ".prev")
    owned = prev.is_dir() and not prev.is_symlink() and (prev / MARKER).is_file()
    if owned and not _user_entries(prev):
        shutil.rmtree(prev)
    return _free_name(prev)


def _free_name(path: Path) -> Path:
    """``path``, or ``path.N`` for the first N not taken (a previous ``.prev`` is never lost)."""
    n = 1
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{n}")
        n += 1
    return candidate


def _write_text(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(text, encoding="utf-8")
    os.replace(part, path)


def _write_table(df: pd.DataFrame, path: Path, csv: bool = False) -> None:
    part = path.with_name(path.name + ".part")
    df.to_parquet(part, index=False)
    os.replace(part, path)
    if csv:
        _write_text(path.with_suffix(".csv"), df.to_csv(index=False))


def _jsonable(value: Any) -> Any:
    """Plain JSON data: numpy scalars → Python, NaN/inf → None, mappings and sequences walked."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------------------
@functools.cache
def versions() -> dict[str, str]:
    """Versions of Python and the packages that determine results."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("edgetwin", "numpy", "simpy", "scipy", "pandas", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


@functools.cache
def git_commit() -> str | None:
    """The source tree's git commit (``+dirty`` when modified), or ``None`` outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


# ----------------------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------------------
def resolved_config(
    config: ScenarioConfig, plan: Mapping[str, PolicyLike], seed: int
) -> ScenarioConfig:
    """``config`` as actually run: the run's seed and the registered policies in the plan.

    Families driven by policy objects (or detached) keep the scenario's entry; ``summary.json``
    names what really drove them.
    """
    refs = {f: v.model_dump() for f, v in plan.items() if isinstance(v, PolicyRef)}
    data = config.model_dump()
    data["seed"] = int(seed)
    data["policies"] = {**data["policies"], **refs}
    return ScenarioConfig.model_validate(data)


def default_out_dir(config: ScenarioConfig, kind: str, seed: int | None = None) -> Path:
    """Where results go by default.

    ``output.dir`` if set, else ``results/<name>_run_seed<seed>`` for a run and
    ``results/<name>_<kind>`` otherwise (``results/<name>_compare``).
    """
    if config.output.dir:
        return Path(config.output.dir)
    if kind == "run":
        return Path("results") / f"{config.name}_run_seed{config.seed if seed is None else seed}"
    return Path("results") / f"{config.name}_{kind}"


def _summary_json(
    config: ScenarioConfig, result: RunResult, labels: Mapping[str, str], seed: int
) -> dict[str, Any]:
    metrics = {k: v for k, v in result.summary.items() if k not in _NOT_METRICS}
    return _jsonable(
        {
            "scenario": config.name,
            "description": config.description,
            "seed": int(seed),
            "duration_s": config.duration_s,
            "policies": dict(labels),
            "wall_s": result.summary.get("wall_s"),
            "versions": versions(),
            "git_commit": git_commit(),
            "metrics": metrics,
        }
    )


def _write_run_files(
    folder: Path,
    config: ScenarioConfig,
    result: RunResult,
    labels: Mapping[str, str],
    seed: int,
    plots: bool,
) -> None:
    """Write a run's files into an existing (temporary) folder."""
    _write_text(folder / "config.resolved.yaml", dump_yaml(config.model_dump(mode="json")))
    for name, table in result.tables.items():
        _write_table(table, folder / f"{name.replace('/', '_')}.parquet", csv=config.output.csv)
    summary = _summary_json(config, result, labels, seed)
    _write_text(folder / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    if plots:
        from edgetwin.scenarios import plots as plotting  # lazy: matplotlib only when plotting

        plotting.plot_run(
            result.tables,
            config.duration_s,
            folder,
            n_bins=config.output.time_bins,
            title=f"{config.name} · {' · '.join(labels.values())} · seed {seed}",
        )


def write_run(
    out_dir: str | Path,
    config: ScenarioConfig,
    result: RunResult,
    labels: Mapping[str, str],
    seed: int,
    plots: bool = True,
    notify: Callable[[str], None] | None = None,
) -> Path:
    """Write one run's result directory atomically; returns its path.

    Files: ``config.resolved.yaml``, ``summary.json``, ``<table>.parquet`` (``ue``, ``slot``,
    ``mcs``, ...; also CSV with ``output.csv``) and, with ``plots``, ``ue_throughput_cdf.png`` and
    ``mcs_bler_over_time.png``. ``notify`` gets a line when a previous result is replaced
    (see :func:`atomic_dir`).
    """
    with atomic_dir(out_dir, notify) as tmp:
        _write_run_files(tmp, config, result, labels, seed, plots)
    return Path(out_dir)


@contextlib.contextmanager
def _progress_bar(
    enabled: bool, description: str, total: int | None = None
) -> Iterator[Callable[[float], None] | None]:
    """A rich progress bar on stderr; yields ``update(done)`` or ``None`` when disabled.

    Without ``total``, ``done`` is a fraction in [0, 1]; with ``total`` (a count of runs), it
    is the number done, and the bar shows ``done/total`` and the estimated time left.
    """
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    counts: list[ProgressColumn] = (
        [TaskProgressColumn()] if total is None else [MofNCompleteColumn(), TimeRemainingColumn()]
    )
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        *counts,
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=1.0 if total is None else total)
        yield lambda done: bar.update(task, completed=done)


def run_scenario(
    config: ScenarioConfig,
    policies: Mapping[str, PolicyLike] | None = None,
    seed: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
    plots: bool | None = None,
    notify: Callable[[str], None] | None = None,
) -> RunResult:
    """Run one scenario to its horizon; with ``out_dir``, write its result directory.

    Args:
        config: The validated scenario.
        policies: Family → policy (object, id, short name or :class:`PolicyRef`); families
            not named use ``config.policies``.
        seed: Seed of the run; default ``config.seed``.
        out_dir: Result directory to write (atomically); ``None`` writes nothing.
        progress: Show a progress bar on stderr.
        plots: Write PNG plots; default ``config.output.plots``.
        notify: Called with one line when an existing result is replaced (user files carried
            over, or kept in ``NAME.prev``); the CLI prints it.

    Returns:
        The run's tables and headline metrics.

    Raises:
        ValueError: A bad ``out_dir`` (:func:`check_output_dir`), before anything runs.
    """
    seed = config.seed if seed is None else int(seed)
    if out_dir is not None:  # fail before running, not after
        check_output_dir(out_dir)
    plan = policy_plan(config, policies)
    labels = {f: policy_label(v) for f, v in plan.items()}
    sim = build(config, plan, seed)
    with _progress_bar(progress, f"{config.name} (seed {seed})") as update:
        sim.run(progress=update)
    result = sim.results()
    if out_dir is not None:
        write_run(
            out_dir,
            resolved_config(config, plan, seed),
            result,
            labels,
            seed,
            config.output.plots if plots is None else plots,
            notify,
        )
    return result


# ----------------------------------------------------------------------------------------
# Comparisons under common random numbers
# ----------------------------------------------------------------------------------------
def parse_named_policy_sets(text: str) -> tuple[list[str | None], list[dict[str, str]]]:
    """Parse ``"B0=prb=pf+power=equal,prb=rr"`` into labels and policy sets.

    Each comma-separated item is one set; ``+`` joins the families of a set; an optional
    ``NAME=`` in front names the set in tables and plots (``None`` when absent: the label is
    then built from the policies).

    Raises:
        ValueError: For an item that is not ``[NAME=]family=policy[+...]``, a family named twice,
            or a name given twice.
    """
    labels: list[str | None] = []
    sets: list[dict[str, str]] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        head, sep, rest = item.partition("=")
        label: str | None = None
        # A family name in front is a policy (prb=pf:beta=0.9), never a set name.
        named = head.strip() not in FAMILIES and "=" in rest.split("+", 1)[0].split(":", 1)[0]
        if sep and "+" not in head and named:
            label, item = head.strip(), rest.strip()
            if not label:
                raise ValueError(f"empty policy-set name in {text!r}")
            if label in labels:
                raise ValueError(f"policy-set name {label!r} is given twice")
        entry: dict[str, str] = {}
        for part in item.split("+"):
            family, sep, name = (x.strip() for x in part.partition("="))
            if not sep or not family or not name:
                raise ValueError(
                    f"policy set item {part!r} must look like family=policy, e.g. prb=pf "
                    f"(join families with '+': prb=pf+power=waterfilling; name a set with "
                    f"NAME=: B0=prb=pf+power=equal)"
                )
            if family in entry:
                raise ValueError(f"policy set {item!r} names the family {family!r} twice")
            entry[family] = name
        labels.append(label)
        sets.append(entry)
    if not sets:
        raise ValueError(f"no policy set in {text!r}; e.g. prb=pf,prb=rr")
    return labels, sets


def parse_policy_sets(text: str) -> list[dict[str, str]]:
    """Parse ``"prb=pf,prb=rr,prb=pf+power=waterfilling"`` into policy sets (names dropped).

    Raises:
        ValueError: As :func:`parse_named_policy_sets`.
    """
    return parse_named_policy_sets(text)[1]


def policy_set_label(plan: Mapping[str, PolicyLike], given: Sequence[str]) -> str:
    """Label of a policy set from the families it names: ``"prb=pf+power=waterfilling"``."""
    parts = []
    for family in (f for f in FAMILIES if f in given):
        label = policy_label(plan[family])
        prefix = f"{family}/"
        parts.append(f"{family}={label.removeprefix(prefix)}")
    return "+".join(parts) or "scenario"


def run_once(
    config: ScenarioConfig, policies: Mapping[str, PolicyLike], seed: int
) -> tuple[dict[str, PolicyLike], dict[str, str], RunResult]:
    """Run ``config`` once with ``policies`` on ``seed`` (the unit of ``compare`` and ``sweep``).

    Returns:
        The policy plan (family → what drove it), its labels (family → policy id) and the
        run's tables and summary.
    """
    plan = policy_plan(config, policies)
    labels = {f: policy_label(v) for f, v in plan.items()}
    sim = build(config, plan, seed)
    sim.run()
    return plan, labels, sim.results()


def metric_values(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The numeric entries of a run's summary as plain Python numbers (``wall_s`` included).

    Plain numbers are what a JSON round trip gives back, so a cached run equals a fresh one.
    """
    return {
        k: v.item() if isinstance(v, np.generic) else v
        for k, v in summary.items()
        if k not in {"seed", "horizon_s"} and isinstance(v, int | float | np.number)
    }


def mean_ci(values: Any, confidence: float = 0.95) -> tuple[int, float, float, float]:
    """Sample size, mean, standard deviation and Student-t CI half-width of the finite values.

    Args:
        values: Samples (one per seed); NaN and infinities are dropped.
        confidence: Two-sided confidence level of the half-width.

    Returns:
        ``(n, mean, std, half_width)``; std and half-width are NaN below two samples.
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    half = (
        float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
    )
    return n, mean, std, half


@dataclass(frozen=True)
class _Job:
    index: int
    label: str
    policies: dict[str, PolicyRef]
    seed: int
    entry: Path | None
    """Where the finished run is cached (``NAME.partial/<key>``); ``None`` keeps nothing."""
    plots: bool


def _run_job(config: ScenarioConfig, job: _Job) -> tuple[dict[str, Any], pd.DataFrame]:
    """One run of a comparison (top-level so that worker processes can unpickle it)."""
    return _job_output(config, job, *run_once(config, job.policies, job.seed))


def _run_batch_jobs(
    config: ScenarioConfig, jobs: Sequence[_Job]
) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """Runs of one policy set on several seeds as one cell batch (same results as _run_job)."""
    from edgetwin.scenarios.batch_run import NotBatchableError, run_batch

    if len(jobs) == 1:
        return [_run_job(config, jobs[0])]
    try:
        results = run_batch(config, jobs[0].policies, [job.seed for job in jobs])
    except NotBatchableError:  # e.g. a radio component replaced by a test double
        return [_run_job(config, job) for job in jobs]
    return [_job_output(config, job, *res) for job, res in zip(jobs, results, strict=True)]


def _batch_chunks(jobs: Sequence[_Job], workers: int) -> list[list[_Job]]:
    """Each policy set's jobs split into at most ``workers`` chunks of near-equal size."""
    by_label: dict[str, list[_Job]] = {}
    for job in jobs:
        by_label.setdefault(job.label, []).append(job)
    chunks = []
    for group in by_label.values():
        n = min(workers, len(group))
        chunks += [group[i::n] for i in range(n)]
    return chunks


def _job_output(
    config: ScenarioConfig,
    job: _Job,
    plan: Mapping[str, PolicyLike],
    labels: Mapping[str, str],
    result: RunResult,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """A finished run's comparison row and UE table; cached as ``job.entry`` if it has one."""
    row: dict[str, Any] = {"policy_set": job.label, "seed": job.seed}
    row.update({f"policy.{f}": v for f, v in labels.items()})
    row.update(metric_values(result.summary))
    if job.entry is not None:
        _store_entry(job.entry, resolved_config(config, plan, job.seed), result, labels, job, row)
    ue = result.tables.get("ue", pd.DataFrame()).copy()
    ue.insert(0, "seed", job.seed)
    ue.insert(0, "policy_set", job.label)
    return row, ue


def _run_one_job(
    config: ScenarioConfig, jobs: Sequence[_Job]
) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """:func:`_run_job` of a one-job chunk (the task shape ``execute`` submits)."""
    return [_run_job(config, job) for job in jobs]


def _store_entry(
    entry: Path,
    config: ScenarioConfig,
    result: RunResult,
    labels: Mapping[str, str],
    job: _Job,
    row: Mapping[str, Any],
) -> None:
    """Cache a finished run as ``entry`` (``run/`` files + ``row.json``), renamed in at once.

    A run killed while writing leaves only a ``*.tmp`` folder, which resuming ignores.
    """
    part = entry.with_name(f"{entry.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        (part / "run").mkdir(parents=True)
        _write_run_files(part / "run", config, result, labels, job.seed, job.plots)
        _write_text(part / "row.json", json.dumps(dict(row)) + "\n")
        os.replace(part, entry)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise


def _load_entry(entry: Path, job: _Job) -> tuple[dict[str, Any], pd.DataFrame]:
    """A cached run's row and UE table (with ``policy_set`` and ``seed`` columns)."""
    row = json.loads((entry / "row.json").read_text(encoding="utf-8"))
    ue_path = entry / "run" / "ue.parquet"
    ue = pd.read_parquet(ue_path) if ue_path.exists() else pd.DataFrame()
    ue.insert(0, "seed", job.seed)
    ue.insert(0, "policy_set", job.label)
    return row, ue


def _run_key(config: ScenarioConfig, label: str, plots: bool) -> str:
    """Cache key of one run of a comparison (32 hex digits).

    A hash of its resolved config (seed and policies included, sorted keys), its label, the plots
    flag and the EdgeTwin version, so that any change of what would be computed recomputes.
    """
    payload = {
        "format": "edgetwin-run-cache/1",
        "config": config.model_dump(mode="json"),
        "label": label,
        "plots": plots,
        "edgetwin": versions()["edgetwin"],
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _partial_dir(target: Path) -> Path:
    """The resume cache of ``target``: ``NAME.partial`` next to it (created, with a marker).

    Raises:
        ValueError: A ``NAME.partial`` that EdgeTwin did not make (it is never used or removed).
    """
    partial = target.with_name(target.name + ".partial")
    if partial.exists() and not (partial / PARTIAL_MARKER).is_file():
        raise ValueError(
            f"{str(partial)!r} exists and is not an EdgeTwin resume cache (no {PARTIAL_MARKER}); "
            "refusing to use it: move it away or choose another --out"
        )
    partial.mkdir(parents=True, exist_ok=True)
    (partial / PARTIAL_MARKER).write_text("resume cache of edgetwin compare\n", encoding="utf-8")
    return partial


def _remove_partial(partial: Path) -> None:
    """Remove the resume cache: only its entries (``<hex>``, ``*.tmp``) and marker."""
    for p in partial.iterdir():
        if p.is_dir() and (p.name.endswith(".tmp") or p.name.isalnum()):
            shutil.rmtree(p, ignore_errors=True)
    (partial / PARTIAL_MARKER).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # something a user put there stays
        partial.rmdir()


def summarize_comparison(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, standard deviation and CI half-width (Student t) per policy set and metric.

    Args:
        runs: One row per policy set × seed (``policy_set``, ``seed``, metric columns).
        confidence: Two-sided confidence level of the half-width.

    Returns:
        Long table: ``policy_set``, ``metric``, ``n``, ``mean``, ``std``, ``ci95_half_width``
        (NaN with a single seed), in the order the policy sets and metrics appear.
    """
    skip = {"policy_set", "seed", "wall_s"}
    metrics = [
        c
        for c in runs.columns
        if c not in skip and not c.startswith("policy.") and pd.api.types.is_numeric_dtype(runs[c])
    ]
    rows = []
    for label in dict.fromkeys(runs["policy_set"]):
        sub = runs[runs["policy_set"] == label]
        for metric in metrics:
            n, mean, std, half = mean_ci(sub[metric].to_numpy(dtype=np.float64), confidence)
            rows.append(
                {
                    "policy_set": label,
                    "metric": metric,
                    "n": n,
                    "mean": mean,
                    "std": std,
                    "ci95_half_width": half,
                }
            )
    return pd.DataFrame(rows)


def compare(
    config: ScenarioConfig,
    policy_sets: Sequence[Mapping[str, str | PolicyRef]],
    seeds: Sequence[int],
    out_dir: str | Path | None = None,
    workers: int | None = None,
    *,
    progress: bool = False,
    plots: bool | None = None,
    labels: Sequence[str | None] | None = None,
    notify: Callable[[str], None] | None = None,
    batch: bool = True,
) -> pd.DataFrame:
    """Run every policy set on every seed (common random numbers) and tabulate the metrics.

    The same seed gives every policy set the same channels, arrivals and HARQ draws, so the
    differences between sets on one seed are due to the policies alone.

    Args:
        config: The validated scenario.
        policy_sets: One mapping family → policy (id or short name) per set, e.g.
            ``[{"prb": "pf"}, {"prb": "rr"}]``; families not named use ``config.policies``.
        seeds: The seeds every set runs with.
        out_dir: Result directory (written atomically): ``comparison.parquet``,
            ``comparison.csv``, ``comparison_summary.csv``, plots, and one run directory per
            set and seed under ``runs/``. ``None`` writes nothing.
        workers: Worker processes; default ``min(2, number of runs)``. Results are identical
            serial or parallel.
        progress: Show a progress bar on stderr.
        plots: Write PNG plots; default ``config.output.plots``.
        labels: A name per policy set for tables and plots (e.g. ``"B0"``); ``None`` (or a
            ``None`` entry) names a set by its policies, ``"prb=pf+power=equal"``.
        notify: Called with one line when an existing result is replaced (see
            :func:`atomic_dir`).
        batch: Run a lock-step radio scenario's seeds of each policy set as cell batches
            (``scenarios/batch_run.py``; one per worker) rather than one run per seed. The
            results are the same (``wall_s`` apart).

    Returns:
        One row per policy set × seed: ``policy_set``, ``seed``, ``policy.<family>`` and the
        run's numeric summary metrics.

    Raises:
        ValueError: Empty or duplicate policy sets or seeds, unknown families, a bad
            ``out_dir`` (:func:`check_output_dir`) — all before anything runs.
        PolicyRegistryError: Unknown policy ids (listing the allowed ones).
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("compare needs at least one seed")
    if len(set(seeds)) != len(seeds) or any(not 0 <= s <= MAX_SEED for s in seeds):
        shown: list[object] = [*seeds] if len(seeds) <= 6 else [*seeds[:3], "...", *seeds[-3:]]
        raise ValueError(f"seeds must be distinct integers in 0..{MAX_SEED}, got {shown}")
    if not policy_sets:
        raise ValueError("compare needs at least one policy set, e.g. [{'prb': 'pf'}]")
    plots = config.output.plots if plots is None else plots

    # Resolve every set up front, so a bad id fails before anything runs.
    if labels is not None and len(labels) != len(policy_sets):
        raise ValueError(f"{len(labels)} labels for {len(policy_sets)} policy sets")
    resolved: list[tuple[str, dict[str, PolicyRef]]] = []
    for i, given in enumerate(policy_sets):
        plan = policy_plan(config, dict(given))
        refs = {f: v for f, v in plan.items() if f in given and isinstance(v, PolicyRef)}
        name = labels[i] if labels is not None else None
        label = name if name else policy_set_label(plan, list(given))
        if label in (lbl for lbl, _ in resolved):
            raise ValueError(f"policy set {label!r} is given twice")
        resolved.append((label, refs))

    target = None if out_dir is None else check_output_dir(out_dir)  # fail before running
    n_jobs = len(resolved) * len(seeds)
    workers = min(2, n_jobs) if workers is None else max(1, min(int(workers), n_jobs))

    from edgetwin.scenarios.batch_run import batchable

    batch_runs = batchable(config) and batch

    def jobs(partial: Path | None) -> list[_Job]:
        def entry(refs: dict[str, PolicyRef], label: str, seed: int) -> Path | None:
            if partial is None:
                return None
            run_config = resolved_config(config, policy_plan(config, refs), seed)
            return partial / _run_key(run_config, label, plots)

        return [
            _Job(
                index=i * len(seeds) + k,
                label=label,
                policies=refs,
                seed=seed,
                entry=entry(refs, label, seed),
                plots=plots,
            )
            for i, (label, refs) in enumerate(resolved)
            for k, seed in enumerate(seeds)
        ]

    def execute(todo: list[_Job]) -> list[tuple[dict[str, Any], pd.DataFrame]]:
        # A lock-step radio scenario runs each policy set's seeds as cell batches (one per
        # worker): the same results as one run per seed, at a fraction of the wall time.
        if batch_runs:
            tasks = [(_run_batch_jobs, chunk) for chunk in _batch_chunks(todo, workers)]
        else:
            tasks = [(_run_one_job, [job]) for job in todo]
        done: dict[int, tuple[dict[str, Any], pd.DataFrame]] = {}
        with _progress_bar(progress, f"{config.name}: {n_jobs} runs") as update:
            if workers == 1:
                for fn, chunk in tasks:
                    done.update(zip([job.index for job in chunk], fn(config, chunk), strict=True))
                    if update:
                        update(len(done) / n_jobs)
            else:
                import multiprocessing

                ctx = multiprocessing.get_context("spawn")
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
                try:
                    with _one_blas_thread_per_worker():  # workers start on submit
                        futures = [(pool.submit(fn, config, chunk), chunk) for fn, chunk in tasks]
                    for fut, chunk in futures:
                        done.update(zip([job.index for job in chunk], fut.result(), strict=True))
                        if update:
                            update(len(done) / n_jobs)
                except BaseException:
                    _stop_pool(pool)
                    raise
                pool.shutdown()
        return [done[job.index] for job in todo]

    if target is None:
        return pd.DataFrame([row for row, _ in execute(jobs(None))])
    partial = _partial_dir(target)
    todo = jobs(partial)
    entries = [job.entry for job in todo if job.entry is not None]  # all set: partial given
    pending = [job for job, e in zip(todo, entries, strict=True) if not (e / "row.json").is_file()]
    n_reused = n_jobs - len(pending)
    if n_reused and notify:
        notify(f"resuming from {partial}: {n_reused} of {n_jobs} runs reused")
    with _sigterm_raises():
        execute(pending)
    # Every table comes from the cache, so a resumed comparison equals an uninterrupted one.
    outputs = [_load_entry(e, job) for job, e in zip(todo, entries, strict=True)]
    runs = pd.DataFrame([row for row, _ in outputs])
    ue = pd.concat([u for _, u in outputs], ignore_index=True)
    with atomic_dir(target, notify) as tmp:
        for job, e in zip(todo, entries, strict=True):
            dest = tmp / "runs" / _safe(job.label) / f"seed{job.seed}"
            shutil.copytree(e / "run", dest, copy_function=_link_or_copy)
        summary = summarize_comparison(runs)
        _write_table(runs, tmp / "comparison.parquet", csv=True)
        _write_table(ue, tmp / "comparison_ue.parquet")
        _write_text(tmp / "comparison_summary.csv", summary.to_csv(index=False))
        _write_text(
            tmp / "config.resolved.yaml",
            dump_yaml(config.model_dump(mode="json")),
        )
        meta = {
            "scenario": config.name,
            "policy_sets": [lbl for lbl, _ in resolved],
            "seeds": seeds,
            "workers": workers,
            "versions": versions(),
            "git_commit": git_commit(),
            "wall_s_total": float(runs["wall_s"].sum()) if "wall_s" in runs else None,
            "runs_reused": n_reused,
        }
        _write_text(tmp / "summary.json", json.dumps(_jsonable(meta), indent=2) + "\n")
        if plots:
            from edgetwin.scenarios import plots as plotting

            plotting.plot_comparison(
                ue, summary, [lbl for lbl, _ in resolved], tmp, title=config.name
            )
    _remove_partial(partial)
    return runs


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link a cached file into the result (same file system, no copy), else copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


#: Thread-count variables of the BLAS / OpenMP libraries numpy may load.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _one_blas_thread_per_worker() -> Iterator[None]:
    """Spawn pool workers inside this block with one BLAS thread each (unless the user set one).

    Why: OpenBLAS starts a thread per core in every process, so two workers on two cores run
    four busy threads; an 8-run ``nr_cell`` sweep (2 s runs) took 11.3 s with 2 workers against
    5.2 s with 1 (4.6 s with one thread per worker). A spawned worker copies the environment when
    it starts, the only moment the count can be set without threadpoolctl; the parent's
    environment is restored on leaving. Results do not change (the tests compare them).
    """
    unset = [k for k in _THREAD_VARS if k not in os.environ]
    for key in unset:
        os.environ[key] = "1"
    try:
        yield
    finally:
        for key in unset:
            os.environ.pop(key, None)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (on an error, Ctrl-C or SIGTERM).

    ``shutdown(wait=True)`` would let every queued run finish first; workers must not outlive
    an interrupted comparison.
    """
    processes = list(getattr(pool, "_processes", {}).values())  # no public API before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def _safe(label: str) -> str:
    """A file-system-safe folder name for a policy-set label."""
    return "".join(c if c.isalnum() or c in "=+-_.," else "-" for c in label)
