"""Compare request schedulers on a serving scenario under common random numbers.

``edgetwin compare SERVING.yaml --policies serve=fcfs,serve=sjf --seeds 3`` runs every
(scheduler, seed) pair of a serving scenario (a YAML with ``serving:``, see
:mod:`edgetwin.scenarios.serving_schema`). One seed gives every scheduler the same workload —
the same arrival times and token lengths, drawn from that seed's streams (a trace is the same
anyway) — and the same routing draws, so the differences on one seed are due to the schedulers
alone (common random numbers), and differences paired by seed have narrow CIs.

The result directory is written atomically (:func:`~edgetwin.scenarios.run.atomic_dir`; a
directory that is not an EdgeTwin result is refused before anything runs):

* ``runs.parquet`` / ``runs.csv``: one row per policy set × seed: ``policy_set``, ``seed``,
  ``policy.serve`` (the registered id), the run's metrics (TTFT/TPOT/E2E/queueing mean, p50,
  p90, p99 in s, throughput, SLO attainment, goodput, KV usage, ...) and ``wall_s``;
* ``summary.csv``: mean, std and 95 % CI half-width (Student t over seeds) per set and metric
  (:func:`~edgetwin.scenarios.run.summarize_comparison`);
* ``paired.csv``: each set minus the first (the baseline), paired by seed, with a 95 % CI
  (:func:`~edgetwin.scenarios.sweep.paired_differences`);
* ``runs/<set>/seed<N>/requests.parquet``: the request table of each run, written by the run
  as soon as it ends (so memory holds one run's requests at a time, not all of them);
* ``config.resolved.yaml`` and ``summary.json`` (sets, seeds, cost model, versions).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from edgetwin.scenarios.run import (
    _jsonable,
    _one_blas_thread_per_worker,
    _progress_bar,
    _safe,
    _stop_pool,
    _write_table,
    _write_text,
    atomic_dir,
    check_output_dir,
    git_commit,
    metric_values,
    summarize_comparison,
    versions,
)
from edgetwin.scenarios.serving_schema import ServingScenarioConfig

__all__ = [
    "SERVE_FAMILY",
    "SERVING_METRICS",
    "ServingComparison",
    "compare_serving",
    "resolve_serving_sets",
]

#: The one decision family of a serving scenario: the request scheduler of every replica.
SERVE_FAMILY: Final[str] = "serve"

#: Headline metrics of a serving comparison, in display order (seconds, req/s, fractions).
SERVING_METRICS: Final[tuple[str, ...]] = (
    "ttft_mean_s",
    "ttft_p50_s",
    "ttft_p90_s",
    "ttft_p99_s",
    "tpot_mean_s",
    "tpot_p90_s",
    "e2e_mean_s",
    "e2e_p90_s",
    "queueing_mean_s",
    "throughput_rps",
    "throughput_tokens_per_s",
    "slo_attainment",
    "goodput_rps",
    "n_finished",
    "n_preemptions",
)

#: Summary entries that echo the configuration rather than measure the scheduler.
_CONFIG_ECHOES: Final[frozenset[str]] = frozenset({"ttft_slo_s", "tpot_slo_s", "kv_blocks"})


@dataclass(frozen=True)
class ServingComparison:
    """Result of :func:`compare_serving`.

    Attributes:
        runs: One row per policy set × seed (see the module docstring).
        summary: Mean ± CI per set and metric (``summarize_comparison``'s long table).
        paired: Each set minus ``baseline`` paired by seed (``paired_differences``' table;
            empty with one set).
        baseline: Label of the first set.
        out_dir: The result directory, ``None`` when nothing was written.
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    paired: pd.DataFrame
    baseline: str
    out_dir: Path | None


def _allowed() -> str:
    from edgetwin.agents import policy_ids

    return ", ".join(policy_ids(SERVE_FAMILY)) or "none"


def resolve_serving_sets(
    policy_sets: Sequence[Mapping[str, str]],
    labels: Sequence[str | None] | None = None,
    scenario: str = "the serving scenario",
) -> list[tuple[str, str]]:
    """Check the policy sets of a serving comparison; returns ``(label, serve policy id)``.

    Args:
        policy_sets: As :func:`edgetwin.scenarios.run.parse_named_policy_sets` gives them:
            one mapping family → policy per set; only the ``serve`` family applies.
        labels: A name per set (``None`` entries: ``serve=<short id>``).
        scenario: Named in error messages.

    Raises:
        ValueError: One line for no set, another family, a set without ``serve``, keyword
            arguments, a label given twice, or (``PolicyRegistryError``) an unknown id — each
            listing the allowed values.
    """
    from edgetwin.scenarios.schema import check_policy_id, split_policy_string

    if not policy_sets:
        raise ValueError("compare needs at least one policy set, e.g. serve=fcfs,serve=sjf")
    if labels is not None and len(labels) != len(policy_sets):
        raise ValueError(f"{len(labels)} labels for {len(policy_sets)} policy sets")
    out: list[tuple[str, str]] = []
    for i, given in enumerate(policy_sets):
        other = [f for f in given if f != SERVE_FAMILY]
        if other:
            raise ValueError(
                f"policy family {other[0]!r} does not apply to {scenario} (a serving "
                f"scenario); its only family is {SERVE_FAMILY!r} (request scheduler), "
                f"allowed: {_allowed()}; e.g. --policies serve=fcfs,serve=sjf"
            )
        if SERVE_FAMILY not in given:
            raise ValueError(
                f"a policy set names no {SERVE_FAMILY!r} policy; allowed: {_allowed()}"
            )
        text = str(given[SERVE_FAMILY])
        name, kwargs = split_policy_string(text)
        if kwargs:
            raise ValueError(
                f"{SERVE_FAMILY} policy {text!r}: request schedulers take no arguments; "
                f"allowed: {_allowed()}"
            )
        policy_id = check_policy_id(name, SERVE_FAMILY)
        given_label = labels[i] if labels is not None else None
        label = given_label or f"{SERVE_FAMILY}={policy_id.removeprefix(SERVE_FAMILY + '/')}"
        if label in (lbl for lbl, _ in out):
            raise ValueError(f"policy set {label!r} is given twice")
        out.append((label, policy_id))
    return out


@dataclass(frozen=True)
class _ServingJob:
    config: ServingScenarioConfig
    """The scenario with this run's seed."""
    label: str
    scheduler: str
    dest: Path | None
    """Folder for this run's ``requests.parquet``; ``None`` writes nothing."""


def _run_serving_job(job: _ServingJob) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run (top-level, so that pool workers can unpickle it): its row and cost model.

    The request table is written to ``job.dest`` here and dropped, so neither the parent nor a
    worker holds more than one run's requests.
    """
    from edgetwin.scenarios.serve import simulate

    run = simulate(job.config, scheduler=job.scheduler)
    row: dict[str, Any] = {
        "policy_set": job.label,
        "seed": job.config.seed,
        f"policy.{SERVE_FAMILY}": run.scheduler,
    }
    row.update({k: v for k, v in metric_values(run.summary).items() if k not in _CONFIG_ECHOES})
    row["wall_s"] = run.wall_s
    if job.dest is not None:
        job.dest.mkdir(parents=True, exist_ok=True)
        _write_table(run.requests, job.dest / "requests.parquet")
    return row, run.cost_model


def _paired(runs: pd.DataFrame, metrics: Sequence[str], baseline: str) -> pd.DataFrame:
    """The sweep's ``paired_differences`` on ``metrics`` of ``runs`` (no grid axes)."""
    from edgetwin.scenarios.sweep import paired_differences

    tidy = runs.melt(
        id_vars=["policy_set", "seed"],
        value_vars=list(metrics),
        var_name="metric",
        value_name="value",
    )
    tidy["value"] = tidy["value"].astype("float64")
    return paired_differences(tidy, [], baseline)


def compare_serving(
    config: ServingScenarioConfig,
    policy_sets: Sequence[Mapping[str, str]],
    seeds: Sequence[int],
    out_dir: str | Path | None = None,
    workers: int | None = None,
    *,
    labels: Sequence[str | None] | None = None,
    progress: bool = False,
    notify: Callable[[str], None] | None = None,
) -> ServingComparison:
    """Run every request scheduler on every seed of a serving scenario and tabulate metrics.

    Args:
        config: The validated serving scenario (its ``seed`` is replaced by each seed).
        policy_sets: One mapping ``{"serve": id or short name}`` per set, e.g.
            ``[{"serve": "fcfs"}, {"serve": "sjf"}]`` (see :func:`resolve_serving_sets`).
        seeds: The seeds every set runs with (distinct, in ``0..MAX_SEED``).
        out_dir: Result directory (written atomically, see the module docstring); ``None``
            writes nothing.
        workers: Worker processes; default 1 (a serving run is short next to a worker's start).
            Results are identical serial or parallel (``wall_s`` aside).
        labels: A name per set for the tables (``None`` entries: ``serve=<short id>``).
        progress: Show a progress bar (runs done) on stderr.
        notify: Called with one line when an existing result is replaced.

    Returns:
        The per-run table, the summary and the paired differences against the first set.

    Raises:
        ValueError: Bad sets (:func:`resolve_serving_sets`), empty or duplicate seeds, or a bad
            ``out_dir`` — all before anything runs.
    """
    from edgetwin.scenarios.sweep import _check_seeds

    if not isinstance(config, ServingScenarioConfig):
        raise TypeError(f"config must be a ServingScenarioConfig, got {type(config).__name__}")
    resolved = resolve_serving_sets(policy_sets, labels, repr(config.name))
    seed_list = list(_check_seeds(seeds))
    target = None if out_dir is None else check_output_dir(out_dir)  # fail before running
    n_jobs = len(resolved) * len(seed_list)
    workers = 1 if workers is None else max(1, min(int(workers), n_jobs))
    baseline = resolved[0][0]

    def jobs(root: Path | None) -> list[_ServingJob]:
        return [
            _ServingJob(
                config=config.model_copy(update={"seed": seed}),
                label=label,
                scheduler=policy_id,
                dest=None if root is None else root / "runs" / _safe(label) / f"seed{seed}",
            )
            for label, policy_id in resolved
            for seed in seed_list
        ]

    def execute(todo: list[_ServingJob]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        outputs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        with _progress_bar(progress, f"{config.name}: {n_jobs} runs", total=n_jobs) as update:
            if workers == 1:
                for j, job in enumerate(todo, 1):
                    outputs.append(_run_serving_job(job))
                    if update:
                        update(j)
                return outputs
            import multiprocessing

            pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn")
            )
            try:
                with _one_blas_thread_per_worker():  # workers start on submit
                    futures = [pool.submit(_run_serving_job, job) for job in todo]
                for j, fut in enumerate(futures, 1):
                    outputs.append(fut.result())
                    if update:
                        update(j)
            except BaseException:
                _stop_pool(pool)
                raise
            pool.shutdown()
        return outputs

    def tables(
        outputs: list[tuple[dict[str, Any], dict[str, Any]]],
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        runs = pd.DataFrame([row for row, _ in outputs])
        summary = summarize_comparison(runs)
        metrics = list(dict.fromkeys(summary["metric"]))  # the metrics summarized, in order
        return runs, summary, _paired(runs, metrics, baseline)

    t0 = time.perf_counter()
    if target is None:
        runs, summary, paired = tables(execute(jobs(None)))
        return ServingComparison(runs, summary, paired, baseline, None)

    from edgetwin.scenarios.load import dump_yaml

    with atomic_dir(target, notify) as tmp:
        outputs = execute(jobs(tmp))
        runs, summary, paired = tables(outputs)
        _write_table(runs, tmp / "runs.parquet", csv=True)
        _write_text(tmp / "summary.csv", summary.to_csv(index=False))
        _write_text(tmp / "paired.csv", paired.to_csv(index=False))
        _write_text(tmp / "config.resolved.yaml", dump_yaml(config.model_dump(mode="json")))
        meta = {
            "scenario": config.name,
            "kind": "serving-compare",
            "policy_sets": {label: policy_id for label, policy_id in resolved},
            "baseline": baseline,
            "seeds": seed_list,
            "workers": workers,
            "cost_model": outputs[0][1],
            "wall_s_total": time.perf_counter() - t0,
            "versions": versions(),
            "git_commit": git_commit(),
        }
        _write_text(
            tmp / "summary.json", json.dumps(_jsonable(meta), indent=2, allow_nan=False) + "\n"
        )
    return ServingComparison(runs, summary, paired, baseline, target)
