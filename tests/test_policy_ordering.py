"""Scheduler orderings every wireless researcher expects, on the default scenario.

PF exploits multi-user diversity, so its cell throughput beats round robin's; max-rate starves
cell-edge UEs, so round robin's Jain index beats max-rate's (Jalali et al., VTC 2000;
Holtzman, VTC 2001). Same seeds for all three: common random numbers.
"""

import numpy as np

from edgetwin.agents import make_policy
from edgetwin.scenarios.builder import build
from edgetwin.scenarios.load import load_scenario


def _run(policy, seed):
    config = load_scenario("nr_cell", ["duration_s=1.0"])
    sim = build(config, policies={"prb": make_policy(policy)}, seed=seed)
    sim.run()
    return sim.results().summary


def test_pf_beats_rr_in_throughput_and_rr_beats_maxrate_in_fairness():
    seeds = (0, 1)
    s = {p: [_run(p, seed) for seed in seeds] for p in ("prb/pf", "prb/rr", "prb/maxrate")}

    def mean(p, k):
        return float(np.mean([r[k] for r in s[p]]))

    assert mean("prb/pf", "cell_throughput_mbps") > mean("prb/rr", "cell_throughput_mbps")
    assert mean("prb/rr", "jain_index") > mean("prb/maxrate", "jain_index")
    # and the usual sandwich: max-rate has the highest throughput, PF sits between.
    assert mean("prb/maxrate", "cell_throughput_mbps") >= mean("prb/pf", "cell_throughput_mbps")
