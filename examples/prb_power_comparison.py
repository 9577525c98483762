"""B0 / A1 / A2 / Full: the learned PRB and power controllers against PF + equal power.

Run: ``python examples/prb_power_comparison.py`` (``EDGETWIN_FAST=1`` for a quick pass, as the
test suite does). The four policy sets of arXiv 2605.02149's evaluation run on the **same seeds**
(same UE drops, channels, HARQ draws: common random numbers) of the default scenario:

* B0   = PF scheduler + equal power (the baseline),
* A1   = learned PRB agent + equal power,
* A2   = PF + learned power agent,
* Full = learned PRB agent + learned power agent,

with the shipped MAPPO checkpoint (``agents/rl/checkpoints/nr_cell_mappo.pt``, made by the
command in the README). It prints mean ± 95 % CI over seeds of cell throughput, 5th-percentile and
median UE throughput, Jain's index and BLER, and writes the comparison (tables, UE-throughput
CDF, CI panel) to ``results/prb_power_comparison``. The same from the shell::

    edgetwin compare nr_cell --seeds 10 --out results/prb_power_comparison --policies \
      B0=prb=pf+power=equal,A1=prb=ppo:nr_cell_mappo+power=equal,\
      A2=prb=pf+power=ppo:nr_cell_mappo,Full=prb=ppo:nr_cell_mappo+power=ppo:nr_cell_mappo
"""

from __future__ import annotations

import os

import pandas as pd

from edgetwin.scenarios.load import load_scenario
from edgetwin.scenarios.run import compare, summarize_comparison

FAST = os.environ.get("EDGETWIN_FAST") == "1"
CHECKPOINT = "ppo:nr_cell_mappo"
POLICY_SETS = {
    "B0": {"prb": "pf", "power": "equal"},
    "A1": {"prb": CHECKPOINT, "power": "equal"},
    "A2": {"prb": "pf", "power": CHECKPOINT},
    "Full": {"prb": CHECKPOINT, "power": CHECKPOINT},
}
METRICS = (
    "cell_throughput_mbps",
    "ue_throughput_p5_mbps",
    "ue_throughput_median_mbps",
    "jain_index",
    "bler",
)


def paired_differences(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-seed differences of every set to B0 (matched seeds), mean ± Student-t 95 % CI."""
    from scipy import stats

    by = runs.set_index(["policy_set", "seed"])
    base = by.loc["B0"]
    rows = {}
    for name in list(POLICY_SETS)[1:]:
        diff = (by.loc[name][list(METRICS)] - base[list(METRICS)]).dropna()
        n = len(diff)
        half = stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / n**0.5 if n > 1 else float("nan")
        rows[name] = [f"{m:+.3f} ± {h:.3f}" for m, h in zip(diff.mean(), half, strict=True)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(METRICS))


def main() -> pd.DataFrame:
    """Run the four policy sets on matched seeds and print mean ± 95 % CI per metric."""
    config = load_scenario("nr_cell", ["duration_s=0.2"] if FAST else [])
    seeds = range(2 if FAST else 10)
    out = None if FAST else "results/prb_power_comparison"
    runs = compare(
        config,
        list(POLICY_SETS.values()),
        seeds,
        out_dir=out,
        plots=not FAST,
        labels=list(POLICY_SETS),
    )
    table = summarize_comparison(runs)
    table = table[table["metric"].isin(METRICS)].copy()
    table["set"] = table["policy_set"]
    table["value"] = [
        f"{m:.3f} ± {h:.3f}" for m, h in zip(table["mean"], table["ci95_half_width"], strict=True)
    ]
    wide = table.pivot(index="set", columns="metric", values="value").loc[list(POLICY_SETS)]
    print("mean ± 95 % CI half-width over seeds")
    print(wide[list(METRICS)].to_string())
    print("\npaired difference to B0 on the same seed (mean ± 95 % CI half-width)")
    print(paired_differences(runs).to_string())
    if out:
        print(f"tables and plots in {out}/")
    return wide


if __name__ == "__main__":
    main()
