"""ServeGen window arrivals: rate, inter-arrival CV, determinism, missing file.

Tolerances. Count in a window of a stationary renewal process: mean rate·T exactly, variance
≈ cv²·rate·T (Cox, "Renewal Theory", 1962, §6.3), so counts are compared by z-score. The sample
CV of n i.i.d. gaps has relative standard error ≈ ½·sqrt((κ − 1)/n) (delta method on the sample
variance, κ the gap kurtosis, exact from the family's raw moments); we accept 5 SE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

from edgetwin.sim.workload.servegen import (
    SERVEGEN_COLUMNS,
    SERVEGEN_DISTS,
    SERVEGEN_WINDOW_S,
    load_servegen_windows,
    servegen_arrivals,
    weibull_shape_for_cv,
    window_arrivals,
)
from edgetwin.sim.workload.traces import shared_data_dir

SERVEGEN = shared_data_dir() / "servegen"
M_LARGE = SERVEGEN / "language_m-large_client_windows.csv"
R1 = SERVEGEN / "reason_deepseek-r1_client_windows.csv"


def _need(path: Path) -> pd.DataFrame:
    if not path.is_file():
        pytest.skip("ServeGen data not present")
    return pd.read_csv(path)


def _kurtosis(dist: str, cv: float) -> float:
    """Kurtosis E[(X − μ)⁴]/σ⁴ of the gap family with CV ``cv`` (scale-free)."""
    if dist == "Gamma":
        return 3.0 + 6.0 * cv * cv  # Gamma(k): excess kurtosis 6/k, k = 1/cv²
    k = weibull_shape_for_cv(cv)
    m = [float(np.exp(gammaln(1.0 + j / k))) for j in range(5)]  # E[X^j], scale 1
    var = m[2] - m[1] ** 2
    mu4 = m[4] - 4 * m[3] * m[1] + 6 * m[2] * m[1] ** 2 - 3 * m[1] ** 4
    return mu4 / var**2


def test_weibull_shape_for_cv() -> None:
    assert weibull_shape_for_cv(1.0) == pytest.approx(1.0, rel=1e-9)
    for cv in (0.3, 2.0, 8.6):
        k = weibull_shape_for_cv(cv)
        m1, m2 = np.exp(gammaln(1 + 1 / k)), np.exp(gammaln(1 + 2 / k))
        assert np.sqrt(m2 / m1**2 - 1) == pytest.approx(cv, rel=1e-9)


@pytest.mark.parametrize("dist", ["Gamma", "Weibull"])
def test_busy_window_rate_and_cv(dist: str) -> None:
    df = _need(M_LARGE)
    cand = df[(df["iat_dist"] == dist) & df["iat_cv"].between(1.0, 3.0)]
    row = cand.loc[cand["rate_rps"].idxmax()]
    rate, cv = float(row["rate_rps"]), float(row["iat_cv"])
    t = servegen_arrivals(
        M_LARGE,
        np.random.default_rng(11),
        clients=[int(row["client_id"])],
        start_s=float(row["window_start_s"]),
        duration_s=SERVEGEN_WINDOW_S,
    )
    n_exp = rate * SERVEGEN_WINDOW_S
    assert n_exp > 10_000
    z = (t.size - n_exp) / np.sqrt(cv * cv * n_exp)
    assert abs(z) < 5, (t.size, n_exp, z)
    gaps = np.diff(t)
    cv_hat = gaps.std(ddof=1) / gaps.mean()
    se = 0.5 * np.sqrt((_kurtosis(dist, cv) - 1) / gaps.size)
    assert abs(cv_hat / cv - 1) < 5 * se, (cv_hat, cv, se)


def test_rate_per_window_over_a_day() -> None:
    df = _need(R1)
    rng = np.random.default_rng(5)
    rows = df[df["rate_rps"] * SERVEGEN_WINDOW_S >= 200]
    n = np.array(
        [
            window_arrivals(rng, d, r, c, SERVEGEN_WINDOW_S).size
            for d, r, c in zip(rows["iat_dist"], rows["rate_rps"], rows["iat_cv"], strict=True)
        ]
    )
    mean_n = rows["rate_rps"].to_numpy() * SERVEGEN_WINDOW_S
    var_n = rows["iat_cv"].to_numpy() ** 2 * mean_n
    z = (n - mean_n) / np.sqrt(var_n)
    assert len(rows) > 200
    assert abs(z.mean()) < 5 / np.sqrt(len(rows))  # no bias: z̄ ~ N(0, 1/m)
    # aggregate over every window of the file through the public entry point
    t = servegen_arrivals(R1, np.random.default_rng(6), duration_s=86_400.0)
    total = df["rate_rps"].sum() * SERVEGEN_WINDOW_S
    sd = np.sqrt((df["iat_cv"] ** 2 * df["rate_rps"]).sum() * SERVEGEN_WINDOW_S)
    assert abs(t.size - total) < 5 * sd, (t.size, total, sd)
    assert np.all(np.diff(t) >= 0)
    assert t.min() >= 0
    assert t.max() < 86_400.0


def test_deterministic_and_time_scale() -> None:
    _need(R1)
    a = servegen_arrivals(R1, np.random.default_rng(3), start_s=3600, duration_s=1800)
    b = servegen_arrivals(R1, np.random.default_rng(3), start_s=3600, duration_s=1800)
    c = servegen_arrivals(R1, np.random.default_rng(4), start_s=3600, duration_s=1800)
    np.testing.assert_array_equal(a, b)
    assert a.size > 0
    assert not np.array_equal(a, c)
    fast = servegen_arrivals(
        R1, np.random.default_rng(3), start_s=3600, duration_s=1800, time_scale=2.0
    )
    np.testing.assert_allclose(fast, a / 2.0)
    assert servegen_arrivals(R1, np.random.default_rng(3), clients=[], duration_s=600).size == 0


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope_client_windows\.csv"):
        servegen_arrivals(
            tmp_path / "nope_client_windows.csv", np.random.default_rng(0), duration_s=600
        )


@pytest.mark.parametrize("name", ["language_m-large", "multimodal_mm-image", "reason_deepseek-r1"])
def test_real_window_files_load_unchanged(name: str) -> None:
    """The checked loader returns exactly what a plain read of the real file holds."""
    path = SERVEGEN / f"{name}_client_windows.csv"
    expected = _need(path)
    df = load_servegen_windows(path)
    assert tuple(df.columns) == SERVEGEN_COLUMNS
    pd.testing.assert_frame_equal(df, expected, check_dtype=False)
    assert df["client_id"].dtype == np.int64
    assert df["window_start_s"].dtype == np.int64
    assert set(df["iat_dist"]) <= set(SERVEGEN_DISTS)
