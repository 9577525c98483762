"""Level series: exact time averages (Law & Kelton §1.4.5) in every row mode, bounded memory."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetwin.sim.metrics.levels import LevelSeries


def _feed(series: LevelSeries, times: list[float], values: list[float], end: float) -> None:
    for t, v in zip(times, values, strict=True):
        series.record(t, (v, 2 * v))
    series.close(end)


def _integral(times: list[float], values: list[float], a: float, b: float) -> float:
    """∫_a^b x(t) dt of the step function x = values[i] on [times[i], times[i+1])."""
    edges = [*times[1:], math.inf]
    return sum(
        v * max(0.0, min(b, e) - max(a, s)) for s, e, v in zip(times, edges, values, strict=True)
    )


def test_change_rows_hold_each_value_until_the_next_record() -> None:
    s = LevelSeries(["x", "y"])
    _feed(s, [1.0, 2.0, 2.0, 5.0], [4.0, 1.0, 3.0, 0.0], end=7.0)
    tab = s.table()
    assert tab["dt_s"].tolist() == [1.0, 0.0, 3.0, 2.0]
    # (4·1 + 3·3 + 0·2) / 6: the value 1, held for 0 s, adds nothing to the mean
    assert s.mean("x") == pytest.approx(13.0 / 6.0)
    assert s.mean("y") == pytest.approx(26.0 / 6.0)
    assert s.max("x") == 4.0
    assert s.duration_s == 6.0


def test_binned_rows_are_the_time_average_over_each_bin() -> None:
    times, values = [0.25, 0.5, 1.75, 3.0], [2.0, 6.0, 1.0, 5.0]
    s = LevelSeries(["x", "y"], rows="binned", bin_s=1.0)
    _feed(s, times, values, end=3.5)
    tab = s.table()
    assert tab["t_s"].tolist() == [0.25, 1.0, 2.0, 3.0]  # first bin observed from 0.25
    assert tab["dt_s"].tolist() == [0.75, 1.0, 1.0, 0.5]
    for row in tab.itertuples():
        a, b = row.t_s, row.t_s + row.dt_s
        assert row.x == pytest.approx(_integral(times, values, a, b) / (b - a))
    assert tab["x_max"].tolist() == [6.0, 6.0, 1.0, 5.0]  # 6 is held into the second bin
    assert tab["y"].tolist() == pytest.approx((2 * tab["x"]).tolist())


def test_binned_memory_is_bounded_by_time_not_by_records() -> None:
    s = LevelSeries(["x"], rows="binned", bin_s=1.0)
    t = np.linspace(0.0, 10.0, 100_001)[:-1]
    for ti in t:
        s.record(float(ti), (ti,))
    s.close(10.0)
    tab = s.table()
    assert len(tab) == 10
    # x(t) = t sampled every 1e-4 s: bin k's mean is k + 0.5 minus half a sample step
    assert tab["x"].to_numpy() == pytest.approx(np.arange(10) + 0.5 - 0.5e-4)


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=29),
    values=st.lists(st.integers(0, 1000), min_size=30, max_size=30),
    tail=st.floats(0, 3, allow_nan=False),
    bin_s=st.sampled_from([0.1, 0.7, 1.0, 2.5]),
)
def test_every_row_mode_gives_the_same_mean_and_max(gaps, values, tail, bin_s) -> None:
    times = np.cumsum([0.3, *gaps]).tolist()
    vals = [float(v) for v in values[: len(times)]]
    end = times[-1] + tail
    modes = {m: LevelSeries(["x", "y"], rows=m, bin_s=bin_s) for m in ("change", "binned", "none")}
    for s in modes.values():
        _feed(s, times, vals, end)
    span = end - times[0]
    expect = _integral(times, vals, times[0], end) / span if span > 0 else vals[-1]
    for s in modes.values():
        assert s.mean("x") == pytest.approx(expect, rel=1e-9, abs=1e-9)
        assert s.max("x") == max(vals)
    change = modes["change"].table()
    assert change["dt_s"].sum() == pytest.approx(span)
    binned = modes["binned"].table()
    assert binned["dt_s"].sum() == pytest.approx(span)
    if span > 0:  # the binned rows integrate to the same area
        area = float(np.dot(binned["dt_s"], binned["x"]))
        assert area == pytest.approx(expect * span, rel=1e-9, abs=1e-6)
    assert modes["none"].table().empty


def test_an_open_series_is_averaged_up_to_the_given_time() -> None:
    s = LevelSeries(["x"])
    s.record(0.0, (2.0,))
    s.record(1.0, (4.0,))
    assert s.mean("x") == pytest.approx(2.0)  # up to the last record
    assert s.mean("x", t_end_s=3.0) == pytest.approx((2.0 + 8.0) / 3.0)
    assert LevelSeries(["x"]).mean("x") == 0.0
    assert LevelSeries(["x"]).max("x") == 0.0


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"rows": "daily"}, "change, binned, none"),
        ({"rows": "binned", "bin_s": 0.0}, "positive"),
        ({"rows": "binned", "bin_s": math.nan}, "positive finite"),
    ],
)
def test_bad_arguments_are_refused(kwargs, words) -> None:
    with pytest.raises(ValueError, match=words):
        LevelSeries(["x"], **kwargs)


def test_time_going_backwards_is_refused() -> None:
    s = LevelSeries(["x"])
    s.record(2.0, (1.0,))
    with pytest.raises(ValueError, match="backwards"):
        s.record(1.0, (1.0,))
