"""The cell-batch vector env: every member equals the single env, Gymnasium 1.x vector rules."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import edgetwin.envs  # noqa: F401  (registers the ids)
from edgetwin.envs.prb_power_vector import PrbPowerVectorEnv

ENV_ID = "edgetwin/PrbPower-v0"
SHORT = {"duration_s": 0.02}  # 40 slots: episodes end inside the tests


def _vec(n: int, **kwargs):
    kwargs.setdefault("overrides", SHORT)
    return gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)


def _assert_same_as_single_envs(control: str, overrides: dict, n: int, steps: int) -> int:
    """Step the vector env and n single envs (seeds s + i) with the same actions; count ends."""
    venv = _vec(n, control=control, overrides=overrides)
    singles = [gym.make(ENV_ID, control=control, overrides=overrides) for _ in range(n)]
    obs, info = venv.reset(seed=11)
    for i, env in enumerate(singles):
        o, inf = env.reset(seed=11 + i)
        assert inf["episode_seed"] == info["episode_seed"][i]
        for key in obs:
            np.testing.assert_array_equal(obs[key][i], o[key])
    rng = np.random.default_rng(3)
    restart = np.zeros(n, dtype=bool)
    ends = 0
    for _ in range(steps):
        actions = rng.uniform(-1.2, 1.2, venv.action_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = venv.step(actions)
        for i, env in enumerate(singles):
            if restart[i]:  # NEXT_STEP autoreset: the single env is reset by hand
                o, inf = env.reset()
                r, trunc = 0.0, False
                assert info["episode_seed"][i] == inf["episode_seed"]
            else:
                o, r, _, trunc, inf = env.step(actions[i])
                assert info["cell_throughput_bps"][i] == inf["cell_throughput_bps"]
            assert reward[i] == r  # bit for bit
            assert truncated[i] == trunc
            for key in obs:
                np.testing.assert_array_equal(obs[key][i], o[key])
        assert not terminated.any()
        restart = truncated.copy()
        ends += int(truncated.sum())
    return ends


@pytest.mark.filterwarnings("ignore:action has entries outside")
@pytest.mark.parametrize("control", ["joint", "prb", "power"])
def test_members_equal_single_envs_bit_for_bit_through_autoreset(control):
    # Full buffer, FDD: the lock-step path; 40-slot episodes, so each member restarts twice.
    ends = _assert_same_as_single_envs(control, SHORT, n=3, steps=90)
    assert ends >= 6


@pytest.mark.filterwarnings("ignore:action has entries outside")
@pytest.mark.parametrize(
    "overrides",
    [
        # Poisson arrivals: members skip idle slots independently (the per-member path)
        {"duration_s": 0.03, "traffic.kind": "poisson", "traffic.packet_rate_hz": 100.0},
        # TDD DDDSU: uplink slots pass without a decision (the per-member path)
        {"duration_s": 0.03, "cell.tdd": {"pattern": "DDDSU", "special_symbols": "10:2:2"}},
    ],
    ids=["poisson", "tdd"],
)
def test_members_at_different_slots_equal_single_envs(overrides):
    ends = _assert_same_as_single_envs("joint", overrides, n=3, steps=120)
    assert ends >= 3


def test_vector_env_follows_gymnasium_vector_conventions():
    venv = _vec(4)
    assert isinstance(venv, PrbPowerVectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    single = gym.make(ENV_ID, overrides=SHORT)
    assert venv.single_observation_space == single.observation_space
    assert venv.single_action_space == single.action_space
    obs, info = venv.reset(seed=0)
    assert venv.observation_space.contains(obs)
    assert info["_episode_seed"].all()
    assert len(set(info["episode_seed"].tolist())) == 4
    obs, reward, terminated, truncated, info = venv.step(venv.action_space.sample())
    assert venv.observation_space.contains(obs)
    assert reward.shape == terminated.shape == truncated.shape == (4,)
    assert reward.dtype == np.float64
    assert truncated.dtype == np.bool_
    assert info["_cell_throughput_bps"].all()
    assert (info["cell_throughput_bps"] > 0).all()


def test_same_seed_same_episode_and_given_episode_seeds_replay_runs():
    a, b = _vec(2), _vec(2)
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=5)
    for key in oa:
        np.testing.assert_array_equal(oa[key], ob[key])
    _, info = a.reset(options={"episode_seed": [40, 41]})
    assert info["episode_seed"].tolist() == [40, 41]
    single = gym.make(ENV_ID, overrides=SHORT)
    o, _ = single.reset(options={"episode_seed": 41})
    obs = a.unwrapped._obs if hasattr(a, "unwrapped") else a._obs
    np.testing.assert_array_equal(obs["sinr_db"][1], o["sinr_db"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_envs": 0}, r"num_envs must be an integer in \[1, 4096\]"),
        ({"num_envs": 2, "control": "both"}, "unknown control 'both'; allowed: prb, power, joint"),
    ],
)
def test_bad_constructor_arguments_are_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make_vec(ENV_ID, vectorization_mode="vector_entry_point", overrides=SHORT, **kwargs)


def test_bad_reset_and_step_arguments_are_one_line_errors():
    venv = _vec(2)
    with pytest.raises(RuntimeError, match="call reset"):
        venv.step(np.zeros(venv.action_space.shape))
    with pytest.raises(ValueError, match="seed must be None, an int or a list of 2"):
        venv.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="episode_seed must be a sequence of 2 integers"):
        venv.reset(options={"episode_seed": 3})
    with pytest.raises(ValueError, match="unknown reset option"):
        venv.reset(options={"episode_sed": [1, 2]})
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"of shape \(2, 40\), got shape \(40,\)"):
        venv.step(np.zeros(40))
    bad = np.zeros(venv.action_space.shape)
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="action of member 1 has nan at index 3"):
        venv.step(bad)


def test_two_agent_steps_equal_the_marl_env_bit_for_bit():
    # observe_power / step_power: the PRB agent, then the power agent of the same slot, as
    # PrbPowerMARL-v0's AEC agents take them.
    from edgetwin.envs import make_marl

    n = 2
    venv = _vec(n)
    marl = [make_marl("edgetwin/PrbPowerMARL-v0", overrides=SHORT) for _ in range(n)]
    obs_prev, _ = venv.reset(seed=21)
    for i, env in enumerate(marl):
        env.reset(seed=21 + i)
    rng = np.random.default_rng(5)
    restart = np.zeros(n, dtype=bool)
    for _ in range(50):
        a_prb = rng.uniform(-1, 1, (n, venv.max_ue)).astype(np.float32)
        a_pow = rng.uniform(-1, 1, (n, venv.max_ue)).astype(np.float32)
        pobs = venv.observe_power(a_prb)
        obs, reward, _, truncated, _ = venv.step_power(a_pow)
        for i, env in enumerate(marl):
            if restart[i]:
                env.reset()
                np.testing.assert_array_equal(obs["sinr_db"][i], env.observe("prb")["sinr_db"])
                continue
            np.testing.assert_array_equal(obs_prev["sinr_db"][i], env.observe("prb")["sinr_db"])
            env.step(a_prb[i])
            for key, value in env.observe("power").items():
                np.testing.assert_array_equal(pobs[key][i], value)
            env.step(a_pow[i])
            assert reward[i] == env.rewards["prb"]
            assert truncated[i] == env.truncations["prb"]
        restart = truncated.copy()
        obs_prev = obs
    with pytest.raises(RuntimeError, match="call observe_power"):
        venv.step_power(a_pow)
    venv.observe_power(a_prb)
    with pytest.raises(RuntimeError, match="observe_power\\(\\) is pending"):
        venv.step(np.zeros(venv.action_space.shape))
