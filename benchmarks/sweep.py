"""Sweep speed: runs per wall second of a 2 x 2 x 8 sweep of ``nr_cell`` with 1 and 2 workers.

Issue 13, part 4: ``edgetwin sweep`` over ``cell.bandwidth_hz`` x ``topology.ues_per_cell`` x
8 seeds of one policy set (PF), local process pool with 1 and with 2 workers, each run ``--dur``
simulated seconds (default 1 s). The speed-up is the 1-worker wall time over the 2-worker one,
measured in the same run; the two result tables must be identical (checked). Goal: >= 1.8x on
this 2-core machine. Ray is not measured: its backend does not exist yet.

Usage: ``.venv/bin/python benchmarks/sweep.py [--dur 1.0]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from edgetwin.scenarios.load import load_scenario
from edgetwin.scenarios.sweep import make_backend, plan_sweep, sweep

GOAL = 1.8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dur", type=float, default=1.0, help="simulated seconds per run")
    args = ap.parse_args()
    config = load_scenario("nr_cell", [f"duration_s={args.dur}", "output.plots=false"])
    plan = plan_sweep(
        config,
        {"cell.bandwidth_hz": [20e6, 40e6], "topology.ues_per_cell": [10, 20]},
        [("PF", {"prb": "prb/pf"})],
        seeds=range(8),
    )
    n = len(plan.runs)
    walls: dict[int, float] = {}
    tables: dict[int, pd.DataFrame] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            t0 = time.perf_counter()
            tables[workers] = sweep(plan, Path(tmp) / f"w{workers}", make_backend("local", workers))
            walls[workers] = time.perf_counter() - t0
    same = tables[1].equals(tables[2])
    print(f"sweep of nr_cell: {n} runs of {args.dur:g} s simulated, policy set PF")
    for w, wall in walls.items():
        print(f"  {w} worker(s): {wall:7.2f} s wall, {n / wall:6.2f} runs / s")
    speedup = walls[1] / walls[2]
    verdict = "PASS" if speedup >= GOAL else "MISS"
    print(f"speed-up with 2 workers: {speedup:.2f}x (goal >= {GOAL}x): {verdict}")
    print(f"tables identical with 1 and 2 workers: {same}")


if __name__ == "__main__":
    main()
