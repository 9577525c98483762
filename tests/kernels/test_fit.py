from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from edgetwin.kernels.fit import (
    check_monotone,
    expand_features,
    fit,
    fit_table,
    kfold_relative_errors,
)
from edgetwin.kernels.ops import OP_SPECS
from edgetwin.sim.compute.profiles import PROFILE_COLUMNS, write_profile


def _synthetic(op: str, n_tokens: np.ndarray, coef: tuple[float, float, float]) -> pd.DataFrame:
    flops = 2.0 * n_tokens * 64 * 192
    nbytes = 4.0 * (n_tokens * 64 + 64 * 192 + n_tokens * 192)
    t = coef[0] + coef[1] * flops + coef[2] * nbytes
    df = pd.DataFrame(
        {
            "op": op,
            "model": "tiny",
            "device": "cpu",
            "dtype": "float32",
            "n_tokens": n_tokens,
            "batch_size": 1,
            "context_len": 0,
            "rank": 0,
            "bits": 0,
            "n_bytes": 0,
            "tp": 1,
            "flops": flops,
            "bytes_moved": nbytes,
            "time_median_s": t,
            "time_p90_s": t * 1.1,
            "n_repeats": 5,
            "source": "synthetic",
        }
    )
    return df[list(PROFILE_COLUMNS)]


def test_recovers_known_coefficients():
    # Non-collinear features: constant, n_tokens^2-ish flops via varying rank is not needed;
    # use kv-style features [1, flops, bytes] with independent columns.
    rng = np.random.default_rng(0)
    flops = rng.uniform(1e6, 1e9, 40)
    nbytes = rng.uniform(1e5, 1e8, 40)
    true = np.array([5e-6, 2e-11, 1e-10])
    t = true[0] + true[1] * flops + true[2] * nbytes
    df = pd.DataFrame({"flops": flops, "bytes_moved": nbytes, "time_median_s": t})
    coef = fit_table(df, ("1", "flops", "bytes_moved"))
    np.testing.assert_allclose(coef, true, rtol=1e-6)
    err = kfold_relative_errors(df, ("1", "flops", "bytes_moved"))
    assert np.max(err) < 1e-8


def test_fit_folder_writes_json_and_caches(tmp_path):
    folder = tmp_path / "cpu" / "tiny"
    df = _synthetic("linear_qkv", np.array([1, 2, 4, 8, 16, 32, 64, 128]), (1e-5, 1e-11, 2e-10))
    write_profile(df, folder / "linear_qkv.csv")
    result = fit(folder)
    entry = result["ops"]["linear_qkv"]
    assert entry["n_rows"] == 8
    assert entry["cv_median_rel_err"] < 1e-6
    assert entry["cv_p90_rel_err"] >= entry["cv_median_rel_err"]
    assert entry["monotone"] == {"n_tokens": True}
    on_disk = json.loads((folder / "fit.json").read_text())
    assert on_disk["data_sha256"] == result["data_sha256"]
    assert fit(folder) == on_disk  # cached while the data is unchanged


def test_hinge_recovers_piecewise_linear_and_is_monotone():
    flops = np.arange(1.0, 31.0) * 1e7
    # slope 1e-10 below 1e8, 3e-10 above (a regime change): t = 1e-5 + 1e-10 f + 2e-10 (f-1e8)+
    t = 1e-5 + 1e-10 * flops + 2e-10 * np.maximum(0.0, flops - 1e8)
    df = pd.DataFrame(
        {
            "n_tokens": np.arange(1, 31),
            "batch_size": 1,
            "context_len": 0,
            "rank": 0,
            "bits": 0,
            "n_bytes": 0,
            "tp": 1,
            "flops": flops,
            "bytes_moved": flops,
            "time_median_s": t,
        }
    )
    feats = ["1", "flops", "hinge:flops:100000000.0"]
    np.testing.assert_allclose(fit_table(df, feats), [1e-5, 1e-10, 2e-10], rtol=1e-6)
    assert check_monotone(df, feats, [1e-5, 1e-10, 2e-10], ["n_tokens"]) == {"n_tokens": True}
    assert check_monotone(df, feats, [1e-5, 1e-10, -2e-10], ["n_tokens"]) == {"n_tokens": False}
    knots = expand_features(df, ["1", "hinge:flops"])
    assert knots[0] == "1"
    assert all(k.startswith("hinge:flops:") for k in knots[1:])


def test_shipped_profiles_have_fits():
    root = Path(__file__).resolve().parents[2] / "kernels" / "profiles" / "cpu" / "smollm-135m"
    result = json.loads((root / "fit.json").read_text())
    assert set(result["ops"]) == set(OP_SPECS)
    for entry in result["ops"].values():
        assert len(entry["coef"]) == len(entry["features"])
        assert all(entry["monotone"].values())
