"""edgetwin train ppo --n-envs: SB3 on the cell batch or a SubprocVecEnv, env i seeded seed + i."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv  # noqa: E402

from edgetwin.agents.rl.batch_vec_env import CellBatchVecEnv  # noqa: E402
from edgetwin.agents.rl.checkpoint import load_policy_checkpoint  # noqa: E402
from edgetwin.agents.rl.ppo import make_ppo, train_ppo  # noqa: E402
from edgetwin.scenarios.cli import main  # noqa: E402

EPISODE = {"duration_s": 0.02}  # 40 slots of nr_cell: a few episodes end within a rollout


def _raw_reset(n_envs, seed, subproc=None, vec=None):
    _model, venv = make_ppo(seed=seed, overrides=EPISODE, n_envs=n_envs, subproc=subproc, vec=vec)
    try:
        inner = venv.unwrapped  # under VecNormalize (and Float32Rewards)
        obs = inner.reset()  # the raw observations, seeded by PPO(seed=...) as in learn()
        return type(inner), {k: np.array(v, copy=True) for k, v in obs.items()}
    finally:
        venv.close()


@pytest.mark.parametrize(("vec", "expected"), [("subproc", SubprocVecEnv), (None, CellBatchVecEnv)])
def test_env_i_is_seeded_with_seed_plus_i(vec, expected):
    kind, obs = _raw_reset(2, seed=5, vec=vec)
    assert kind is expected  # subproc: the env factory pickles to the workers
    assert obs["x"].shape[0] == 2
    assert not np.array_equal(obs["x"][0], obs["x"][1])
    for i in range(2):
        kind1, one = _raw_reset(1, seed=5 + i)
        assert kind1 is DummyVecEnv  # n_envs=1 steps its env in-process, as before
        for key in obs:
            np.testing.assert_array_equal(obs[key][i], one[key][0])


def test_cli_n_envs_2_trains_as_the_in_process_envs_would(tmp_path, capsys):
    out = tmp_path / "sub.pt"
    args = ["train", "ppo", "--steps", "256", "--episode-s", "0.02", "--seed", "3"]
    assert main([*args, "--n-envs", "2", "--out", str(out)]) == 0, capsys.readouterr().err
    assert "256 steps, 2 envs" in capsys.readouterr().out
    sub = load_policy_checkpoint(out)
    assert sub["meta"]["arguments"]["n_envs"] == 2
    assert "--n-envs 2" in sub["meta"]["command"]
    assert sub["meta"]["summary"]["episodes"] >= 2  # members restart inside the cell batch

    same = train_ppo(
        total_steps=256, seed=3, n_envs=2, subproc=False, episode_s=0.02, out=tmp_path / "d.pt"
    )
    dummy = load_policy_checkpoint(tmp_path / "d.pt")
    assert same.meta["steps"] == sub["meta"]["steps"] == 256
    a, b = sub["actors"]["prb"], dummy["actors"]["prb"]
    assert a["obs_rms"] == b["obs_rms"]
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


def test_cli_n_envs_out_of_range_is_one_line(tmp_path, capsys):
    assert main(["train", "ppo", "--n-envs", "0", "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--n-envs" in err


def test_subproc_workers_train_as_the_in_process_envs_would(tmp_path):
    a = train_ppo(
        total_steps=128, seed=4, n_envs=2, vec="subproc", episode_s=0.02, out=tmp_path / "s.pt"
    )
    b = train_ppo(
        total_steps=128, seed=4, n_envs=2, subproc=False, episode_s=0.02, out=tmp_path / "i.pt"
    )
    sa, sb = load_policy_checkpoint(tmp_path / "s.pt"), load_policy_checkpoint(tmp_path / "i.pt")
    assert a.meta["steps"] == b.meta["steps"] == 128
    for key, value in sa["actors"]["prb"]["state_dict"].items():
        assert torch.equal(value, sb["actors"]["prb"]["state_dict"][key]), key
