"""Per-UE features, the flat-feature wrapper and running observation statistics."""

from __future__ import annotations

import numpy as np
import pytest

from edgetwin.agents.rl.features import (
    N_UE_FEATURES,
    UE_FEATURES,
    FlatFeatures,
    RunningMeanStd,
    flat_features,
    ue_features,
)
from edgetwin.envs.observation import ObservationBuilder


def _env_obs(rng, max_ue=6, n_ue=4, n_prb=9):
    builder = ObservationBuilder(max_ue, n_prb)
    has_data = np.array([True, True, False, True][:n_ue])
    cell_obs = {
        "rate_bps": rng.exponential(1e6, (1, n_ue, n_prb)),
        "avg_rate_bps": rng.exponential(1e6, (1, n_ue)),
        "last_rate_bps": rng.exponential(1e6, (1, n_ue)),
        "buffer_bits": np.full((1, n_ue), 1e15),
        "olla_offset_db": rng.normal(0, 1, (1, n_ue)),
        "mcs": rng.integers(0, 28, (1, n_ue)),
        "n_tx": np.zeros((1, n_ue)),
        "n_nack": np.zeros((1, n_ue)),
        "has_data": has_data[None],
        "ue_mask": np.ones((1, n_ue), bool),
        "sinr_db": rng.uniform(-5, 25, (1, n_ue, n_prb)),
        "alloc": rng.integers(-1, n_ue, (1, n_prb)),
    }
    return builder(cell_obs)


def test_rms_matches_numpy_over_concatenated_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (n, 3, 2)) for n in (1, 7, 50, 4)]
    rms = RunningMeanStd((3, 2), epsilon=0.0)
    for b in batches:
        rms.update(b)
    allx = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean, allx.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rms.var, allx.var(axis=0), rtol=1e-10)
    assert rms.count == len(allx)
    # The default pseudo-count of 1e-4 barely moves the statistics.
    rms2 = RunningMeanStd((3, 2))
    for b in batches:
        rms2.update(b)
    np.testing.assert_allclose(rms2.mean, allx.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(rms2.var, allx.var(axis=0), rtol=1e-4)


def test_rms_scalar_shape_normalize_and_state_dict():
    rms = RunningMeanStd(())
    rms.update(np.arange(10.0))
    assert float(rms.mean) == pytest.approx(4.5, rel=1e-4)
    z = rms.normalize(np.array([4.5, 1e9, -1e9]), clip=5.0)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, [0.0, 5.0, -5.0], atol=1e-4)
    back = RunningMeanStd.from_state_dict(rms.state_dict())
    assert back.shape == ()
    assert float(back.mean) == float(rms.mean)
    assert back.count == rms.count
    with pytest.raises(ValueError, match="do not end in"):
        RunningMeanStd((3,)).update(np.zeros((4, 2)))


def test_ue_features_shape_padding_and_values():
    rng = np.random.default_rng(1)
    obs = _env_obs(rng)
    f = ue_features(obs)
    assert f.shape == (6, N_UE_FEATURES) == (6, len(UE_FEATURES))
    assert f.dtype == np.float32
    assert np.isfinite(f).all()
    assert (f[4:] == 0).all()  # padding rows
    col = {name: i for i, name in enumerate(UE_FEATURES)}
    np.testing.assert_allclose(f[:4, col["ue_mask"]], 1.0)
    np.testing.assert_allclose(f[:4, col["has_data"]], [1, 1, 0, 1])
    np.testing.assert_allclose(
        f[:4, col["sinr_mean_db/10"]], obs["sinr_db"][:4].mean(axis=1) / 10, rtol=1e-5
    )
    np.testing.assert_allclose(f[:4, col["log1p(buffer_mbit)"]], np.log1p(1e12 / 1e6), rtol=1e-6)
    np.testing.assert_allclose(
        f[:4, col["prb_count/n_prb"]].sum(), (obs["prb_count"].sum()) / 9, rtol=1e-6
    )
    assert (np.abs(f[:, col["pf_metric"]]) <= 10).all()
    flat = flat_features(obs)
    assert flat.shape == (6 * N_UE_FEATURES,)
    np.testing.assert_array_equal(flat, f.ravel())


def test_flat_features_wrapper_on_the_env():
    from edgetwin.envs.prb_power import PrbPowerEnv

    env = FlatFeatures(PrbPowerEnv(control="prb", overrides={"duration_s": 0.01}))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (20 * N_UE_FEATURES,)
    assert env.observation_space.contains(obs)
    obs, *_ = env.step(env.action_space.sample())
    assert obs.shape == (20 * N_UE_FEATURES,)
    assert obs.dtype == np.float32
