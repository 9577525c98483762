"""Mobility: UEs stay in their cell, move no faster than their speed, static never moves."""

from __future__ import annotations

import numpy as np
import pytest

from edgetwin.sim.radio.geometry import Layout, TopologyConfig, build_layout, in_cell
from edgetwin.sim.radio.mobility import MobilityConfig, StaticMobility, make_mobility

LAYOUTS = [
    {"kind": "single", "cell_radius_m": 120.0},
    {"kind": "single", "sectors_per_site": 3, "cell_radius_m": 120.0},
    {"kind": "hex", "n_sites": 7, "isd_m": 200.0},
    {"kind": "hex", "n_sites": 7, "sectors_per_site": 3, "isd_m": 200.0},
]


def _layout(kw: dict[str, object]) -> Layout:
    return build_layout(
        TopologyConfig(**kw, ues_per_cell=15, min_distance_m=10.0),  # type: ignore[arg-type]
        np.random.default_rng(1),
    )


@pytest.mark.parametrize("layout_kw", LAYOUTS)
@pytest.mark.parametrize("kind", ["linear", "random_waypoint"])
def test_ues_stay_in_their_cell_and_speed_bounds_displacement(
    layout_kw: dict[str, object], kind: str
) -> None:
    lay = _layout(layout_kw)
    speed = 20.0
    mob = make_mobility(
        MobilityConfig(kind=kind, speed_mps=speed, pause_s=0.5),  # type: ignore[arg-type]
        lay,
        np.random.default_rng(2),
    )
    p0 = mob.positions_at(0.0)
    np.testing.assert_array_equal(p0, lay.ue_position_m)
    prev, t_prev = p0, 0.0
    for t in np.linspace(0.05, 60.0, 400):  # many boundary reflections / waypoints
        p = mob.positions_at(float(t))
        assert p.shape == lay.ue_position_m.shape
        assert np.all(in_cell(lay, p, tol_m=1e-6))
        assert np.all(p[..., 2] == lay.ue_position_m[..., 2])
        disp = np.linalg.norm(p[..., :2] - p0[..., :2], axis=-1)
        assert np.all(disp <= speed * t + 1e-6)
        step = np.linalg.norm(p[..., :2] - prev[..., :2], axis=-1)
        assert np.all(step <= speed * (t - t_prev) + 1e-6)
        prev, t_prev = p, float(t)
        assert np.all(np.isclose(mob.speed_mps, speed) | (mob.speed_mps == 0.0))
    # Some UE moved by a sizeable fraction of the cell.
    assert disp.max() > 50.0


@pytest.mark.parametrize("kind", ["linear", "random_waypoint"])
def test_positions_are_a_pure_function_of_time(kind: str) -> None:
    lay = _layout(LAYOUTS[3])
    cfg = MobilityConfig(kind=kind, speed_mps=15.0, pause_s=1.0)  # type: ignore[arg-type]
    a = make_mobility(cfg, lay, np.random.default_rng(5))
    b = make_mobility(cfg, lay, np.random.default_rng(5))
    late = a.positions_at(100.0)  # a jumps ahead first
    times = [0.0, 3.3, 17.0, 100.0, 42.0]
    for t in times:
        np.testing.assert_array_equal(a.positions_at(t), b.positions_at(t))
    np.testing.assert_array_equal(late, b.positions_at(100.0))


def test_linear_reflection_keeps_speed_and_moves_straight_between_bounces() -> None:
    lay = _layout(LAYOUTS[0])
    mob = make_mobility(MobilityConfig(kind="linear", speed_mps=1.0), lay, np.random.default_rng(0))
    p1, p2 = mob.positions_at(1.0), mob.positions_at(1.5)
    # A UE moves 0.5 m in 0.5 s; less only if it was reflected in between (started < 1.5 m
    # from the boundary), which is rare in a 120 m cell.
    step = np.linalg.norm(p2[..., :2] - p1[..., :2], axis=-1)
    assert np.all(step <= 0.5 + 1e-9)
    assert np.mean(np.isclose(step, 0.5, atol=1e-9)) > 0.9
    np.testing.assert_allclose(mob.speed_mps, 1.0)


def test_random_waypoint_pauses() -> None:
    lay = _layout(LAYOUTS[0])
    mob = make_mobility(
        MobilityConfig(kind="random_waypoint", speed_mps=50.0, pause_s=3000.0),
        lay,
        np.random.default_rng(0),
    )
    # At 50 m/s every first leg (< 240 m) ends within 5 s, then the UEs pause for a long time.
    p = mob.positions_at(10.0)
    np.testing.assert_array_equal(p, mob.positions_at(20.0))
    assert np.all(mob.speed_mps == 0.0)
    assert np.all(in_cell(lay, p))


def test_static_never_moves() -> None:
    lay = _layout(LAYOUTS[2])
    mob = make_mobility(MobilityConfig(kind="static", speed_mps=3.0), lay, np.random.default_rng(0))
    assert isinstance(mob, StaticMobility)
    for t in (0.0, 1.0, 1e4):
        np.testing.assert_array_equal(mob.positions_at(t), lay.ue_position_m)
    # The speed only sets the Doppler spread.
    np.testing.assert_array_equal(mob.speed_mps, np.full((lay.n_cell, lay.n_ue), 3.0))


def test_zero_speed_is_static_with_zero_doppler() -> None:
    lay = _layout(LAYOUTS[0])
    mob = make_mobility(MobilityConfig(kind="linear", speed_mps=0.0), lay, np.random.default_rng(0))
    np.testing.assert_array_equal(mob.positions_at(50.0), lay.ue_position_m)
    assert np.all(mob.speed_mps == 0.0)
