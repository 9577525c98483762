"""SB3 PPO smoke tests (CleanRL-style): a few hundred steps, exported, acting in a real cell."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

from edgetwin.agents import Policy  # noqa: E402
from edgetwin.agents.rl.checkpoint import (  # noqa: E402
    load_policy_checkpoint,
    save_policy_checkpoint,
)
from edgetwin.agents.rl.features import N_UE_FEATURES, ue_features  # noqa: E402
from edgetwin.agents.rl.ppo import (  # noqa: E402
    PerUEPolicy,
    export_actors,
    make_ppo,
    ppo_settings,
    train_ppo,
)
from edgetwin.agents.rl.torch_policy import TorchPolicy  # noqa: E402
from edgetwin.envs.prb_power import PrbPowerEnv  # noqa: E402

SMOKE = {"total_steps": 256, "overrides": {"duration_s": 0.02}}


@pytest.mark.parametrize("arch", ["per_ue", "flat"])
def test_train_ppo_smoke_gives_a_valid_prb_policy(tmp_path, nr_decisions, arch):
    out = tmp_path / "ppo" / "model.pt"
    policy = train_ppo(seed=1, out=out, arch=arch, **SMOKE)
    assert isinstance(policy, TorchPolicy)
    assert isinstance(policy, Policy)
    assert out.is_file()
    assert policy.kind == arch
    assert policy.meta["arch"] == arch
    assert policy.meta["steps"] == 256
    assert policy.meta["seed"] == 1
    assert "--seed 1" in policy.meta["command"]
    assert f"--arch {arch}" in policy.meta["command"]
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
    again = train_ppo(seed=1, out=tmp_path / "again.pt", arch=arch, **SMOKE)
    for (k, a), (_, b) in zip(
        policy.actor.state_dict().items(), again.actor.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k


def test_per_ue_checkpoint_records_per_position_statistics(tmp_path):
    out = tmp_path / "per_ue.pt"
    train_ppo(seed=2, out=out, arch="per_ue", total_steps=64, overrides={"duration_s": 0.01})
    rec = load_policy_checkpoint(out)["actors"]["prb"]
    assert rec["kind"] == "per_ue"
    assert rec["kwargs"] == {"n_features": N_UE_FEATURES, "hidden": 64, "n_heads": 1}
    assert rec["obs_rms"]["shape"] == [20, N_UE_FEATURES]
    assert rec["slice"] == [0, 20]


@pytest.mark.parametrize("arch", ["per_ue", "flat"])
def test_train_ppo_joint_exports_both_families(tmp_path, nr_decisions, arch):
    out = tmp_path / "joint.pt"
    prb = train_ppo(
        control="joint", arch=arch, total_steps=64, overrides={"duration_s": 0.01}, out=out
    )
    power = TorchPolicy(out, "power")
    assert (prb.slice, power.slice) == (slice(0, 20), slice(20, 40))
    assert power.zero_prb_count
    assert power.kind == arch
    if arch == "per_ue":
        assert power.actor.n_heads == 2
    prb_obs, power_obs = nr_decisions[0]
    assert prb.act(prb_obs).shape == (1, 51)
    watts = power.act(power_obs)
    assert watts.sum() == pytest.approx(float(power_obs["max_power_w"][0]))


def _env_observations(control: str, n: int = 6) -> list[dict[str, np.ndarray]]:
    """Raw env observations after random actions (varied buffers, rates, HARQ)."""
    env = PrbPowerEnv(control=control, overrides={"duration_s": 0.02})
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=11)
    out = [obs]
    for _ in range(n - 1):
        a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, *_ = env.step(a)
        out.append(obs)
    return out


@pytest.mark.parametrize("control", ["prb", "joint"])
def test_per_ue_export_acts_as_the_trained_sb3_model(tmp_path, control):
    """The exported checkpoint is the trained policy: TorchPolicy == SB3 deterministic predict."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, venv = make_ppo(
            control=control, seed=4, overrides={"duration_s": 0.02}, ppo_kwargs=ppo_settings(256)
        )
        assert isinstance(model.policy, PerUEPolicy)
        assert set(venv.obs_rms) == {"x"}  # the mask is not normalized
        model.learn(256)
        actors = export_actors(model, venv, control)
        path = save_policy_checkpoint(tmp_path / "m.pt", max_ue=20, n_prb=51, actors=actors)
        policies = [TorchPolicy(path, family) for family in actors]
        for obs in _env_observations(control):
            mask = (obs["ue_mask"] > 0).astype(np.float32)
            norm = venv.normalize_obs({"x": ue_features(obs)[None], "mask": mask[None]})
            np.testing.assert_array_equal(norm["mask"][0], mask)
            predicted, _ = model.predict(norm, deterministic=True)
            obs_t, _ = model.policy.obs_to_tensor(norm)
            with torch.no_grad():
                mean = model.policy.get_distribution(obs_t).distribution.mean[0].numpy()
            for policy in policies:
                a = policy.act_env(obs)
                np.testing.assert_array_equal(a, mean[policy.slice])
                np.testing.assert_array_equal(np.clip(a, -1, 1), predicted[0][policy.slice])
            assert np.abs(mean).max() > 0  # a non-trivial action
    finally:
        torch.set_num_threads(n_threads)


def test_per_ue_policy_optimizes_every_parameter_and_keeps_its_init():
    model, _ = make_ppo(seed=0, overrides={"duration_s": 0.01}, ppo_kwargs=ppo_settings(64))
    policy = model.policy
    optimized = {id(p) for g in policy.optimizer.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in policy.parameters()}
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert "log_std" in trainable
    assert any(n.startswith("mlp_extractor.actor.") for n in trainable)
    assert any(n.startswith("mlp_extractor.critic.") for n in trainable)
    assert "mlp_extractor.actor.log_std" not in trainable  # SB3's log_std is the trained one
    assert policy.log_std.shape == (20,)
    torch.testing.assert_close(policy.log_std.detach(), torch.full((20,), float(np.log(0.2))))
    # The actor's output layer keeps its small init (no SB3 orthogonal re-init).
    assert float(policy.nets.actor.head[1].weight.detach().abs().max()) < 0.05


def test_train_ppo_rejects_bad_arguments():
    with pytest.raises(ValueError, match="allowed: prb, power, joint"):
        train_ppo(control="both", total_steps=8)
    with pytest.raises(ValueError, match="allowed: per_ue, flat"):
        train_ppo(arch="gnn", total_steps=8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="total_steps"):
        train_ppo(total_steps=0)
