"""The shipped checkpoints: present, self-describing, reproducible, and better than PF on nr_cell.

The README's B0/A1/A2/Full table (10 seeds × 2 s) has the full controller ahead of PF + equal
power on every seed; here a shorter version of that claim guards the shipped artifact.
"""

from __future__ import annotations

import shlex

import pytest
import torch

from edgetwin.agents.rl.checkpoint import load_policy_checkpoint
from edgetwin.agents.rl.shipped import resolve_checkpoint, shipped_checkpoints
from edgetwin.scenarios.builder import build
from edgetwin.scenarios.load import load_scenario

EXPECTED = {"nr_cell_mappo": {"prb", "power"}, "nr_cell_ppo_prb": {"prb"}}


def test_shipped_checkpoints_describe_how_they_were_made():
    shipped = shipped_checkpoints()
    assert set(EXPECTED) <= set(shipped)
    for name, families in EXPECTED.items():
        ckpt = load_policy_checkpoint(shipped[name])
        assert set(ckpt["actors"]) == families
        assert ckpt["max_ue"] == 20
        assert ckpt["n_prb"] == 51
        command = ckpt["meta"]["command"]
        assert command.startswith("edgetwin train ")
        assert "--seed" in shlex.split(command)


def test_a_shipped_name_resolves_and_an_unknown_one_lists_the_names():
    assert resolve_checkpoint("nr_cell_mappo") == shipped_checkpoints()["nr_cell_mappo"]
    with pytest.raises(FileNotFoundError, match=r"shipped: .*nr_cell_mappo"):
        resolve_checkpoint("nr_cell_mapo")


def _cell_throughput(policies, seed):
    config = load_scenario("nr_cell", ["duration_s=1.0"])
    sim = build(config, policies=policies, seed=seed)
    sim.run()
    return sim.results().summary["cell_throughput_mbps"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_controller_beats_pf_with_equal_power(seed):
    """Same seed = same drop, channels and HARQ draws (common random numbers)."""
    full = {"prb": "ppo:nr_cell_mappo", "power": "ppo:nr_cell_mappo"}
    b0 = {"prb": "pf", "power": "equal"}
    assert _cell_throughput(full, seed) > _cell_throughput(b0, seed)


@pytest.mark.slow
def test_mappo_checkpoint_is_reproduced_by_its_command(tmp_path):
    """Retraining with the recorded command gives the shipped tensors bit for bit (~90 s)."""
    from edgetwin.agents.rl.mappo import train_curriculum

    shipped = load_policy_checkpoint(shipped_checkpoints()["nr_cell_mappo"])
    meta = shipped["meta"]
    out = tmp_path / "again.pt"
    train_curriculum(
        scenario=meta["scenario"],
        phases=meta["phases"],
        steps_per_phase=meta["steps_per_phase"],
        seed=meta["seed"],
        episode_s=meta["episode_s"],
        out=out,
        log=lambda _: None,
    )
    again = load_policy_checkpoint(out)
    for family, actor in shipped["actors"].items():
        for key, tensor in actor["state_dict"].items():
            assert torch.equal(tensor, again["actors"][family]["state_dict"][key]), (family, key)
