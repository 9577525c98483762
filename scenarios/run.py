"""Runs, replications with common random numbers, and atomic result writing.

* :func:`run_scenario` runs one scenario (optionally writing a result directory).
* :func:`compare` runs every policy set on the same seeds — hence the same channels, arrivals
  and HARQ draws (common random numbers, since every stream derives from the seed) — serially
  or in a process pool, with identical results either way.

Every result directory is assembled as a temporary directory next to its target and renamed
into place at the end; files inside are written to a temporary name and ``os.replace``-d. A
failure therefore leaves nothing half-written, and a result directory already there survives.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgetwin.scenarios.build import FAMILIES, PolicyLike, build, policy_label, policy_plan
from edgetwin.scenarios.load import dump_yaml
from edgetwin.scenarios.schema import PolicyRef, ScenarioConfig
from edgetwin.sim.metrics.summary import RunResult

__all__ = [
    "HEADLINE_METRICS",
    "atomic_dir",
    "compare",
    "default_out_dir",
    "parse_named_policy_sets",
    "parse_policy_sets",
    "policy_set_label",
    "resolved_config",
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
)

#: Summary entries that describe the run rather than measure the policy.
_NOT_METRICS = frozenset({"seed", "horizon_s", "wall_s"})

#: File marking a directory as an EdgeTwin result (only such directories are ever replaced).
MARKER = ".edgetwin-result"

#: The tables a run writes as parquet (others the components report are written too).
TABLES: tuple[str, ...] = ("ue", "slot", "mcs")


# ----------------------------------------------------------------------------------------
# Atomic writing
# ----------------------------------------------------------------------------------------
def _check_replaceable(target: Path) -> None:
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


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Build a directory aside and move it into place at the end.

    Yields a temporary directory next to ``target``. On success it replaces ``target`` (an
    existing EdgeTwin result directory, or an empty one); on any exception it is removed and
    ``target`` is left exactly as it was.

    Raises:
        ValueError: If ``target`` exists and is not an EdgeTwin result directory.
    """
    target = Path(target).expanduser().absolute()
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        (tmp / MARKER).write_text("written by edgetwin\n", encoding="utf-8")
        _check_replaceable(target)
        if target.exists():
            old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
) -> Path:
    """Write one run's result directory atomically; returns its path.

    Files: ``config.resolved.yaml``, ``summary.json``, ``<table>.parquet`` (``ue``, ``slot``,
    ``mcs``, ...; also CSV with ``output.csv``) and, with ``plots``, ``ue_throughput_cdf.png`` and
    ``mcs_bler_over_time.png``.
    """
    with atomic_dir(out_dir) as tmp:
        _write_run_files(tmp, config, result, labels, seed, plots)
    return Path(out_dir)


@contextlib.contextmanager
def _progress_bar(enabled: bool, description: str) -> Iterator[Callable[[float], None] | None]:
    """A rich progress bar on stderr; yields ``update(fraction)`` or ``None`` when disabled."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=1.0)
        yield lambda fraction: bar.update(task, completed=fraction)


def run_scenario(
    config: ScenarioConfig,
    policies: Mapping[str, PolicyLike] | None = None,
    seed: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
    plots: bool | None = None,
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

    Returns:
        The run's tables and headline metrics.
    """
    seed = config.seed if seed is None else int(seed)
    if out_dir is not None:  # fail before running, not after
        _check_replaceable(Path(out_dir).expanduser().absolute())
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
        if sep and "+" not in head and "=" in rest.split("+", 1)[0]:
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


@dataclass(frozen=True)
class _Job:
    index: int
    label: str
    policies: dict[str, PolicyRef]
    seed: int
    run_dir: Path | None
    plots: bool


def _run_job(config: ScenarioConfig, job: _Job) -> tuple[dict[str, Any], pd.DataFrame]:
    """One run of a comparison (top-level so that worker processes can unpickle it)."""
    plan = policy_plan(config, job.policies)
    labels = {f: policy_label(v) for f, v in plan.items()}
    sim = build(config, plan, job.seed)
    sim.run()
    result = sim.results()
    if job.run_dir is not None:
        job.run_dir.mkdir(parents=True, exist_ok=False)
        _write_run_files(
            job.run_dir,
            resolved_config(config, plan, job.seed),
            result,
            labels,
            job.seed,
            job.plots,
        )
    row: dict[str, Any] = {"policy_set": job.label, "seed": job.seed}
    row.update({f"policy.{f}": v for f, v in labels.items()})
    row.update(
        {
            k: v
            for k, v in result.summary.items()
            if k not in {"seed", "horizon_s"} and isinstance(v, int | float | np.number)
        }
    )
    ue = result.tables.get("ue", pd.DataFrame()).copy()
    ue.insert(0, "seed", job.seed)
    ue.insert(0, "policy_set", job.label)
    return row, ue


def summarize_comparison(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, standard deviation and CI half-width (Student t) per policy set and metric.

    Args:
        runs: One row per policy set × seed (``policy_set``, ``seed``, metric columns).
        confidence: Two-sided confidence level of the half-width.

    Returns:
        Long table: ``policy_set``, ``metric``, ``n``, ``mean``, ``std``, ``ci95_half_width``
        (NaN with a single seed), in the order the policy sets and metrics appear.
    """
    from scipy import stats

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
            x = sub[metric].to_numpy(dtype=np.float64)
            x = x[np.isfinite(x)]
            n = int(x.size)
            mean = float(x.mean()) if n else math.nan
            std = float(x.std(ddof=1)) if n > 1 else math.nan
            half = (
                float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
                if n > 1
                else math.nan
            )
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

    Returns:
        One row per policy set × seed: ``policy_set``, ``seed``, ``policy.<family>`` and the
        run's numeric summary metrics.

    Raises:
        ValueError: Empty or duplicate policy sets or seeds, unknown families.
        PolicyRegistryError: Unknown policy ids (listing the allowed ones).
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("compare needs at least one seed")
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, got {seeds}")
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

    if out_dir is not None:  # fail before running, not after
        _check_replaceable(Path(out_dir).expanduser().absolute())
    n_jobs = len(resolved) * len(seeds)
    workers = min(2, n_jobs) if workers is None else max(1, min(int(workers), n_jobs))

    def jobs(root: Path | None) -> list[_Job]:
        return [
            _Job(
                index=i,
                label=label,
                policies=refs,
                seed=seed,
                run_dir=None if root is None else root / "runs" / _safe(label) / f"seed{seed}",
                plots=plots,
            )
            for i, (label, refs) in enumerate(resolved)
            for seed in seeds
        ]

    def execute(root: Path | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        todo = jobs(root)
        outputs: list[tuple[dict[str, Any], pd.DataFrame]] = []
        with _progress_bar(progress, f"{config.name}: {n_jobs} runs") as update:
            if workers == 1:
                for j, job in enumerate(todo, 1):
                    outputs.append(_run_job(config, job))
                    if update:
                        update(j / n_jobs)
            else:
                import multiprocessing

                ctx = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                    futures = [pool.submit(_run_job, config, job) for job in todo]
                    for j, fut in enumerate(futures, 1):
                        outputs.append(fut.result())
                        if update:
                            update(j / n_jobs)
        runs = pd.DataFrame([row for row, _ in outputs])
        ue = pd.concat([u for _, u in outputs], ignore_index=True)
        return runs, ue

    if out_dir is None:
        runs, _ = execute(None)
        return runs
    with atomic_dir(out_dir) as tmp:
        runs, ue = execute(tmp)
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
        }
        _write_text(tmp / "summary.json", json.dumps(_jsonable(meta), indent=2) + "\n")
        if plots:
            from edgetwin.scenarios import plots as plotting

            plotting.plot_comparison(
                ue, summary, [lbl for lbl, _ in resolved], tmp, title=config.name
            )
    return runs


def _safe(label: str) -> str:
    """A file-system-safe folder name for a policy-set label."""
    return "".join(c if c.isalnum() or c in "=+-_.," else "-" for c in label)
