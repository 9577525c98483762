"""Every registered PRB / power policy returns a valid action on random valid observations.

Contract (ARCHITECTURE.md §4.3): PRB action int64 [n_cell, n_prb], −1 or the index of a UE with
``has_data & ue_mask`` (all −1 in a cell without such a UE); power action float64
[n_cell, n_prb], ≥ 0, 0 on unused PRBs, Σ ≤ max_power_w per cell. ``act`` never mutates the
observation, and ``reset(seed=...)`` works before and between episodes. Serve (request
scheduler) action int64 [n]: a permutation of ``range(n)`` over the waiting requests.

Trained policies (``prb/ppo``, ``power/ppo``) are built from a checkpoint of randomly
initialized actors (a per-UE PRB actor and a joint flat actor), one per carrier size.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from edgetwin.agents import make_policy, policy_ids

SHAPES = [(1, 1, 1), (1, 8, 51), (3, 4, 7), (3, 8, 25), (1, 5, 3), (3, 1, 51), (3, 2, 1)]
#: Policies built from a checkpoint (``path=``), which fixes max_ue and n_prb.
TRAINED = {"prb/ppo", "power/ppo"}
MAX_UE = max(n_ue for _, n_ue, _ in SHAPES)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """n_prb → path of a checkpoint of random actors (max_ue = MAX_UE), made on first use."""
    paths = {}

    def get(n_prb):
        if n_prb not in paths:
            torch = pytest.importorskip("torch")
            from edgetwin.agents.rl.checkpoint import save_policy_checkpoint
            from edgetwin.agents.rl.features import N_UE_FEATURES
            from edgetwin.agents.rl.networks import FlatActor, PerUEActor

            torch.manual_seed(n_prb)
            prb = PerUEActor(N_UE_FEATURES, hidden=16)
            joint = FlatActor(MAX_UE * N_UE_FEATURES, 2 * MAX_UE, hidden=(16,))
            with torch.no_grad():
                for p in [*prb.parameters(), *joint.parameters()]:
                    p.normal_(0.0, 0.5)
            record = {"obs_rms": None, "clip_obs": 10.0}
            paths[n_prb] = save_policy_checkpoint(
                tmp_path_factory.mktemp("ckpt") / f"random_{n_prb}.pt",
                max_ue=MAX_UE,
                n_prb=n_prb,
                actors={
                    "prb": {
                        **record,
                        "kind": "per_ue",
                        "kwargs": {"n_features": N_UE_FEATURES, "hidden": 16},
                        "state_dict": prb.state_dict(),
                        "slice": [0, MAX_UE],
                    },
                    "power": {
                        **record,
                        "kind": "flat",
                        "kwargs": {
                            "in_dim": MAX_UE * N_UE_FEATURES,
                            "out_dim": 2 * MAX_UE,
                            "hidden": [16],
                        },
                        "state_dict": joint.state_dict(),
                        "slice": [MAX_UE, 2 * MAX_UE],
                        "zero_prb_count": True,
                    },
                },
            )
        return str(paths[n_prb])

    return get


def _make(policy_id, n_prb, checkpoint):
    if policy_id in TRAINED:
        return make_policy(policy_id, path=checkpoint(n_prb))
    return make_policy(policy_id)


def _prb_obs(rng, n_cell, n_ue, n_prb, slot):
    ue_mask = rng.random((n_cell, n_ue)) < 0.8
    has_data = (rng.random((n_cell, n_ue)) < 0.7) & ue_mask
    if n_cell > 1:
        has_data[1] = False  # a cell with nobody to serve
    rate = rng.exponential(1e6, (n_cell, n_ue, n_prb))
    rate[rng.random(rate.shape) < 0.1] = 0.0
    last = np.where(ue_mask, rng.exponential(1e6, (n_cell, n_ue)), 0.0)
    last[rng.random(last.shape) < 0.3] = 0.0
    n_tx = rng.integers(0, 3 * slot + 1, (n_cell, n_ue)).astype(float)
    return {
        "slot": slot,
        "rate_bps": rate,
        "last_rate_bps": last,
        "avg_rate_bps": rng.exponential(1e6, (n_cell, n_ue)),
        "buffer_bits": np.where(has_data, rng.integers(1, 10**6, (n_cell, n_ue)), 0).astype(float),
        "has_data": has_data,
        "ue_mask": ue_mask,
        "sinr_db": rng.uniform(-10, 30, (n_cell, n_ue, n_prb)),
        "olla_offset_db": rng.normal(0.0, 1.0, (n_cell, n_ue)),
        "mcs": rng.integers(0, 28, (n_cell, n_ue)),
        "n_tx": n_tx,
        "n_nack": np.floor(n_tx * rng.random((n_cell, n_ue))),
    }


def _power_obs(rng, prb_obs):
    eligible = prb_obs["has_data"] & prb_obs["ue_mask"]
    n_cell, n_ue, n_prb = prb_obs["rate_bps"].shape
    alloc = np.full((n_cell, n_prb), -1, np.int64)
    for c in range(n_cell):
        ues = np.flatnonzero(eligible[c])
        if ues.size:
            alloc[c] = rng.choice(np.append(ues, -1), n_prb)
    return {  # everything the prb decision saw, plus the PRB map and the power budget
        **prb_obs,
        "alloc": alloc,
        "gain_over_noise_per_w": 10 ** rng.uniform(0, 7, (n_cell, n_ue, n_prb)),
        "max_power_w": rng.uniform(1.0, 80.0, n_cell),
    }


def _copy(obs):
    return {k: np.array(v, copy=True) for k, v in obs.items()}


def _assert_same(obs, snapshot):
    for k, v in snapshot.items():
        np.testing.assert_array_equal(obs[k], v, err_msg=f"act() mutated obs[{k!r}]")
        assert np.asarray(obs[k]).dtype == v.dtype


def _check_prb_action(action, obs):
    n_cell, n_ue, n_prb = obs["rate_bps"].shape
    assert isinstance(action, np.ndarray)
    assert action.dtype == np.int64
    assert action.shape == (n_cell, n_prb)
    eligible = obs["has_data"] & obs["ue_mask"]
    assert ((action >= -1) & (action < n_ue)).all()
    ok = np.take_along_axis(eligible, np.maximum(action, 0), axis=-1)
    assert (ok | (action == -1)).all(), "a PRB went to a UE without data or to padding"
    none = ~eligible.any(axis=-1)
    assert (action[none] == -1).all()


def _check_power_action(action, obs):
    alloc = obs["alloc"]
    assert isinstance(action, np.ndarray)
    assert action.dtype == np.float64
    assert action.shape == alloc.shape
    assert np.isfinite(action).all()
    assert (action >= 0).all()
    assert (action[alloc < 0] == 0).all()
    assert (action.sum(axis=-1) <= obs["max_power_w"] * (1 + 1e-12)).all()


@pytest.mark.parametrize("policy_id", policy_ids(family="prb"))
def test_prb_policy_contract(policy_id, checkpoint):
    policy = None
    rng = np.random.default_rng(zlib.crc32(policy_id.encode()))
    for n_cell, n_ue, n_prb in SHAPES:
        if policy is None or policy_id in TRAINED:
            policy = _make(policy_id, n_prb, checkpoint)
        policy.reset(seed=0)
        for slot in (0, 1, 2, 7, 8):  # includes an idle gap
            obs = _prb_obs(rng, n_cell, n_ue, n_prb, slot)
            snapshot = _copy(obs)
            _check_prb_action(policy.act(obs), obs)
            _assert_same(obs, snapshot)


@pytest.mark.parametrize("policy_id", policy_ids(family="power"))
def test_power_policy_contract(policy_id, checkpoint):
    policy = None
    rng = np.random.default_rng(zlib.crc32(policy_id.encode()))
    for n_cell, n_ue, n_prb in SHAPES:
        if policy is None or policy_id in TRAINED:
            policy = _make(policy_id, n_prb, checkpoint)
        policy.reset(seed=1)
        for slot in (0, 1, 5):
            obs = _power_obs(rng, _prb_obs(rng, n_cell, n_ue, n_prb, slot))
            snapshot = _copy(obs)
            _check_power_action(policy.act(obs), obs)
            _assert_same(obs, snapshot)


@pytest.mark.parametrize("policy_id", policy_ids(family="prb") + policy_ids(family="power"))
def test_reset_makes_episodes_reproducible(policy_id, checkpoint):
    family = policy_id.split("/")[0]
    policy = _make(policy_id, 9, checkpoint)

    def episode():
        rng = np.random.default_rng(5)
        policy.reset(seed=3)
        out = []
        for slot in range(6):
            obs = _prb_obs(rng, 2, 5, 9, slot)
            if family == "power":
                obs = _power_obs(rng, obs)
            out.append(policy.act(obs))
        return out

    first, second = episode(), episode()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def _serve_obs(rng, n):
    preempted = rng.random(n) < 0.2
    output = rng.integers(1, 500, n)
    return {
        "arrival_s": np.sort(rng.uniform(0, 10, n)).round(1),  # rounding makes ties
        "prompt_tokens": rng.integers(1, 50, n),
        "output_tokens": output,
        "n_generated": np.where(preempted, rng.integers(0, output), 0),
        "preempted": preempted,
        "now_s": 10.0,
        "kv_free_blocks": int(rng.integers(0, 100)),
        "n_running": int(rng.integers(0, 8)),
    }


@pytest.mark.parametrize("policy_id", policy_ids(family="serve"))
def test_serve_policy_contract(policy_id):
    policy = make_policy(policy_id)
    rng = np.random.default_rng(zlib.crc32(policy_id.encode()))
    policy.reset(seed=2)
    for n in range(21):
        for _ in range(3):
            obs = _serve_obs(rng, n)
            snapshot = _copy(obs)
            action = policy.act(obs)
            assert isinstance(action, np.ndarray)
            assert action.dtype == np.int64
            assert action.shape == (n,)
            np.testing.assert_array_equal(np.sort(action), np.arange(n))
            _assert_same(obs, snapshot)
