"""The soak benchmark's functions at tiny sizes: result structure and the slope computation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import soak


def test_post_warmup_slope_ignores_the_warmup_and_fits_the_rest():
    x = np.arange(10.0)
    y = np.where(x < 2, 100.0 * x, 200.0 + 3.0 * (x - 2))  # steep warm-up, then 3 per unit
    assert soak.post_warmup_slope(x, y) == pytest.approx(3.0)
    assert soak.post_warmup_slope(x, np.full(10, 7.0)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="2 samples"):
        soak.post_warmup_slope(np.arange(1.0), np.arange(1.0))


def test_flat_verdict_uses_growth_over_the_post_warmup_span():
    x = np.linspace(0, 1e6, 11)
    grow = soak.Soak("serving", x, 100.0 + 5.0 * x / 1e5, 1.0, "100k req", 1e5).summary()
    assert grow["slope_mib"] == pytest.approx(5.0)
    assert grow["growth_mib"] == pytest.approx(40.0)  # 8 × 100k requests after warm-up
    assert not grow["flat"]
    assert soak.Soak("serving", x, np.full(11, 100.0), 1.0, "100k req", 1e5).summary()["flat"]


@pytest.mark.parametrize(
    "run", [lambda: soak.serving_soak(300, 5), lambda: soak.radio_soak(0.05, 5)]
)
def test_tiny_runs_return_samples_and_a_summary(run):
    s = run().summary()
    assert len(s["samples"]["x"]) == len(s["samples"]["rss_mib"]) == 6
    assert s["rss_end_mib"] > 0
    assert s["wall_s"] > 0
    assert set(s) >= {"slope_mib", "growth_mib", "flat", "rss_start_mib", "per_wall_s"}
