"""Every Gymnasium env registered under ``edgetwin/``: env checker, determinism, ``gym.make``.

Parametrized over the registry (as Gymnasium's own ``tests/envs/test_envs.py``), so a newly
registered env is checked without editing this file; ``edgetwin/PrbPower-v0`` is checked for each
of its controls.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

import edgetwin.envs  # noqa: F401  (registers the ids)
from edgetwin.envs.prb_power import CONTROLS

SHORT = {"duration_s": 0.02}  # 40 slots of 0.5 ms
#: Envs whose first decision needs more simulated time (a device's first speculative round).
OVERRIDES: dict[str, dict[str, Any]] = {"edgetwin/DraftLength-v0": {"duration_s": 1.5}}

#: Extra constructor arguments per registered id (one case per entry).
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "edgetwin/PrbPower-v0": [{"control": c} for c in CONTROLS],
}

ENV_IDS = sorted(k for k in gym.registry if k.startswith("edgetwin/"))
CASES = [
    pytest.param(env_id, kw, id=f"{env_id}-{'-'.join(map(str, kw.values())) or 'default'}")
    for env_id in ENV_IDS
    for kw in VARIANTS.get(env_id, [{}])
]


def _make(env_id: str, kw: dict[str, Any]) -> gym.Env[Any, Any]:
    return gym.make(env_id, overrides=OVERRIDES.get(env_id, SHORT), **kw)


def test_registry_has_the_edgetwin_envs():
    assert "edgetwin/PrbPower-v0" in ENV_IDS


@pytest.mark.parametrize(("env_id", "kw"), CASES)
@pytest.mark.filterwarnings("ignore:.*infinity:UserWarning")
def test_env_checker(env_id, kw):
    env = _make(env_id, kw)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def _rollout(env: gym.Env[Any, Any], seed: int, n_steps: int) -> list[tuple[Any, ...]]:
    """Reset with ``seed``, then step actions from a fixed generator; the transitions."""
    obs, info = env.reset(seed=seed)
    out: list[tuple[Any, ...]] = [(obs, info)]
    space = env.action_space
    assert isinstance(space, gym.spaces.Box | gym.spaces.Discrete)
    rng = np.random.default_rng(1234)
    for _ in range(n_steps):
        if isinstance(space, gym.spaces.Discrete):
            action = np.int64(rng.integers(space.n))
        else:
            action = rng.uniform(space.low, space.high).astype(space.dtype)
        obs, r, terminated, truncated, info = env.step(action)
        out.append((obs, r, terminated, truncated, info))
        if terminated or truncated:
            break
    return out


@pytest.mark.parametrize(("env_id", "kw"), CASES)
def test_same_seed_same_episode_different_seed_different_episode(env_id, kw):
    a = _rollout(_make(env_id, kw), seed=7, n_steps=15)
    b = _rollout(_make(env_id, kw), seed=7, n_steps=15)
    assert len(a) == len(b)
    for ta, tb in zip(a, b, strict=True):
        assert data_equivalence(ta, tb)
    c = _rollout(_make(env_id, kw), seed=8, n_steps=1)
    assert not data_equivalence(a[0][0], c[0][0])  # another seed, another first observation


@pytest.mark.parametrize(("env_id", "kw"), CASES)
def test_gym_make_spec_and_episode(env_id, kw):
    assert gym.spec(env_id).max_episode_steps is None  # the simulated horizon is the only limit
    env = _make(env_id, kw)
    assert env.spec is not None
    assert env.spec.max_episode_steps is None
    # No TimeLimit wrapper anywhere in the chain.
    e: Any = env
    while isinstance(e, gym.Wrapper):
        assert not isinstance(e, gym.wrappers.TimeLimit)
        e = e.env
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(10_000):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        if terminated or truncated:
            break
    assert truncated
    env.close()
