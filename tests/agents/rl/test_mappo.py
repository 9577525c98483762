"""The hierarchical MAPPO learner: curriculum phases, checkpoint contents, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgetwin.agents import make_policy
from edgetwin.agents.registry import PolicyRegistryError
from edgetwin.agents.rl.checkpoint import load_policy_checkpoint
from edgetwin.agents.rl.features import N_UE_FEATURES
from edgetwin.agents.rl.mappo import MappoConfig, train_curriculum
from edgetwin.scenarios.builder import build
from edgetwin.scenarios.load import load_scenario

TINY = MappoConfig(rollout_slots=32, epochs=2, minibatch=16, hidden=16)


def _train(tmp_path, phases, name="m.pt", seed=0):
    out = tmp_path / name
    summary = train_curriculum(
        phases=phases,
        steps_per_phase=48,
        seed=seed,
        episode_s=0.01,  # 20-slot episodes: rollouts cross episode boundaries
        out=out,
        config=TINY,
        log=lambda _: None,
    )
    return out, summary


def test_curriculum_trains_both_actors_and_loads_as_policies(tmp_path):
    out, summary = _train(tmp_path, ["prb", "power", "joint"])
    assert [p["phase"] for p in summary["phases"]] == ["prb", "power", "joint"]
    assert all(p["slots"] == 48 for p in summary["phases"])
    ckpt = load_policy_checkpoint(out)
    assert set(ckpt["actors"]) == {"prb", "power"}
    assert ckpt["max_ue"] == 20
    assert ckpt["n_prb"] == 51
    assert "edgetwin train prb-power" in ckpt["meta"]["command"]
    # The checkpoint drives a scenario run inline (the Full controller).
    config = load_scenario("nr_cell", ["duration_s=0.01"])
    sim = build(
        config,
        policies={
            "prb": make_policy("prb/ppo", path=str(out)),
            "power": make_policy("power/ppo", path=str(out)),
        },
        seed=1,
    )
    sim.run()
    s = sim.results().summary
    assert s["cell_throughput_mbps"] > 0
    assert s["prb_utilization"] == pytest.approx(1.0)  # full buffer: every PRB given out


def test_a_phase_trains_only_its_actor(tmp_path):
    out, _ = _train(tmp_path, ["prb"])
    assert set(load_policy_checkpoint(out)["actors"]) == {"prb"}
    with pytest.raises((PolicyRegistryError, ValueError), match="power"):
        make_policy("power/ppo", path=str(out)).act({})


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    a, _ = _train(tmp_path, ["prb", "joint"], "a.pt", seed=3)
    b, _ = _train(tmp_path, ["prb", "joint"], "b.pt", seed=3)
    c, _ = _train(tmp_path, ["prb", "joint"], "c.pt", seed=4)
    sa, sb, sc = (load_policy_checkpoint(p)["actors"]["prb"]["state_dict"] for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_training_changes_the_actor(tmp_path):
    """PPO steps move the PRB actor away from its initialization (the gradient is non-zero)."""
    out, _ = _train(tmp_path, ["prb"])
    torch.manual_seed(0)
    from edgetwin.agents.rl.networks import PerUEActor

    init = PerUEActor(N_UE_FEATURES, TINY.hidden)
    trained = load_policy_checkpoint(out)["actors"]["prb"]["state_dict"]
    diffs = [float((trained[k] - v).abs().max()) for k, v in init.state_dict().items()]
    assert max(diffs) > 1e-4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"phases": ["prb", "cooperate"]}, "allowed: prb, power, joint"),
        ({"phases": []}, "allowed"),
        ({"steps_per_phase": 0}, "steps_per_phase must be > 0"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    args = {"phases": ["prb"], "steps_per_phase": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        train_curriculum(**args, log=lambda _: None)


def test_per_ue_actor_sees_no_padding_effect(tmp_path):
    """A checkpoint trained with max_ue = n_ue acts identically whatever the padded rows hold."""
    out, _ = _train(tmp_path, ["prb"])
    policy = make_policy("prb/ppo", path=str(out))
    config = load_scenario("nr_cell", ["duration_s=0.005"])
    sim = build(config, policies={"prb": policy}, seed=2)
    sim.run()
    assert np.isfinite(sim.results().summary["cell_throughput_mbps"])


def test_n_envs_trains_on_the_cell_batch_deterministically(tmp_path):
    def train(name, seed):
        out = tmp_path / name
        summary = train_curriculum(
            phases=["prb", "joint"],
            steps_per_phase=48,
            seed=seed,
            episode_s=0.01,  # 20-slot episodes: cells restart inside rollouts
            out=out,
            config=TINY,
            log=lambda _: None,
            n_envs=4,
        )
        return out, summary

    a, summary = train("a.pt", 3)
    b, _ = train("b.pt", 3)
    c, _ = train("c.pt", 4)
    assert [p["slots"] for p in summary["phases"]] == [48, 48]  # 4 cells x 12 team steps
    meta = load_policy_checkpoint(a)["meta"]
    assert meta["n_envs"] == 4
    assert "--n-envs 4" in meta["command"]
    sa, sb, sc = (load_policy_checkpoint(p)["actors"]["prb"]["state_dict"] for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    sim = build(
        load_scenario("nr_cell", ["duration_s=0.01"]),
        policies={
            "prb": make_policy("prb/ppo", path=str(a)),
            "power": make_policy("power/ppo", path=str(a)),
        },
        seed=1,
    )
    sim.run()
    assert sim.results().summary["cell_throughput_mbps"] > 0
    with pytest.raises(ValueError, match="n_envs must be an integer >= 1"):
        train_curriculum(phases=["prb"], steps_per_phase=8, n_envs=0, log=lambda _: None)
