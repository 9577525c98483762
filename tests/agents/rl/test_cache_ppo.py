"""``cache/ppo``: SB3 PPO on ``edgetwin/AdapterCache-v0``, its checkpoint and where it runs.

A few hundred env steps on a small env (10 adapters, 3 slots, 100 requests per epoch): enough
to exercise training, export, loading and both places a cache policy runs; what the trained
policy is worth is measured on the shipped checkpoint (README), not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

from edgetwin.agents import PolicyRegistryError, make_policy  # noqa: E402
from edgetwin.agents.baselines.cache import keep_resident  # noqa: E402
from edgetwin.agents.rl.checkpoint import load_policy_checkpoint  # noqa: E402
from edgetwin.agents.rl.features import (  # noqa: E402
    EST_BOUND,
    N_CACHE_FEATURES,
    CacheFeatures,
    cache_features,
)
from edgetwin.agents.rl.ppo import train_ppo  # noqa: E402
from edgetwin.agents.rl.shipped import shipped_checkpoints  # noqa: E402
from edgetwin.envs import adapter_cache  # noqa: E402
from edgetwin.envs.adapter_cache import AdapterCacheEnv, action_from_scores  # noqa: E402
from edgetwin.scenarios.cli import main  # noqa: E402
from edgetwin.sim.compute.adapter_utility import (  # noqa: E402
    AdapterUtilityModel,
    simulate_adapter_serving,
)

#: A small env: 10 adapters, 3 slots, 6 epochs of 100 requests, adapters re-ranked every 300.
SMALL: dict[str, Any] = {
    "n_adapters": 10,
    "capacity": 3,
    "epoch_requests": 100,
    "n_epochs": 6,
    "drift_period": 300,
}
PPO_SMALL: dict[str, Any] = {"n_steps": 60, "batch_size": 30}


@pytest.fixture(scope="module", params=["per_ue", "flat"])
def trained(request, tmp_path_factory) -> Path:
    """A checkpoint trained for 240 steps (40 episodes) on :data:`SMALL` (a few seconds)."""
    out = tmp_path_factory.mktemp("cache_ppo") / f"{request.param}.pt"
    policy = train_ppo(
        control="cache",
        arch=request.param,
        total_steps=240,
        seed=3,
        overrides=SMALL,
        ppo_kwargs=PPO_SMALL,
        out=out,
    )
    assert policy.family == "cache"
    return out


def _env_rewards(env: AdapterCacheEnv, policy: Any, seed: int) -> np.ndarray:
    """Per-epoch rewards (cold start first) of ``policy`` in the env, via cache_policy_obs."""
    policy.reset(seed=seed)
    obs, info = env.reset(options={"episode_seed": seed})
    rewards = [info["reward"]]
    done = False
    while not done:
        action = action_from_scores(policy.act(env.cache_policy_obs(obs)))
        obs, r, _, done, _ = env.step(action)
        rewards.append(r)
    return np.asarray(rewards)


def _loop_rewards(env: AdapterCacheEnv, policy: Any, seed: int) -> tuple[np.ndarray, Any]:
    """Per-epoch net utility of ``policy`` in simulate_adapter_serving on the env's scenario."""
    policy.reset(seed=seed)
    e = env.epoch_requests
    res = simulate_adapter_serving(
        AdapterUtilityModel(env.config, seed=seed),
        cache=policy,
        router=make_policy(
            "route/cache_aware", latency_weight_per_s=env.config.latency_weight_per_s
        ),
        n_requests=(env.n_epochs + 1) * e,
        capacity=env.capacity,
        epoch_requests=e,
        load_time_s=env.load_time_s,
    )
    return res.net_reward.reshape(env.n_epochs + 1, e).mean(axis=1), res


def test_checkpoint_holds_one_cache_actor(trained):
    ckpt = load_policy_checkpoint(trained)
    assert set(ckpt["actors"]) == {"cache"}
    assert ckpt["max_ue"] == SMALL["n_adapters"]
    assert ckpt["n_prb"] == 0
    rec = ckpt["actors"]["cache"]
    assert rec["slice"] == [0, SMALL["n_adapters"]]
    rms_shape = rec["obs_rms"]["shape"]  # VecNormalize statistics exported
    assert rms_shape in ([SMALL["n_adapters"], N_CACHE_FEATURES],
                         [SMALL["n_adapters"] * N_CACHE_FEATURES])  # fmt: skip
    meta = ckpt["meta"]
    assert meta["command"].startswith("edgetwin train ppo --control cache")
    assert "--scenario" not in meta["command"]
    assert meta["scenario"] == "edgetwin/AdapterCache-v0"
    assert meta["reward"] == "net_utility"
    assert {k: meta["env_options"][k] for k in SMALL} == SMALL
    assert meta["steps"] >= 240


def test_runs_identically_in_the_env_and_in_simulate_adapter_serving(trained):
    env = AdapterCacheEnv(**SMALL)
    policy = make_policy("cache/ppo", path=str(trained))
    assert policy.policy_id == "cache/ppo"
    for seed in (0, 7):
        in_env = _env_rewards(env, policy, seed)
        in_loop, res = _loop_rewards(env, policy, seed)
        np.testing.assert_array_equal(in_env, in_loop)
        assert res.max_resident <= SMALL["capacity"]
        # same seed, a fresh policy from the same file: the same results again
        again = _env_rewards(env, make_policy("cache/ppo", path=str(trained)), seed)
        np.testing.assert_array_equal(in_env, again)


def test_the_raw_actor_output_is_the_same_action(trained):
    """Stepping the env with the actor's means (as SB3 does, deterministic) = its scores."""
    env = AdapterCacheEnv(**SMALL)
    policy = make_policy("cache/ppo", path=str(trained))
    obs, _ = env.reset(options={"episode_seed": 4})
    for _ in range(3):
        cobs = env.cache_policy_obs(obs)
        scores = policy.act(cobs)
        assert scores.shape == (SMALL["n_adapters"],)
        assert scores.dtype == np.float64
        means = policy.act_cache(cobs)  # type: ignore[attr-defined]
        expect = np.clip(means.astype(np.float64), -1.0, 1.0)
        np.testing.assert_array_equal(scores, np.where(expect <= -1.0, -np.inf, expect))
        obs, *_ = env.step(np.clip(means, -1.0, 1.0))


def test_on_a_miss_and_before_the_first_epoch_it_keeps_the_set(trained):
    policy = make_policy("cache/ppo", path=str(trained))
    env = AdapterCacheEnv(**SMALL)
    obs, _ = env.reset(options={"episode_seed": 1})
    cobs = env.cache_policy_obs(obs)
    for over in ({"requested": 2}, {"epoch": 0}):
        np.testing.assert_array_equal(policy.act({**cobs, **over}), keep_resident({**cobs, **over}))


def test_features_are_the_same_from_the_env_and_from_the_loop():
    assert EST_BOUND == adapter_cache.EST_BOUND
    env = AdapterCacheEnv(**SMALL)
    obs, _ = env.reset(options={"episode_seed": 2})
    for _ in range(3):
        obs, *_ = env.step(env.action_space.sample())
        from_env = cache_features(env.cache_policy_obs(obs))
        assert env.loop is not None
        np.testing.assert_array_equal(from_env, cache_features(env.loop.cache_obs))
    assert from_env.shape == (SMALL["n_adapters"], N_CACHE_FEATURES)
    assert from_env.dtype == np.float32
    # recency: the most recently served adapter has rank 1, never served 0
    last = np.array([-np.inf, 5.0, 2.0, -np.inf])
    x = cache_features(
        {
            "resident": np.zeros(4, bool),
            **{k: np.arange(4) for k in ("counts", "total_counts", "hits", "misses")},
            "last_used": last,
        }
    )
    np.testing.assert_array_equal(x[:, -1], [0.0, 1.0, 0.75, 0.0])
    np.testing.assert_allclose(x[:, 0], np.arange(4) / 6)
    wrapped = CacheFeatures(env, "flat")
    assert wrapped.observation_space.shape == (SMALL["n_adapters"] * N_CACHE_FEATURES,)


def test_bad_path_or_another_family_is_one_clear_error(tmp_path, trained, nr_checkpoint):
    with pytest.raises(FileNotFoundError, match=r"/no/such/cache\.pt.*not found"):
        make_policy("cache/ppo", path="/no/such/cache.pt")
    with pytest.raises(PolicyRegistryError, match=r"cache/ppo:PATH"):
        make_policy("cache/ppo")
    with pytest.raises(ValueError, match=r"no 'cache' actor; it holds: power, prb"):
        make_policy("cache/ppo", path=str(nr_checkpoint))
    with pytest.raises(ValueError, match=r"no 'prb' actor; it holds: cache"):
        make_policy("prb/ppo", path=str(trained))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pt.*not a readable EdgeTwin checkpoint"):
        make_policy("cache/ppo", path=str(junk))
    # trained with 10 adapters, asked about 20
    env = AdapterCacheEnv()
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(env.action_space.sample())
    policy = make_policy("cache/ppo", path=str(trained))
    with pytest.raises(ValueError, match=r"20 adapters.*trained with 10"):
        policy.act(env.cache_policy_obs(obs))


def test_training_is_deterministic_under_a_seed(tmp_path):
    kw: dict[str, Any] = {
        "control": "cache",
        "total_steps": 60,
        "seed": 5,
        "overrides": SMALL,
        "ppo_kwargs": PPO_SMALL,
    }
    a = load_policy_checkpoint(train_ppo(**kw, out=tmp_path / "a.pt").path)
    b = load_policy_checkpoint(train_ppo(**kw, out=tmp_path / "b.pt").path)
    for key, tensor in a["actors"]["cache"]["state_dict"].items():
        assert torch.equal(tensor, b["actors"]["cache"]["state_dict"][key]), key
    assert a["actors"]["cache"]["obs_rms"] == b["actors"]["cache"]["obs_rms"]


def test_train_ppo_control_cache_command(tmp_path, capsys):
    out = tmp_path / "c.pt"
    sets = [f"--set={k}={v}" for k, v in SMALL.items()]
    status = main(["train", "ppo", "--control", "cache", "--steps", "24", "--out", str(out), *sets])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"cache/ppo:{out}" in captured.out
    assert "edgetwin/AdapterCache-v0" in captured.out
    ckpt = load_policy_checkpoint(out)
    assert set(ckpt["actors"]) == {"cache"}
    assert "--set n_adapters=10" in ckpt["meta"]["command"]
    status = main(["train", "ppo", "--control", "cache", "--scenario", "nr_cell", "--out",
                   str(tmp_path / "x.pt")])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "--scenario does not apply to --control cache" in err
    assert "Traceback" not in err
    with pytest.raises(ValueError, match="reward does not apply"):
        train_ppo(control="cache", total_steps=8, reward="sum_rate")


def test_shipped_cache_checkpoint_is_small_and_runs_by_name():
    path = shipped_checkpoints().get("adapter_cache_ppo")
    if path is None:
        pytest.skip("no adapter_cache_ppo checkpoint shipped")
    assert path.stat().st_size < 200_000
    ckpt = load_policy_checkpoint(path)
    assert set(ckpt["actors"]) == {"cache"}
    assert ckpt["meta"]["command"].startswith("edgetwin train ppo --control cache")
    env = AdapterCacheEnv()  # trained on the env's defaults
    policy = make_policy("cache/ppo", path="adapter_cache_ppo")
    in_env = _env_rewards(env, policy, 0)
    np.testing.assert_array_equal(in_env, _loop_rewards(env, policy, 0)[0])
