"""Sweep speed: runs per wall second of a 2 x 2 x 8 sweep of ``nr_cell``, local and Ray.

Issue 13, part 4: ``edgetwin sweep`` over ``cell.bandwidth_hz`` x ``topology.ues_per_cell`` x
8 seeds of one policy set (PF), each run ``--dur`` simulated seconds (default 1 s), in one run of
this script: the local process pool with 1 and with 2 workers, and ``--backend ray`` with 2
workers (a local Ray, started and shut down by the sweep as ``edgetwin sweep`` does: its start-up
is in its wall time). Each case writes a fresh sweep folder, so nothing is resumed.

Goals (PASS/MISS each):

* speed-up with 2 local workers (1-worker wall time over the 2-worker one) >= 1.8x on this
  2-core machine;
* Ray's overhead per run, (Ray wall time - 2-worker local wall time) / runs, <= 10 % of a
  1-second run (0.1 s);
* the three result tables identical (``DataFrame.equals``), as the backends promise.

With ``--repeats N`` the three cases run N times, interleaved, and each case's fastest repeat
counts (the machine is shared: noise only makes a case slower); every repeat's tables are
compared. A bare local Ray's start + shutdown is timed apart, for scale. Without Ray installed
the Ray case is reported as NOT RUN.

Usage: ``.venv/bin/python benchmarks/sweep.py [--dur 1.0] [--repeats 1] [--skip-ray]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from edgetwin.scenarios.errors import ScenarioError
from edgetwin.scenarios.load import load_scenario
from edgetwin.scenarios.sweep import make_backend, plan_sweep, sweep

GOAL_SPEEDUP = 1.8
GOAL_RAY_OVERHEAD = 0.10  # of a 1-second run


def _ray_start_stop_s() -> float:
    """Wall time of starting and shutting down a bare local Ray as the Ray backend does."""
    import ray

    backend = make_backend("ray", 2)
    t0 = time.perf_counter()
    backend._init()  # type: ignore[attr-defined]
    ray.shutdown()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dur", type=float, default=1.0, help="simulated seconds per run")
    ap.add_argument("--skip-ray", action="store_true", help="leave the Ray case out")
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        metavar="N",
        help="run the cases N times, interleaved, and keep each case's fastest (default 1)",
    )
    args = ap.parse_args()
    config = load_scenario("nr_cell", [f"duration_s={args.dur}", "output.plots=false"])
    plan = plan_sweep(
        config,
        {"cell.bandwidth_hz": [20e6, 40e6], "topology.ues_per_cell": [10, 20]},
        [("PF", {"prb": "prb/pf"})],
        seeds=range(8),
    )
    n = len(plan.runs)
    # One task per run (batch=False) for the scaling and Ray goals; then the same sweep with
    # each point's seeds as cell batches (scenarios/batch_run.py), the default of the command.
    cases = {"local, 1 worker": ("local", 1, False), "local, 2 workers": ("local", 2, False)}
    if not args.skip_ray:
        cases["ray, 2 workers"] = ("ray", 2, False)
    cases["local, 1 worker, batches"] = ("local", 1, True)
    cases["local, 2 workers, batches"] = ("local", 2, True)
    walls: dict[str, list[float]] = {}
    tables: dict[str, pd.DataFrame] = {}
    not_run: dict[str, str] = {}
    run_walls: dict[str, float] = {}  # mean simulation wall time of one run, fastest repeat
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(max(1, args.repeats)):
            for i, (name, (backend_name, workers, batch)) in enumerate(cases.items()):
                try:
                    backend = make_backend(backend_name, workers)
                except ScenarioError as exc:  # Ray not installed
                    not_run[name] = str(exc)
                    continue
                folder = Path(tmp) / f"r{r}c{i}"  # a fresh sweep folder: nothing is resumed
                t0 = time.perf_counter()
                table = sweep(plan, folder, backend, batch=batch)
                wall = time.perf_counter() - t0
                same = same and all(t.equals(table) for t in tables.values())
                tables.setdefault(name, table)
                if wall <= min(walls.get(name, [wall])):
                    records = [json.loads(p.read_text()) for p in (folder / "runs").glob("*")]
                    run_walls[name] = sum(x["wall_s"] for x in records) / len(records)
                walls.setdefault(name, []).append(wall)
    ray_fixed = _ray_start_stop_s() if "ray, 2 workers" in walls else None

    print(f"sweep of nr_cell: {n} runs of {args.dur:g} s simulated, policy set PF")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  machine: {os.cpu_count()} CPUs, load average at the end {load} (1, 5, 15 min)")
    for name in cases:
        if name in walls:
            wall = min(walls[name])
            every = " ".join(f"{w:.2f}" for w in walls[name])
            print(
                f"  {name:<25} {wall:7.2f} s wall, {n / wall:6.2f} runs / s "
                f"(one run's simulation: {run_walls[name]:.2f} s mean; repeats: {every} s)"
            )
        else:
            print(f"  {name:<25} NOT RUN: {not_run[name]}")
    best = {name: min(w) for name, w in walls.items()}
    speedup = best["local, 1 worker"] / best["local, 2 workers"]
    verdict = "PASS" if speedup >= GOAL_SPEEDUP else "MISS"
    print(f"speed-up with 2 local workers: {speedup:.2f}x (goal >= {GOAL_SPEEDUP}x): {verdict}")
    for name in ("local, 1 worker, batches", "local, 2 workers, batches"):
        if name in best:
            print(f"{name}: {best['local, 1 worker'] / best[name]:.2f}x one task per run, 1 worker")
    if "ray, 2 workers" in walls:
        over = (best["ray, 2 workers"] - best["local, 2 workers"]) / n
        verdict = "PASS" if over <= GOAL_RAY_OVERHEAD else "MISS"
        print(
            f"Ray overhead per run: {over * 1e3:+.0f} ms = {over / 1.0:+.1%} of a 1-second run "
            f"(goal <= {GOAL_RAY_OVERHEAD:.0%}): {verdict}"
        )
        assert ray_fixed is not None
        print(
            f"  for scale: a bare local Ray's start + shutdown, timed apart: {ray_fixed:.2f} s "
            f"({ray_fixed / n * 1e3:.0f} ms per run over {n} runs)"
        )
    else:
        print("Ray overhead per run: NOT RUN")
    names = list(tables)
    print(f"tables identical ({', '.join(names)}): {same}: {'PASS' if same else 'MISS'}")


if __name__ == "__main__":
    main()
