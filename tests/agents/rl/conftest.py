"""Fixtures of the trained-agent tests: small random checkpoints and real cell observations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from rl_helpers import NR_MAX_UE, NR_N_PRB, random_checkpoint


@pytest.fixture(scope="session")
def nr_checkpoint(tmp_path_factory) -> Path:
    """Random actors for nr_cell (max_ue 20, 51 PRBs)."""
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "nr.pt", NR_MAX_UE, NR_N_PRB)


@pytest.fixture
def nr_decisions():
    """Real (prb, power) cell observations of nr_cell: the first 5 slots, both detached."""
    from edgetwin.envs.prb_power import PrbPowerEpisode, load_cell_scenario

    config = load_cell_scenario("nr_cell", {"duration_s": 0.01})
    ep = PrbPowerEpisode(config, 3, ("prb", "power"), NR_MAX_UE)
    out = []
    for _ in range(5):
        assert ep.run_to("prb")
        prb_obs = {k: np.array(v, copy=True) for k, v in ep.request.obs.items()}
        ep.act_prb(np.zeros(NR_MAX_UE))
        assert ep.run_to("power")
        power_obs = {k: np.array(v, copy=True) for k, v in ep.request.obs.items()}
        ep.act_power(np.zeros(NR_MAX_UE))
        out.append((prb_obs, power_obs))
    return out
