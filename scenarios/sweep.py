"""Sweeps: every grid point × policy set × seed, resumable, on a pluggable backend.

A sweep expands dotted scenario overrides (``cell.bandwidth_hz: [20e6, 40e6]``) into a grid,
runs every policy set on every seed at every grid point — common random numbers: one seed gives
every policy set the same channels and arrivals, as in :func:`~edgetwin.scenarios.run.compare` —
and tabulates the metrics.

Each run is keyed by the SHA-256 of its resolved config (grid point, policies and seed
included) and stored as ``DIR/runs/<key>.json``, written atomically (:func:`_store_run`) by the
local worker that ran it or, on Ray, by the driver as each task's record comes back (a cluster's
workers need not share this file system). A sweep started again runs only the keys that are
missing, so a killed sweep resumes, and a changed config (another value, duration, EdgeTwin
version) gets new keys and reruns.

From the stored runs (read back in sweep order, so the tables do not depend on the backend or
the number of workers) it writes, each file atomically:

* ``results.parquet``: tidy, one row per run × metric, a column per grid axis, ``policy_set``,
  ``seed``, ``metric``, ``value``, ``key``;
* ``summary.csv``: n, mean, std and 95 % CI half-width (Student t) per grid point × set × metric;
* ``paired.csv``: per grid point × set × metric, the difference to the baseline set paired by
  seed, with its CI;
* ``plots/<metric>.png``: the metric against the first grid axis, a line per set, CI bands;
* ``sweep.json``: the axes, sets, seeds and provenance.

Backends (:class:`Backend`): :class:`LocalBackend`, a process pool on this machine, and
:class:`RayBackend`, one Ray task per run on a local Ray (started and shut down by the sweep) or
an existing cluster (``--address`` / ``RAY_ADDRESS``). Ray is the optional extra
``edgetwin[ray]``, imported only by :class:`RayBackend`. Every backend computes each run with
:func:`_compute_run`, so the tables are the same, bit for bit, whatever the backend and workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from edgetwin.scenarios.builder import policy_plan
from edgetwin.scenarios.errors import ScenarioError
from edgetwin.scenarios.load import parse_overrides, with_overrides
from edgetwin.scenarios.run import (
    HEADLINE_METRICS,
    _jsonable,
    _one_blas_thread_per_worker,
    _progress_bar,
    _sigterm_raises,
    _stop_pool,
    _write_text,
    git_commit,
    mean_ci,
    metric_values,
    policy_set_label,
    resolved_config,
    run_once,
    versions,
)
from edgetwin.scenarios.schema import PolicyRef, ScenarioConfig
from edgetwin.sim.fsio import check_creatable
from edgetwin.sim.metrics.summary import RunResult
from edgetwin.sim.rng import MAX_SEED

__all__ = [
    "BACKENDS",
    "Backend",
    "LocalBackend",
    "PolicySet",
    "RayBackend",
    "SweepPlan",
    "SweepRun",
    "make_backend",
    "paired_differences",
    "parse_grid_option",
    "plan_sweep",
    "run_key",
    "summarize_sweep",
    "sweep",
]

#: File marking a folder as a sweep's (only such folders are written into).
SWEEP_MARKER = ".edgetwin-sweep"

#: Format tag of a stored run (a file of another format is run again).
RUN_FORMAT = "edgetwin-sweep-run/1"

#: Backends ``--backend`` accepts.
BACKENDS: tuple[str, ...] = ("local", "ray")

#: Columns of ``results.parquet`` besides the grid axes.
_RUN_COLUMNS = ("policy_set", "seed", "metric", "value", "key")

#: Grid keys a sweep refuses: the seed and the policies have options of their own.
_NOT_AXES = ("seed", "policies")


# ----------------------------------------------------------------------------------------
# The plan: grid × policy sets × seeds
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicySet:
    """A named policy set: family → registered policy (families not named: the scenario's)."""

    label: str
    policies: Mapping[str, PolicyRef]


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: a grid point, a policy set and a seed."""

    key: str
    """SHA-256 (hex) of the resolved config, policy set and seed (see :func:`run_key`)."""
    point: tuple[Any, ...]
    """The grid point: one value per axis, in axis order."""
    label: str
    seed: int
    config: ScenarioConfig
    """The scenario at this grid point."""
    policies: Mapping[str, PolicyRef]


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep runs, in sweep order (grid points, then sets, then seeds)."""

    config: ScenarioConfig
    axes: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    """The values of each axis, in axis order."""
    sets: tuple[PolicySet, ...]
    seeds: tuple[int, ...]
    baseline: str | None
    runs: tuple[SweepRun, ...]


def parse_grid_option(text: str) -> tuple[str, list[Any]]:
    """Parse ``"cell.bandwidth_hz=20e6,40e6"`` into ``("cell.bandwidth_hz", [2e7, 4e7])``.

    Values are read as YAML scalars, as ``--set`` reads them.

    Raises:
        ScenarioError: No ``=``, a malformed key, or an empty value list or entry.
    """
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError(
            f"--grid {text!r} must look like KEY=V1,V2,..., e.g. cell.bandwidth_hz=20e6,40e6"
        )
    items = [v.strip() for v in rest.split(",")]
    if not any(items):
        raise ScenarioError(f"--grid {key} has no values; give e.g. {key}=V1,V2")
    if not all(items):
        raise ScenarioError(f"--grid {text!r} has an empty value; expected {key}=V1,V2,...")
    return key, [parse_overrides([f"{key}={v}"])[key] for v in items]


def run_key(config: ScenarioConfig, policies: Mapping[str, PolicyRef], seed: int) -> str:
    """Key of one run: SHA-256 (64 hex digits) of what determines its results.

    The resolved config (the grid point's fields, the policies and the seed; not ``output``,
    which changes no number), the policy set and the EdgeTwin version, as sorted-key JSON.
    """
    resolved = resolved_config(config, policy_plan(config, dict(policies)), seed)
    data = resolved.model_dump(mode="json")
    data.pop("output", None)
    payload = {
        "format": RUN_FORMAT,
        "config": data,
        "policies": {f: ref.model_dump(mode="json") for f, ref in sorted(policies.items())},
        "seed": int(seed),
        "edgetwin": versions()["edgetwin"],
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_axes(grid: Mapping[str, Sequence[Any]]) -> list[tuple[str, tuple[Any, ...]]]:
    if not grid:
        raise ScenarioError(
            "the sweep grid is empty; give at least one axis, e.g. --grid cell.bandwidth_hz="
            "20e6,40e6 (or grid: in the --sweep file); to vary only policies use 'edgetwin compare'"
        )
    axes = []
    for key, values in grid.items():
        head = key.split(".", 1)[0]
        if head in _NOT_AXES:
            what = "--seeds / --seed-list" if head == "seed" else "--policies"
            raise ScenarioError(f"grid axis {key!r} is not allowed; vary it with {what}")
        if key in _RUN_COLUMNS:
            raise ScenarioError(f"grid axis {key!r} clashes with a result column")
        values = list(values)
        if not values:
            raise ScenarioError(f"grid axis {key} has no values; give e.g. {key}=V1,V2")
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise ScenarioError(f"grid axis {key} repeats a value: {values}")
        axes.append((key, tuple(values)))
    return axes


def _check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(s) for s in seeds)
    if not out:
        raise ScenarioError("a sweep needs at least one seed, e.g. --seeds 4")
    if len(set(out)) != len(out) or any(not 0 <= s <= MAX_SEED for s in out):
        shown = list(out) if len(out) <= 6 else [*out[:3], "...", *out[-3:]]
        raise ScenarioError(f"seeds must be distinct integers in 0..{MAX_SEED}, got {shown}")
    return out


def plan_sweep(
    config: ScenarioConfig,
    grid: Mapping[str, Sequence[Any]],
    policy_sets: Sequence[tuple[str | None, Mapping[str, str | PolicyRef]]],
    seeds: Sequence[int],
    baseline: str | None = None,
) -> SweepPlan:
    """Expand and check a sweep before anything runs.

    Args:
        config: The validated base scenario.
        grid: Dotted field → values, one axis each (the first axis is the plots' x axis).
        policy_sets: ``(name or None, family → policy)`` per set; an unnamed set is labelled by
            its policies (``"prb=pf+power=equal"``).
        seeds: The seeds every set runs with at every grid point.
        baseline: The set that paired differences are taken against; default the first set.

    Raises:
        ScenarioError: An empty grid or axis, an axis that is not a scenario field or a value
            out of its range (named with the allowed values), bad seeds, no or duplicate
            policy sets, an unknown baseline.
        PolicyRegistryError: An unknown policy id (listing the allowed ones).
    """
    axes = _check_axes(grid)
    seeds_t = _check_seeds(seeds)
    if not policy_sets:
        raise ScenarioError("a sweep needs at least one policy set, e.g. --policies prb=pf,prb=rr")
    sets: list[PolicySet] = []
    for name, given in policy_sets:
        plan = policy_plan(config, dict(given))
        refs = {f: v for f, v in plan.items() if f in given and isinstance(v, PolicyRef)}
        label = name or policy_set_label(plan, list(given))
        if any(s.label == label for s in sets):
            raise ScenarioError(f"policy set {label!r} is given twice")
        sets.append(PolicySet(label, refs))
    labels = [s.label for s in sets]
    if baseline is not None and baseline not in labels:
        raise ScenarioError(
            f"baseline {baseline!r} is not a policy set; allowed: {', '.join(labels)}"
        )
    baseline = baseline if baseline is not None else labels[0]

    runs: list[SweepRun] = []
    for point in itertools.product(*(values for _, values in axes)):
        overrides = {key: value for (key, _), value in zip(axes, point, strict=True)}
        try:
            point_config = with_overrides(config, overrides)
        except ScenarioError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
            raise ScenarioError(f"grid point {shown}: {exc}") from None
        for pset in sets:
            for seed in seeds_t:
                key = run_key(point_config, pset.policies, seed)
                runs.append(SweepRun(key, point, pset.label, seed, point_config, pset.policies))
    return SweepPlan(
        config=config,
        axes=tuple(k for k, _ in axes),
        values=tuple(v for _, v in axes),
        sets=tuple(sets),
        seeds=seeds_t,
        baseline=baseline,
        runs=tuple(runs),
    )


# ----------------------------------------------------------------------------------------
# Backends: who runs the runs
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Task:
    config: ScenarioConfig
    policies: Mapping[str, PolicyRef]
    seed: int
    key: str
    path: Path
    point: Mapping[str, Any]

    @property
    def keys(self) -> tuple[str, ...]:
        """Its run key (as :attr:`_BatchTask.keys`)."""
        return (self.key,)


@dataclass(frozen=True)
class _BatchTask:
    """Several seeds of one grid point and policy set, run as one cell batch.

    For a lock-step radio scenario (``scenarios/batch_run.py``); each run's record equals the
    one its own task would give (``wall_s`` apart), so the tables do not change.
    """

    tasks: tuple[_Task, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        """The run keys of its tasks."""
        return tuple(t.key for t in self.tasks)


def _compute_run(task: _Task) -> dict[str, Any]:
    """Run one task; returns its record (top level: pool and Ray workers unpickle it)."""
    _, labels, result = run_once(task.config, task.policies, task.seed)
    return _record(task, labels, result)


def _compute_records(item: _Task | _BatchTask) -> list[dict[str, Any]]:
    """The records of a task or a batch task, in its tasks' order (top level: workers).

    The one place runs are computed, whatever the backend.
    """
    if isinstance(item, _Task):
        return [_compute_run(item)]
    from edgetwin.scenarios.batch_run import NotBatchableError, run_batch

    head = item.tasks[0]
    try:
        results = run_batch(head.config, head.policies, [t.seed for t in item.tasks])
    except NotBatchableError:
        return [_compute_run(t) for t in item.tasks]
    return [
        _record(t, labels, result)
        for t, (_, labels, result) in zip(item.tasks, results, strict=True)
    ]


def _paths(item: _Task | _BatchTask) -> list[Path]:
    """Where the records of a task or a batch task are stored, in order."""
    return [item.path] if isinstance(item, _Task) else [t.path for t in item.tasks]


def _batch_items(tasks: Sequence[_Task], n_parallel: int) -> list[_Task | _BatchTask]:
    """Tasks grouped by grid point and policy set into batch tasks where the scenario allows.

    Each group is split into at most ``n_parallel`` batches, so that workers stay busy.
    """
    from edgetwin.scenarios.batch_run import batchable

    groups: dict[tuple[str, str], list[_Task]] = {}
    for task in tasks:
        point = json.dumps(dict(task.point), sort_keys=True, default=str)
        pols = json.dumps({f: r.model_dump(mode="json") for f, r in task.policies.items()})
        groups.setdefault((point, pols), []).append(task)
    items: list[_Task | _BatchTask] = []
    for group in groups.values():
        if len(group) == 1 or not batchable(group[0].config):
            items.extend(group)
            continue
        n = min(max(1, n_parallel), len(group))
        items.extend(_BatchTask(tuple(group[i::n])) for i in range(n))
    return items


def _record(task: _Task, labels: Mapping[str, str], result: RunResult) -> dict[str, Any]:
    """The stored record of a finished run."""
    metrics = metric_values(result.summary)
    wall_s = metrics.pop("wall_s", None)
    return {
        "format": RUN_FORMAT,
        "key": task.key,
        "seed": task.seed,
        "point": dict(task.point),
        "policies": labels,
        "metrics": _jsonable(metrics),  # NaN → null: strict JSON
        "wall_s": wall_s,
    }


def _store_run(record: Mapping[str, Any], path: Path) -> None:
    """Write a run's record as ``path`` atomically: the one place a run is stored."""
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        part.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def _execute(item: _Task | _BatchTask) -> None:
    """Run a task (or batch task) and store its records (top level: pool workers unpickle it).

    Stored by the local worker, not the parent, so that the runs finished before a kill are kept.
    """
    for record, path in zip(_compute_records(item), _paths(item), strict=True):
        _store_run(record, path)


class Backend(Protocol):
    """Runs tasks; the results are the files stored per task, so the order does not matter."""

    def run(self, tasks: Sequence[_Task | _BatchTask], done: Callable[[], None]) -> None:
        """Run and store every task, calling ``done()`` in this process after each one.

        Compute with :func:`_compute_records`, store at :func:`_paths` with :func:`_store_run`.
        """


class LocalBackend:
    """A process pool on this machine (``spawn``, as ``compare``); one worker runs in-process.

    Args:
        workers: Worker processes, ≥ 1.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))

    def run(self, tasks: Sequence[_Task | _BatchTask], done: Callable[[], None]) -> None:
        """Run every task; on an error, Ctrl-C or SIGTERM the workers are stopped at once."""
        if self.workers == 1 or len(tasks) <= 1:
            for task in tasks:
                _execute(task)
                done()
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=ctx)
        try:
            with _one_blas_thread_per_worker():  # workers start on submit
                futures = [pool.submit(_execute, t) for t in tasks]
            for fut in as_completed(futures):
                fut.result()
                done()
        except BaseException:
            _stop_pool(pool)
            raise
        pool.shutdown()


#: The one line ``--backend ray`` gives when Ray is not installed.
RAY_MISSING = "--backend ray needs Ray: pip install 'edgetwin[ray]'"


def _import_ray() -> Any:
    """``import ray``, or the one-line :data:`RAY_MISSING` error (Ray is an optional extra)."""
    try:
        import ray
    except ImportError:
        raise ScenarioError(RAY_MISSING) from None
    return ray


class RayBackend:
    """One Ray task per run (``num_cpus=1``); the driver stores each record as it comes back.

    With no address (and no ``RAY_ADDRESS``) it starts a local Ray with ``num_cpus=workers``
    (default: Ray's, the CPU count) and one BLAS thread per worker, and shuts it down when the
    runs are done, failed or were interrupted. With an address it connects to that cluster
    (EdgeTwin must be installed on its nodes) and disconnects at the end; ``workers`` then caps
    the tasks in flight. A Ray session the caller started already is used and left running.

    Args:
        workers: Local Ray's CPUs, or the tasks in flight on a cluster; ``None``: no cap.
        address: A Ray cluster's address (``ray://HOST:10001`` or ``HOST:6379``, ``auto``);
            default ``RAY_ADDRESS``, else a new local Ray.

    Raises:
        ScenarioError: Ray is not installed (:data:`RAY_MISSING`).
    """

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        self._ray = _import_ray()
        self.workers = None if workers is None else max(1, int(workers))
        self.address = address or os.environ.get("RAY_ADDRESS") or None

    def _init(self) -> None:
        import logging

        ray = self._ray
        quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if self.address is not None:
            ray.init(address=self.address, **quiet)
            return
        with _one_blas_thread_per_worker():  # the workers copy the environment when started
            ray.init(address="local", num_cpus=self.workers, include_dashboard=False, **quiet)

    def run(self, tasks: Sequence[_Task | _BatchTask], done: Callable[[], None]) -> None:
        """Run every task; on an error, Ctrl-C or SIGTERM the tasks in flight are cancelled."""
        if not tasks:  # a resumed sweep with nothing missing starts no Ray
            return
        ray = self._ray
        owned = not ray.is_initialized()
        if owned:
            self._init()
        pending: dict[Any, _Task | _BatchTask] = {}
        try:
            remote = ray.remote(num_cpus=1)(_compute_records)
            cap = self.workers if self.address is not None and self.workers else len(tasks)
            queue = list(reversed(tasks))  # pop() from the end: submitted in sweep order
            while queue or pending:
                while queue and len(pending) < cap:
                    task = queue.pop()
                    pending[remote.remote(task)] = task
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    task = pending.pop(ref)
                    for record, path in zip(ray.get(ref), _paths(task), strict=True):
                        _store_run(record, path)
                    done()
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        finally:
            if owned:
                ray.shutdown()


def make_backend(name: str, workers: int | None = None, address: str | None = None) -> Backend:
    """The backend called ``name`` (see :data:`BACKENDS`).

    Args:
        name: ``"local"`` (a process pool) or ``"ray"`` (:class:`RayBackend`).
        workers: Worker processes of the local pool, default ``min(2, CPU count)``; with Ray,
            the local Ray's CPUs or the tasks in flight on a cluster.
        address: A Ray cluster's address (``--backend ray`` only; default ``RAY_ADDRESS``).

    Raises:
        ScenarioError: An unknown backend, ``address`` without Ray, or ``"ray"`` when Ray is
            not installed (one line: :data:`RAY_MISSING`).
    """
    if name == "ray":
        return RayBackend(workers, address)
    if name != "local":
        raise ScenarioError(f"unknown backend {name!r}; allowed: {', '.join(BACKENDS)}")
    if address is not None:
        raise ScenarioError("--address applies to --backend ray only")
    return LocalBackend(workers if workers is not None else min(2, os.cpu_count() or 1))


# ----------------------------------------------------------------------------------------
# The sweep folder
# ----------------------------------------------------------------------------------------
def _check_sweep_dir(path: str | Path) -> Path:
    """Check that ``path`` is a new folder, an empty one or a sweep's; returns it absolute.

    Raises:
        ScenarioError: An empty path, a file, a folder that is not a sweep's (so nothing a user
            made is written into), or a parent that cannot be written.
    """
    if not str(path).strip():
        raise ScenarioError("sweep folder is an empty string (--out ''); give a folder path")
    target = Path(os.path.abspath(Path(path).expanduser()))
    if target.exists() and not target.is_dir():
        raise ScenarioError(f"--out {str(path)!r} is a file; a sweep writes a folder")
    if target.is_dir() and any(target.iterdir()) and not (target / SWEEP_MARKER).is_file():
        raise ScenarioError(
            f"--out {str(path)!r} exists and is not a sweep folder (no {SWEEP_MARKER} file); "
            "refusing to write into it: give a new or empty folder, or an earlier sweep's"
        )
    check_creatable(target.parent, "sweep folder")
    return target


def _owned(target: Path) -> set[str]:
    """The output files the marker says EdgeTwin wrote (relative paths)."""
    try:
        data = json.loads((target / SWEEP_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    files = data.get("files") if isinstance(data, dict) else None
    return set(files) if isinstance(files, list) else set()


def _mark(target: Path, files: set[str]) -> None:
    record = {"format": "edgetwin-sweep/1", "files": sorted(files)}
    _write_text(target / SWEEP_MARKER, json.dumps(record, indent=1) + "\n")


def _check_not_users(target: Path, names: Sequence[str]) -> None:
    """Refuse to overwrite a file of a user's that has one of the output ``names``."""
    owned = _owned(target)
    theirs = [n for n in names if (target / n).exists() and n not in owned]
    if theirs:
        raise ScenarioError(
            f"{target} holds {', '.join(theirs)}, which this sweep did not write; refusing to "
            "overwrite: move it away or give another --out"
        )


def _load_run(path: Path, key: str) -> dict[str, Any] | None:
    """A stored run, or ``None`` when missing, unreadable or not this key's (run it again)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and record.get("format") == RUN_FORMAT
    return record if ok and record.get("key") == key else None


# ----------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------
def _axis_column(values: Sequence[Any]) -> list[Any]:
    """An axis column parquet can hold: numbers stay numbers; mixed kinds become strings."""
    kinds = {
        "bool"
        if isinstance(v, bool)
        else "num"
        if isinstance(v, int | float)
        else "str"
        if isinstance(v, str)
        else "other"
        for v in values
    }
    if len(kinds) == 1 and kinds <= {"bool", "num", "str"}:
        return list(values)
    return [v if isinstance(v, str) else json.dumps(v, default=str) for v in values]


def tidy_results(plan: SweepPlan, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run × metric, in sweep order (see the module docstring for the columns)."""
    cols: dict[str, list[Any]] = {a: [] for a in plan.axes}
    cols.update({c: [] for c in _RUN_COLUMNS})
    for run, record in zip(plan.runs, records, strict=True):
        for metric, value in record["metrics"].items():
            for axis, v in zip(plan.axes, run.point, strict=True):
                cols[axis].append(v)
            cols["policy_set"].append(run.label)
            cols["seed"].append(run.seed)
            cols["metric"].append(metric)
            cols["value"].append(math.nan if value is None else float(value))
            cols["key"].append(run.key)
    for axis in plan.axes:
        cols[axis] = _axis_column(cols[axis])
    df = pd.DataFrame(cols)
    df["seed"] = df["seed"].astype(np.int64)
    df["value"] = df["value"].astype(np.float64)
    return df


def summarize_sweep(tidy: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """n, mean, std and 95 % CI half-width (Student t over seeds) per grid point × set × metric."""
    by = [*axes, "policy_set", "metric"]
    rows = []
    for group, sub in tidy.groupby(by, sort=False):
        n, mean, std, half = mean_ci(sub["value"].to_numpy())
        rows.append(
            {**dict(zip(by, group, strict=True)), "n": n, "mean": mean, "std": std}
            | {"ci95_half_width": half}
        )
    return pd.DataFrame(rows, columns=[*by, "n", "mean", "std", "ci95_half_width"])


def paired_differences(tidy: pd.DataFrame, axes: Sequence[str], baseline: str) -> pd.DataFrame:
    """Each set minus ``baseline``, paired by seed, per grid point and metric, with a 95 % CI.

    Pairing by seed removes the variance the sets share (common random numbers), so the CI
    of the difference is much narrower than the two sets' CIs suggest.

    Returns:
        The grid-axis columns, ``policy_set``, ``baseline``, ``metric``, ``n`` (seeds paired),
        ``mean_diff``, ``std_diff``, ``ci95_half_width``, ``mean_baseline``.
    """
    on = [*axes, "seed", "metric"]
    base = tidy.loc[tidy["policy_set"] == baseline, [*on, "value"]]
    other = tidy.loc[tidy["policy_set"] != baseline, [*on, "policy_set", "value"]]
    merged = other.merge(base, on=on, suffixes=("", "_base"), how="inner")
    merged["diff"] = merged["value"] - merged["value_base"]
    by = [*axes, "policy_set", "metric"]
    columns = [*axes, "policy_set", "baseline", "metric", "n", "mean_diff", "std_diff"]
    columns += ["ci95_half_width", "mean_baseline"]
    rows = []
    for group, sub in merged.groupby(by, sort=False):
        n, mean, std, half = mean_ci(sub["diff"].to_numpy())
        key = dict(zip(by, group, strict=True))
        rows.append(
            {**key, "baseline": baseline, "n": n, "mean_diff": mean, "std_diff": std}
            | {"ci95_half_width": half, "mean_baseline": float(sub["value_base"].mean())}
        )
    return pd.DataFrame(rows, columns=columns)


# ----------------------------------------------------------------------------------------
# The sweep
# ----------------------------------------------------------------------------------------
def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    part = path.with_name(path.name + ".part")
    df.to_parquet(part, index=False)
    os.replace(part, path)


def _write_plots(target: Path, plan: SweepPlan, summary: pd.DataFrame) -> list[str]:
    """One PNG per headline metric under ``plots/``; returns their relative paths."""
    from edgetwin.scenarios import plots as plotting  # lazy: matplotlib only when plotting

    present = set(summary["metric"])
    metrics = [m for m in HEADLINE_METRICS if m in present]
    names = [f"plots/{m}.png" for m in metrics]
    (target / "plots").mkdir(exist_ok=True)
    labels = [s.label for s in plan.sets]
    for metric, name in zip(metrics, names, strict=True):
        plotting.metric_vs_axis(
            summary, plan.axes, labels, metric, target / name, title=f"{plan.config.name}: {metric}"
        )
    return names


def sweep(
    plan: SweepPlan,
    out_dir: str | Path,
    backend: Backend | None = None,
    *,
    progress: bool = False,
    plots: bool | None = None,
    notify: Callable[[str], None] | None = None,
    batch: bool = True,
) -> pd.DataFrame:
    """Run the runs of ``plan`` not stored yet, then write the sweep's tables and plots.

    Args:
        plan: From :func:`plan_sweep`.
        out_dir: The sweep folder: new, empty, or an earlier sweep's (then resumed).
        backend: Who runs the runs; default :func:`make_backend` ``("local")``.
        progress: Show a progress bar (runs done / to do, time left) on stderr.
        plots: Write the plots; default ``plan.config.output.plots``.
        notify: Called with one line when stored runs are reused.
        batch: Run the seeds of a lock-step radio scenario's grid point and policy set as cell
            batches (``scenarios/batch_run.py``; at most one per worker) rather than one task
            per run. The stored records are the same (``wall_s`` apart).

    Returns:
        The tidy results (as ``results.parquet``).

    Raises:
        ScenarioError: A bad ``out_dir``, before anything runs.
    """
    target = _check_sweep_dir(out_dir)
    backend = backend if backend is not None else make_backend("local")
    plots = plan.config.output.plots if plots is None else plots
    outputs = ["results.parquet", "summary.csv", "paired.csv", "sweep.json"]
    if target.exists():  # before hours of running, not after
        _check_not_users(target, outputs + [f"plots/{m}.png" for m in HEADLINE_METRICS])
    runs_dir = target / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    if not (target / SWEEP_MARKER).is_file():
        _mark(target, set())

    # A key can appear twice (two sets with the same effective policies): run it once.
    todo: dict[str, _Task] = {}
    for run in plan.runs:
        path = runs_dir / f"{run.key}.json"
        if run.key in todo or _load_run(path, run.key) is not None:
            continue
        point = dict(zip(plan.axes, run.point, strict=True))
        todo[run.key] = _Task(run.config, run.policies, run.seed, run.key, path, point)
    n_total = len({r.key for r in plan.runs})
    n_reused = n_total - len(todo)
    if n_reused and notify:
        notify(
            f"resuming {target}: {n_reused} of {n_total} runs already stored, {len(todo)} to run"
        )

    start = time.perf_counter()
    # Seeds of a lock-step radio scenario run as cell batches (same records, less wall time).
    n_parallel = getattr(backend, "workers", None) or os.cpu_count() or 1
    items = _batch_items(list(todo.values()), n_parallel) if batch else list(todo.values())
    with (
        _sigterm_raises(),
        _progress_bar(
            progress and bool(items), f"{plan.config.name}: sweep", total=len(items)
        ) as update,
    ):
        count = itertools.count(1)
        backend.run(items, lambda: update(next(count)) if update else None)
    wall_s = time.perf_counter() - start

    records = []
    for run in plan.runs:
        record = _load_run(runs_dir / f"{run.key}.json", run.key)
        if record is None:  # a backend that returned without storing it: a bug, say so
            raise RuntimeError(f"run {run.key} was not stored by the backend")
        records.append(record)
    tidy = tidy_results(plan, records)
    summary = summarize_sweep(tidy, plan.axes)
    owned = _owned(target)
    _write_parquet(tidy, target / "results.parquet")
    _write_text(target / "summary.csv", summary.to_csv(index=False))
    written = set(outputs)
    if plan.baseline is not None and len(plan.sets) > 1:
        paired = paired_differences(tidy, plan.axes, plan.baseline)
        _write_text(target / "paired.csv", paired.to_csv(index=False))
    else:
        written.discard("paired.csv")
    meta = {
        "scenario": plan.config.name,
        "grid": {a: list(v) for a, v in zip(plan.axes, plan.values, strict=True)},
        "policy_sets": {s.label: {f: r.label for f, r in s.policies.items()} for s in plan.sets},
        "seeds": list(plan.seeds),
        "baseline": plan.baseline,
        "n_runs": n_total,
        "runs_reused": n_reused,
        "wall_s_this_call": wall_s,
        "backend": type(backend).__name__,
        "versions": versions(),
        "git_commit": git_commit(),
    }
    _write_text(target / "sweep.json", json.dumps(_jsonable(meta), indent=2) + "\n")
    if plots:
        written |= set(_write_plots(target, plan, summary))
    _mark(target, owned | written)
    return tidy
