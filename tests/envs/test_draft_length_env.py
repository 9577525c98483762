"""``edgetwin/DraftLength-v0`` and ``edgetwin/DraftLengthMARL-v0``: rounds, rewards, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import edgetwin.envs  # noqa: F401  (registers the ids)
from edgetwin.envs import make_marl
from edgetwin.envs.draft_length import DraftLengthEnv, draft_features, feature_names

SHORT = {"duration_s": 2.0}


def _episode(env: DraftLengthEnv, actions: list[int], seed: int = 3):
    obs, info = env.reset(seed=seed)
    out = [(obs, info)]
    for a in actions:
        obs, r, term, trunc, inf = env.step(a)
        out.append((obs, r, inf))
        assert not term
        if trunc:
            break
    return out


def test_steps_are_the_controlled_devices_rounds_and_the_reward_is_net_tokens_per_s():
    env = DraftLengthEnv(ue=None, others="fixed:k=1", energy_price=0.5, overrides=SHORT)
    out = _episode(env, [3, 0, 5, 8, 2] * 4)
    ep = env.episode
    assert ep is not None
    ue = out[0][1]["ue"]
    rounds = ep.journeys.round_table()
    mine = rounds[rounds["ue"] == ue]
    others = rounds[rounds["ue"] != ue]
    assert len(others)
    assert (others["k"] <= 1).all()  # the other devices follow fixed:k=1
    steps = out[1:]
    done = [s for s in steps if s[2]["round_s"] > 0]
    assert len(done) >= 5
    for (_obs, r, inf), (_, row) in zip(done, mine.iterrows(), strict=False):
        dur = row["end_s"] - row["start_s"]
        assert inf["k"] == row["k"]
        assert r == pytest.approx((row["tokens"] - 0.5 * row["draft_energy_j"]) / dur)
    # the actions were applied (cut to the round's cap only near the end of a request)
    asked = [3, 0, 5, 8, 2] * 4
    assert (
        list(mine["k"])[: len(done)]
        == [
            min(a, int(o[0][feature_names(8).index("k_cap")]))
            for a, o in zip(asked, out, strict=False)
        ][: len(done)]
    )


def test_fixed_controlled_ue_and_observation_features():
    env = DraftLengthEnv(ue="c0u16", overrides=SHORT)
    obs, info = env.reset(seed=1, options={"episode_seed": 1826701615})
    assert info["ue"] == "c0u16"
    assert env.observation_space.contains(obs)
    names = env.feature_names
    assert obs[names.index("k_cap")] == 8
    assert 10 < obs[names.index("draft_token_ms")] < 20  # Orin Nano Super roofline, SmolLM2
    assert obs[names.index("rtt_ms")] > 60  # 30 ms WAN each way + uplink access


def test_draft_features_pad_and_clip():
    obs = {
        "k_max": 3, "predicted_accept": np.array([0.9, 0.8, 0.7]), "uplink_bps": np.inf,
        "alpha_est": 0.6, "draft_token_s": 0.01, "draft_token_j": 0.1, "rtt_s": 0.07,
        "verify_s": np.array([0.006, 0.007, 0.007, 0.008]), "downlink_s": 0.001,
        "energy_used_j": 2.0, "battery_j": 50.0, "cloud_running": 4, "cloud_waiting": 0,
        "tokens_left": 9,
    }  # fmt: skip
    x = draft_features(obs, 8, battery_capacity_j=100.0)
    assert x.shape == (8 + 14,)
    assert x.dtype == np.float32
    names = feature_names(8)
    assert x[names.index("uplink_mbps")] == 1e6  # inf clipped to the space's bound
    assert x[names.index("predicted_accept_4")] == 0.0  # beyond this round's cap
    assert x[names.index("battery_frac")] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"energy_price": -1.0}, "energy_price must be a finite number >= 0"),
        ({"energy_price": float("nan")}, "energy_price must be a finite number >= 0"),
        ({"ue": "c9u9"}, "is not a drafting UE"),
        ({"others": "nope"}, "nope"),
        ({"scenario": "nr_cell"}, "speculative.mode"),
        ({"render_mode": "human"}, "render_mode"),
        ({"overrides": [1, 2]}, "overrides must be a dict"),
    ],
)
def test_bad_arguments_raise_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        DraftLengthEnv(**{"overrides": SHORT, **kwargs})
    assert "\n" not in str(e.value)


def test_bad_actions_and_options():
    env = gym.make("edgetwin/DraftLength-v0", overrides=SHORT)
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(1)
    env.reset(seed=0)
    for bad in (9, -1, 1.5, "2", True, np.array([1, 2])):
        with pytest.raises(ValueError, match=r"integer draft length in 0\.\.8"):
            env.step(bad)
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"episode_sed": 3})


def test_marl_every_drafting_device_is_an_agent_and_gets_its_rounds():
    e = make_marl("edgetwin/DraftLengthMARL-v0", overrides={"duration_s": 2.5})
    e.reset(seed=0)
    assert e.possible_agents == [f"c0u{u}" for u in range(20)]
    acted: dict[str, int] = {}
    got: dict[str, float] = {}
    for agent in e.agent_iter():
        _obs, r, term, trunc, _info = e.last()
        got[agent] = got.get(agent, 0.0) + r
        if term or trunc:
            e.step(None)
            continue
        acted[agent] = acted.get(agent, 0) + 1
        e.step(2)
    rounds = e.unwrapped.episode.journeys.round_table()
    assert set(rounds["ue"]) <= set(acted)
    assert (rounds["k"] <= 2).all()
    for ue, n in rounds.groupby("ue").size().items():
        assert acted[ue] >= n  # one decision per round (the last may be cut by the horizon)
        assert got[ue] > 0
