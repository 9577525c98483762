"""``edgetwin/PrbPowerMARL-v0``: PettingZoo API, hierarchy within a slot, shared reward, physics.

PettingZoo's ``max_cycles_test`` does not apply: the env has no ``max_cycles`` argument (the
simulated horizon is the only time limit); instead the number of cycles is checked to equal the
number of slots of a full-buffer episode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pettingzoo.test import api_test, seed_test

from edgetwin.envs import MARL_ENVS, make_marl
from edgetwin.envs.observation import prb_action_to_alloc
from edgetwin.envs.prb_power import PrbPowerEnv
from edgetwin.envs.prb_power_marl import AGENTS, PrbPowerAECEnv, raw_env

SHORT = {"duration_s": 0.01}  # 20 slots of 0.5 ms
#: Envs whose first decision needs more simulated time (a device's first speculative round).
OVERRIDES: dict[str, dict[str, Any]] = {"edgetwin/DraftLengthMARL-v0": {"duration_s": 1.5}}
# PettingZoo's checks warn that a Dict observation is not a Box and that agent names are not
# like "player_0"; both are deliberate here.
API_WARNINGS = [
    "ignore:Observation is not a NumPy array",
    "ignore:Observation space for each agent probably",
    "ignore:We recommend agents to be named",
    "ignore:Observation numpy array is all zeros",
]


def _zeros(e: PrbPowerAECEnv) -> np.ndarray:
    return np.zeros(e.max_ue, np.float32)


@pytest.mark.filterwarnings(*API_WARNINGS)
@pytest.mark.parametrize("env_id", sorted(MARL_ENVS))
def test_pettingzoo_api_test(env_id):
    """Every registered multi-agent env passes PettingZoo's API test (parametrized over ids)."""
    api_test(make_marl(env_id, overrides=OVERRIDES.get(env_id, SHORT)), num_cycles=30)


@pytest.mark.filterwarnings(*API_WARNINGS)
@pytest.mark.parametrize("env_id", sorted(MARL_ENVS))
def test_pettingzoo_seed_test(env_id):
    seed_test(lambda: make_marl(env_id, overrides=OVERRIDES.get(env_id, SHORT)), num_cycles=30)


def test_reset_option_episode_seed():
    e = raw_env(overrides=SHORT)
    e.reset(seed=0, options={"episode_seed": 7})
    assert e.episode_seed == 7
    with pytest.raises(ValueError, match="non-negative integer"):
        e.reset(options={"episode_seed": "7"})


def test_make_marl_registry():
    e = make_marl("edgetwin/PrbPowerMARL-v0", overrides=SHORT)
    e.reset(seed=0)
    assert isinstance(e.unwrapped, PrbPowerAECEnv)
    assert e.possible_agents == list(AGENTS)
    assert "edgetwin/PrbPowerMARL-v0" in MARL_ENVS
    with pytest.raises(ValueError, match=r"did you mean 'edgetwin/PrbPowerMARL-v0'.*allowed"):
        make_marl("edgetwin/PrbPowerMarl-v0")
    with pytest.raises(ValueError, match=r"allowed: .*edgetwin/PrbPowerMARL-v0"):
        make_marl("CartPole-v1")


def _play(e: PrbPowerAECEnv, seed: int, policy: Any = None) -> dict[str, Any]:
    """One episode with ``policy(agent, obs) -> action`` (default zeros), checking each slot."""
    e.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n_prb = e.n_prb
    rewards: list[float] = []
    infos: list[dict[str, Any]] = []
    n_cycles = 0
    assert (e.observe("power")["prb_count"] == 0).all()  # no power decision yet
    while e.agents:
        agent = e.agent_selection
        obs, _, terminated, truncated, _ = e.last()
        assert not terminated
        if truncated:
            e.step(None)
            continue
        random = policy is not None
        action = rng.uniform(-1, 1, e.max_ue).astype(np.float32) if random else _zeros(e)
        if agent == "prb":
            assert obs["prb_count"].sum() == 0
            # The PRB map this action implies, from the pending decision's raw observation.
            expected = np.bincount(
                prb_action_to_alloc(action, e.episode.request.obs), minlength=e.max_ue
            )
            e.step(action)
            assert e.agent_selection == "power"
            assert e.rewards == {"prb": 0.0, "power": 0.0}  # reward only at the end of a slot
            pobs = e.observe("power")
            assert pobs["prb_count"].sum() == n_prb
            np.testing.assert_array_equal(pobs["prb_count"], expected)
        else:
            e.step(action)
            n_cycles += 1
            assert e.rewards["prb"] == e.rewards["power"]  # shared cooperative reward
            assert e.infos["prb"] == e.infos["power"]
            rewards.append(e.rewards["prb"])
            infos.append(e.infos["prb"])
            for a in AGENTS:
                if a in e._cumulative_rewards:
                    assert e._cumulative_rewards[a] == e.rewards[a]
    return {"rewards": rewards, "infos": infos, "cycles": n_cycles, "cell": e.episode.cell}


def test_hierarchy_shared_reward_and_horizon():
    e = raw_env(overrides=SHORT)
    with pytest.raises(RuntimeError, match="reset"):
        e.step(_zeros(e))
    out = _play(e, seed=1, policy="random")
    assert out["cycles"] == out["cell"].n_slot_total == 20  # one cycle per slot (full buffer)
    assert e.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        e.step(None)
    assert all(np.isfinite(out["rewards"]))


def test_last_returns_the_shared_reward_to_both_agents():
    e = raw_env(overrides=SHORT)
    e.reset(seed=0)
    e.step(_zeros(e))  # prb
    e.step(_zeros(e))  # power: end of slot 0
    r = e.rewards["prb"]
    assert r > 0
    assert e.agent_selection == "prb"
    assert e.last()[1] == r  # the PRB agent's reward since its last turn
    e.step(_zeros(e))
    assert e.agent_selection == "power"
    assert e.last()[1] == r  # the power agent's reward since its last turn (slot 0)


def test_observations_are_fresh_arrays():
    e = raw_env(overrides=SHORT)
    e.reset(seed=0)
    a = e.observe("prb")
    a["sinr_db"][...] = 99.0
    b = e.observe("prb")
    assert not (b["sinr_db"] == 99.0).all()
    assert all(not np.shares_memory(a[k], b[k]) for k in a)


def test_same_seed_same_episode():
    a = _play(raw_env(overrides=SHORT), seed=5, policy="random")
    b = _play(raw_env(overrides=SHORT), seed=5, policy="random")
    assert a["rewards"] == b["rewards"]
    np.testing.assert_array_equal(a["cell"].m_ue, b["cell"].m_ue)
    c = _play(raw_env(overrides=SHORT), seed=6, policy="random")
    assert a["rewards"] != c["rewards"]


def test_same_physics_as_the_joint_gymnasium_env():
    """Zero actions in both envs with the same seed: the same episode, slot for slot."""
    marl = _play(raw_env(overrides={"duration_s": 0.03}), seed=9)
    single = PrbPowerEnv(control="joint", overrides={"duration_s": 0.03})
    single.reset(seed=9)
    rewards, infos = [], []
    truncated = False
    while not truncated:
        _, r, _, truncated, info = single.step(np.zeros(single.action_space.shape, np.float32))
        rewards.append(r)
        infos.append(info)
    assert rewards == marl["rewards"]
    assert infos == marl["infos"]
    ref = single._episode.cell
    np.testing.assert_array_equal(marl["cell"].m_ue, ref.m_ue)
    np.testing.assert_array_equal(marl["cell"].m_slot, ref.m_slot)
    np.testing.assert_array_equal(marl["cell"].avg_rate_bps, ref.avg_rate_bps)


def test_max_ue_padding_and_spaces():
    e = raw_env(overrides=SHORT, max_ue=24)
    e.reset(seed=0)
    for a in AGENTS:
        assert e.action_space(a).shape == (24,)
        assert e.observation_space(a) is e.observation_space(a)
        assert e.observation_space(a).contains(e.observe(a))
    e.step(e.action_space("prb").sample())
    pobs = e.observe("power")
    assert pobs["prb_count"][20:].sum() == 0
    assert pobs["prb_count"].sum() == e.n_prb


def test_bad_arguments_and_actions():
    with pytest.raises(ValueError, match="allowed: 'single'"):
        raw_env(scenario="multi_cell_57")
    with pytest.raises(ValueError, match="max_ue=3 is below"):
        raw_env(overrides=SHORT, max_ue=3)
    with pytest.raises(ValueError, match="allowed"):
        raw_env(overrides=SHORT, reward="nope")
    e = raw_env(overrides=SHORT)
    e.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        e.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="None"):
        e.step(None)
