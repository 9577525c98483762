"""``draft/ppo``: SB3 PPO on DraftLength-v0, the checkpoint, and the policy in a scenario run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from edgetwin.agents import PolicyRegistryError, make_policy
from edgetwin.agents.rl.draft import DraftPPOPolicy, main, train_draft_ppo
from edgetwin.envs.draft_length import DraftLengthEnv
from edgetwin.scenarios import build
from edgetwin.scenarios.load import load_scenario

SHORT = {"duration_s": 2.0}
SHIPPED = Path(__file__).resolve().parents[3] / "agents/rl/checkpoints/draft_length_ppo.pt"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> DraftPPOPolicy:
    out = tmp_path_factory.mktemp("draft") / "draft.pt"
    return train_draft_ppo(out, total_steps=64, n_steps=32, overrides=SHORT, seed=1)


def test_training_writes_a_loadable_checkpoint(trained):
    assert trained.path.is_file()
    assert trained.k_max == 8
    assert trained.meta["total_steps"] == 64
    assert len(trained.meta["features"]) == trained.n_features


def test_policy_contract_on_env_observations(trained):
    env = DraftLengthEnv(overrides=SHORT)
    env.reset(seed=0)
    ep = env.episode
    assert ep is not None
    assert ep.request is not None
    obs = ep.request.obs
    before = {k: np.copy(v) for k, v in obs.items()}
    policy = make_policy("draft/ppo", path=str(trained.path))
    policy.reset(seed=0)
    k = policy.act(obs)
    assert isinstance(k, int)
    assert 0 <= k <= obs["k_max"]
    for key, value in before.items():
        np.testing.assert_array_equal(obs[key], value)
    # the same action as the actor on the env's own observation vector
    assert k == min(trained.act_features(ep.features()), obs["k_max"])


def test_draft_ppo_runs_in_a_scenario(trained):
    config = load_scenario("specdec_jetson", SHORT)
    sim = build(config, {"draft": f"ppo:{trained.path}"}, seed=0)
    sim.run()
    s = sim.results().summary
    assert s["spec_rounds"] > 20


def test_bad_paths_are_one_line(tmp_path):
    with pytest.raises(PolicyRegistryError, match="needs a checkpoint"):
        make_policy("draft/ppo")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        DraftPPOPolicy(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="is not a") as e:
        DraftPPOPolicy(junk)
    assert "\n" not in str(e.value)


def test_cli_refuses_bad_steps(capsys):
    with pytest.raises(SystemExit):
        main(["--out", "x.pt", "--steps", "0"])
    assert "--steps must be a positive integer" in capsys.readouterr().err


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped draft checkpoint")
def test_shipped_checkpoint_loads_and_acts():
    policy = DraftPPOPolicy(SHIPPED)
    env = DraftLengthEnv(overrides=SHORT)
    obs, _ = env.reset(seed=0)
    assert 0 <= policy.act_features(obs) <= policy.k_max
