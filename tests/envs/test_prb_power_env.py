"""``edgetwin/PrbPower-v0``: horizon, fresh observations, same physics as a scenario run, errors.

The env's running episode is read through the private ``env._episode`` (its ``sim`` and
``cell``): the tests compare the env's cell with the cell of an inline scenario run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgetwin.envs.observation import prb_action_to_alloc
from edgetwin.envs.prb_power import CONTROLS, PrbPowerEnv
from edgetwin.envs.rewards import throughput_fairness
from edgetwin.scenarios.builder import build

SHORT = {"duration_s": 0.01}  # 20 slots of 0.5 ms
# bursty_cell at a lower packet rate, so that buffers empty and idle slots are skipped.
BURSTY = {"duration_s": 0.05, "traffic.packet_rate_hz": 25.0}


def _run(env: PrbPowerEnv, action: np.ndarray, seed: int) -> tuple[int, list[float], int]:
    """Reset with ``seed`` and step ``action`` until truncated: (steps, rewards, episode seed)."""
    _, info = env.reset(seed=seed)
    rewards: list[float] = []
    while True:
        _, r, terminated, truncated, _ = env.step(action)
        rewards.append(r)
        assert not terminated
        if truncated:
            return len(rewards), rewards, info["episode_seed"]


def _zeros(env: PrbPowerEnv) -> np.ndarray:
    return np.zeros(env.action_space.shape, np.float32)


class _FixedPrbAction:
    """Inline PRB policy applying one fixed env action through ``prb_action_to_alloc``."""

    def __init__(self, action: np.ndarray) -> None:
        self.action = action
        self.calls = 0

    def reset(self, *, seed: int | None = None) -> None:
        self.calls = 0

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        self.calls += 1
        return prb_action_to_alloc(self.action, obs)[None, :]


def _assert_same_cell(env: PrbPowerEnv, sim: Any) -> None:
    mine, ref = env._episode.cell, sim.components["radio"]
    np.testing.assert_array_equal(mine.m_ue, ref.m_ue)
    np.testing.assert_array_equal(mine.m_slot, ref.m_slot)
    np.testing.assert_array_equal(mine.avg_rate_bps, ref.avg_rate_bps)
    np.testing.assert_array_equal(mine.buffer_bits, ref.buffer_bits)
    assert mine.n_active_slots == ref.n_active_slots


@pytest.mark.parametrize("control", CONTROLS)
def test_truncates_exactly_at_the_horizon(control):
    env = PrbPowerEnv(control=control, overrides=SHORT)
    steps, _, _ = _run(env, _zeros(env), seed=0)
    cell = env._episode.cell
    expected = round(SHORT["duration_s"] / (1e-3 / 2**env.config.cell.numerology))
    assert steps == expected == cell.n_slot_total == cell.n_active_slots  # full buffer
    with pytest.raises(RuntimeError, match="reset"):
        env.step(_zeros(env))  # no step after truncation without a reset


def test_observations_are_fresh_arrays():
    env = PrbPowerEnv(control="power", overrides=SHORT)
    obs, _ = env.reset(seed=1)
    cell = env._episode.cell
    avg_before = cell.avg_rate_bps.copy()
    snapshot = {k: v.copy() for k, v in obs.items()}
    for v in obs.values():
        v[...] = 123.0
    np.testing.assert_array_equal(cell.avg_rate_bps, avg_before)  # the cell's state is untouched
    obs2, *_ = env.step(_zeros(env))
    assert all(not np.shares_memory(obs[k], obs2[k]) for k in obs)
    assert not (obs2["sinr_db"] == 123.0).any()
    assert snapshot["ue_mask"].sum() == obs2["ue_mask"].sum()
    # The final observation (returned at truncation) is a copy too.
    truncated = False
    last: dict[str, np.ndarray] = {}
    while not truncated:
        last, _, _, truncated, _ = env.step(_zeros(env))
    assert not any(np.shares_memory(last[k], env._last_obs[k]) for k in last)


def test_zero_power_actions_reproduce_equal_power():
    env = PrbPowerEnv(control="power", overrides={"duration_s": 0.03})
    _, _, seed = _run(env, _zeros(env), seed=3)
    sim = build(env.config, policies={"prb": "pf", "power": "equal"}, seed=seed)
    sim.run()
    _assert_same_cell(env, sim)


def test_reset_option_episode_seed_replays_a_scenario_seed():
    """``options={"episode_seed": S}``: the same physics as ``edgetwin run --seed S``."""
    env = PrbPowerEnv(control="power", overrides={"duration_s": 0.03})
    _, info = env.reset(seed=11, options={"episode_seed": 5})
    assert info["episode_seed"] == 5
    truncated = False
    while not truncated:
        *_, truncated, _ = env.step(_zeros(env))
    sim = build(env.config, policies={"prb": "pf", "power": "equal"}, seed=5)
    sim.run()
    _assert_same_cell(env, sim)
    for bad in ({"episode_seed": -1}, {"episode_seed": 1.5}, {"episode_seed": True}):
        with pytest.raises(ValueError, match="non-negative integer"):
            env.reset(options=bad)


def test_fixed_prb_action_reproduces_the_inline_policy():
    env = PrbPowerEnv(control="prb", overrides={"duration_s": 0.03})
    action = np.random.default_rng(11).uniform(-1, 1, env.action_space.shape).astype(np.float32)
    steps, _, seed = _run(env, action, seed=4)
    policy = _FixedPrbAction(action)
    sim = build(env.config, policies={"prb": policy, "power": "equal"}, seed=seed)
    sim.run()
    _assert_same_cell(env, sim)
    assert policy.calls == steps


def test_reward_is_throughput_fairness_of_the_smoothed_rates():
    env = PrbPowerEnv(control="joint", overrides=SHORT)
    env.reset(seed=2)
    t_ref = env._episode.cell.peak_rate_bps
    assert env.t_ref_bps == t_ref
    for _ in range(5):
        _, r, _, _, info = env.step(env.action_space.sample())
        rates = env._episode.avg_rate_bps
        assert r == throughput_fairness(rates, t_ref)
        assert info["cell_throughput_bps"] == pytest.approx(rates.sum())
    env = PrbPowerEnv(control="joint", overrides=SHORT, reward_kwargs={"lam": 0.2}, t_ref_bps=1e8)
    env.reset(seed=2)
    _, r, *_ = env.step(_zeros(env))
    assert r == throughput_fairness(env._episode.avg_rate_bps, 1e8, lam=0.2)


def test_bursty_traffic_skips_idle_slots_and_truncates():
    env = PrbPowerEnv(scenario="bursty_cell", control="joint", overrides=BURSTY)
    steps, rewards, seed = _run(env, _zeros(env), seed=5)
    cell = env._episode.cell
    assert steps < cell.n_slot_total  # idle slots were skipped
    assert np.isfinite(rewards).all()
    # The steps are exactly the slots in which an inline controller is asked for PRBs.
    policy = _FixedPrbAction(np.zeros(env.max_ue))
    sim = build(env.config, policies={"prb": policy, "power": "equal"}, seed=seed)
    sim.run()
    assert policy.calls == steps
    _assert_same_cell(env, sim)


def test_max_ue_padding():
    env = PrbPowerEnv(control="joint", max_ue=24, overrides=SHORT)
    obs, _ = env.reset(seed=0)
    assert env.action_space.shape == (48,)
    assert obs["ue_mask"].sum() == 20
    assert (obs["sinr_db"][20:] == 0).all()
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"control": "both"}, "allowed: prb, power, joint"),
        ({"max_ue": 5}, "max_ue=5 is below"),
        ({"reward": "nope"}, "allowed: sum_log_rate, throughput, throughput_fairness"),
        ({"reward_kwargs": {"lam": 2.0}}, "lam"),
        ({"reward_kwargs": {"gamma": 1.0}}, "bad arguments"),
        ({"scenario": "multi_cell_57"}, "allowed: 'single'"),
        ({"render_mode": "human"}, "allowed: None"),
        ({"t_ref_bps": 0.0}, "t_ref_bps"),
    ],
)
def test_bad_arguments_name_allowed_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PrbPowerEnv(**{"overrides": SHORT, **kwargs})


def test_wrong_action_shape():
    env = PrbPowerEnv(control="prb", overrides=SHORT)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))


def test_a_fresh_env_pickles_for_subprocess_vector_envs_and_rllib():
    # SubprocVecEnv pickles the env factory and RLlib pickles envs: the reward must not be a
    # closure (it is a functools.partial of a module-level function).
    import pickle

    import gymnasium as gym

    env = gym.make("edgetwin/PrbPower-v0")
    clone = pickle.loads(pickle.dumps(env))
    obs_a, _ = env.reset(seed=3)
    obs_b, _ = clone.reset(seed=3)
    for key in obs_a:
        np.testing.assert_array_equal(obs_a[key], obs_b[key])
