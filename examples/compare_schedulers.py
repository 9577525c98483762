"""Compare PRB schedulers on the default scenario under common random numbers.

Run: ``python examples/compare_schedulers.py`` (set ``EDGETWIN_FAST=1`` for a quick pass, as the
test suite does). Every scheduler sees the same channels, arrivals and HARQ draws per seed, so
the differences printed are caused by the schedulers alone.
"""

from __future__ import annotations

import os

import pandas as pd

from edgetwin.agents import make_policy
from edgetwin.scenarios.builder import build
from edgetwin.scenarios.load import load_scenario

FAST = os.environ.get("EDGETWIN_FAST") == "1"


def main() -> pd.DataFrame:
    """Run PF, round robin and max-rate on matched seeds and print the mean metrics."""
    overrides = ["duration_s=0.3"] if FAST else []
    config = load_scenario("nr_cell", overrides)
    rows = []
    for seed in range(2 if FAST else 5):
        for name in ("prb/pf", "prb/rr", "prb/maxrate"):
            sim = build(config, policies={"prb": make_policy(name)}, seed=seed)
            sim.run()
            s = sim.results().summary
            rows.append({"policy": name, "seed": seed, **{k: s[k] for k in METRICS}})
    table = pd.DataFrame(rows).groupby("policy")[list(METRICS)].mean()
    print(table.round(3).to_string())
    return table


METRICS = (
    "cell_throughput_mbps",
    "ue_throughput_p5_mbps",
    "ue_throughput_median_mbps",
    "jain_index",
    "bler",
)

if __name__ == "__main__":
    main()
