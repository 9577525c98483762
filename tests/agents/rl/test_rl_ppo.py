"""SB3 PPO smoke test (CleanRL-style): a few hundred steps, exported, acting in a real cell."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

from edgetwin.agents import Policy  # noqa: E402
from edgetwin.agents.rl.ppo import train_ppo  # noqa: E402
from edgetwin.agents.rl.torch_policy import TorchPolicy  # noqa: E402

SMOKE = {"total_steps": 256, "overrides": {"duration_s": 0.02}}


def test_train_ppo_smoke_gives_a_valid_prb_policy(tmp_path, nr_decisions):
    out = tmp_path / "ppo" / "model.pt"
    policy = train_ppo(seed=1, out=out, **SMOKE)
    assert isinstance(policy, TorchPolicy)
    assert isinstance(policy, Policy)
    assert out.is_file()
    assert policy.meta["steps"] == 256
    assert policy.meta["seed"] == 1
    assert "--seed 1" in policy.meta["command"]
    assert policy.meta["versions"]["stable_baselines3"]
    policy.reset(seed=0)
    for prb_obs, _ in nr_decisions:
        alloc = policy.act(prb_obs)
        assert alloc.shape == (1, 51)
        assert alloc.dtype == np.int64
        eligible = prb_obs["has_data"][0] & prb_obs["ue_mask"][0]
        assert (alloc >= 0).all()
        assert eligible[alloc[0]].all()
    # Same seed, same weights (deterministic on CPU).
    again = train_ppo(seed=1, out=tmp_path / "again.pt", **SMOKE)
    for (k, a), (_, b) in zip(
        policy.actor.state_dict().items(), again.actor.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k


def test_train_ppo_joint_exports_both_families(tmp_path, nr_decisions):
    out = tmp_path / "joint.pt"
    prb = train_ppo(control="joint", total_steps=64, overrides={"duration_s": 0.01}, out=out)
    power = TorchPolicy(out, "power")
    assert (prb.slice, power.slice) == (slice(0, 20), slice(20, 40))
    assert power.zero_prb_count
    prb_obs, power_obs = nr_decisions[0]
    assert prb.act(prb_obs).shape == (1, 51)
    watts = power.act(power_obs)
    assert watts.sum() == pytest.approx(float(power_obs["max_power_w"][0]))


def test_train_ppo_rejects_bad_arguments():
    with pytest.raises(ValueError, match="allowed: prb, power, joint"):
        train_ppo(control="both", total_steps=8)
    with pytest.raises(ValueError, match="total_steps"):
        train_ppo(total_steps=0)
