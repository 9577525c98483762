"""``edgetwin/AdapterCache-v0`` with ``source="server"``: one step is one epoch of a real server.

The requests arrive at an ``LLMServer`` with adapter tiers and per-request routing; the agent's
scores set the resident adapters at each boundary (evictions, prefetches through the server's
serialized loader) and the victims inside the epoch.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import simpy
from gymnasium.utils.env_checker import check_env, data_equivalence

import edgetwin.envs  # noqa: F401  (registers the ids)
from edgetwin.envs.adapter_cache import DEFAULT_SERVING, AdapterCacheEnv
from edgetwin.scenarios.serve import MODEL_DIMS
from edgetwin.sim.compute.adapter_pool import LoraServingConfig, lora_iteration_s
from edgetwin.sim.compute.adapter_route import ServerAdapterEpochs
from edgetwin.sim.compute.adapters import AdapterSpec
from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.server import LLMServer, ServerConfig

ENV_ID = "edgetwin/AdapterCache-v0"
SMALL: dict[str, Any] = {
    "source": "server",
    "n_adapters": 10,
    "capacity": 3,
    "dim": 4,
    "epoch_requests": 60,
    "n_epochs": 4,
    "drift": "permute",
    "drift_period": 120,
}


#: UEs' requests over the NR uplink to the edge server: few arrivals a second, short epochs
RADIO: dict[str, Any] = {**SMALL, "source": "radio", "epoch_requests": 10, "n_epochs": 2}
SOURCES = [pytest.param(SMALL, id="server"), pytest.param(RADIO, id="radio")]


def _env(base: dict[str, Any] = SMALL, **kw: Any) -> AdapterCacheEnv:
    env = gym.make(ENV_ID, **{**base, **kw}).unwrapped
    assert isinstance(env, AdapterCacheEnv)
    return env


def _actions(env: AdapterCacheEnv, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (env.n_epochs, env.n_adapters)).astype(np.float32)


@pytest.mark.parametrize("base", SOURCES)
def test_env_checker_clean_with_the_server(base: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(_env(base), skip_render_check=True)


@pytest.mark.parametrize("base", SOURCES)
def test_same_seed_same_actions_identical_episode(base: dict[str, Any]) -> None:
    def rollout(env: AdapterCacheEnv) -> list[Any]:
        out: list[Any] = [env.reset(seed=4)]
        out += [env.step(a) for a in _actions(env, 1)]
        return out

    a, b = rollout(_env(base)), rollout(_env(base))
    assert data_equivalence(a, b)
    assert a[-1][3]  # truncated after n_epochs


@pytest.mark.parametrize("base", SOURCES)
def test_observation_counts_equal_the_servers_table_for_each_epoch(base: dict[str, Any]) -> None:
    env = _env(base)
    e, n = env.epoch_requests, env.n_adapters
    obs, info = env.reset(seed=7)
    t_prev = 0.0
    for k, action in enumerate([None, *_actions(env, 3)]):
        if action is not None:
            obs, _reward, _term, _trunc, info = env.step(action)
        loop = env.loop
        assert isinstance(loop, ServerAdapterEpochs)
        server = loop.server
        routes = server.routing.table()  # type: ignore[union-attr]
        assert len(routes) == (k + 1) * e  # one row per arrival, in arrival order
        epoch = routes.iloc[k * e : (k + 1) * e]
        hit = epoch["route_hit"].to_numpy()
        adapter = epoch["adapter"].to_numpy()
        np.testing.assert_array_equal(
            np.rint(obs["hits"] * e), np.bincount(adapter[hit], minlength=n)
        )
        np.testing.assert_array_equal(
            np.rint(obs["misses"] * e), np.bincount(adapter[~hit], minlength=n)
        )
        np.testing.assert_array_equal(
            np.rint(obs["counts"] * e), np.bincount(epoch["task"], minlength=n)
        )
        # the reward's requests: those that completed during the epoch, timed by the server
        req = server.results().tables["requests"]
        now = loop.env.now
        done = req[(req["completion_s"] > t_prev) & (req["completion_s"] <= now)]
        assert info["requests"] == len(done)
        assert len(done) > 0 or base is RADIO
        assert info["mean_latency_s"] == pytest.approx(done["ttft_s"].mean(), rel=1e-12)
        assert info["arrivals"] == e
        # never more resident adapters than the GPU slots
        assert int(obs["resident"].sum()) <= env.capacity
        assert server.adapters.max_resident_seen <= env.capacity  # type: ignore[union-attr]
        t_prev = now


def test_the_action_prefetches_its_top_k_and_evicts_the_rest() -> None:
    cfg = LoraServingConfig(n_adapters=6, adapter=AdapterSpec(rank=16), max_loras=2)
    env = simpy.Environment()
    cost = functools.partial(
        lora_iteration_s, spec=cfg.adapter, dims=MODEL_DIMS["qwen2.5-7b"], peak_flops=1e14,
        mem_bandwidth_bytes_per_s=1e12,
    )  # fmt: skip
    server = LLMServer(
        env, ServerConfig(n_blocks=2000, lora=cfg), LinearCostModel(a_s=0.01),
        dims=MODEL_DIMS["qwen2.5-7b"], lora_cost=cost,
    )  # fmt: skip
    pool = server.adapters
    assert pool is not None
    server.start()
    want = np.zeros(6, dtype=bool)
    want[[1, 4]] = True
    pool.set_resident(want, [4, 1])
    env.run(until=1.0)
    assert sorted(pool.gpu) == [1, 4]
    assert list(pool.gpu) == [4, 1]  # loaded most wanted first
    want[:] = False
    want[2] = True
    pool.set_resident(want, [2])
    assert list(pool.gpu) == []  # unwanted and unused: evicted at once
    env.run(until=2.0)
    assert list(pool.gpu) == [2]
    np.testing.assert_array_equal(pool.resident_mask, np.arange(6) == 2)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"source": "uplink"}, r"source must be one of 'loop', 'server', 'radio', got 'upl"),
        ({"source": "loop", "serving": DEFAULT_SERVING}, r"serving is read only with source"),
        ({"on_miss": "cache/lru"}, r"on_miss and route_block are options of source='loop'"),
        ({"scenario": "edge_cloud"}, r"scenario is read only with source='radio'"),
        (
            {"source": "radio", "scenario": "small_cell"},
            r"invalid scenario .small_cell.",
        ),
        (
            {"serving": {**DEFAULT_SERVING, "serving": {"model": "qwen2.5-7b"}}},
            r"serving\.lora \(the adapter tiers\) is missing",
        ),
    ],
)
def test_bad_source_options_one_clear_line(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        _env(**kw)
    assert "\n" not in str(err.value)
