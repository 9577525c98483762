"""Layouts: counts, inter-site distance, drops inside their cell, antenna pattern, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edgetwin.sim.radio.geometry import (
    Layout,
    TopologyConfig,
    antenna_gain_db,
    build_layout,
    distances_2d_m,
    hex_site_positions_m,
    in_cell,
)


def _layout(**kw: object) -> Layout:
    return build_layout(TopologyConfig(**kw), np.random.default_rng(7))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "n_cell"),
    [
        ({"kind": "single"}, 1),
        ({"kind": "single", "sectors_per_site": 3}, 3),
        ({"kind": "hex", "n_sites": 1}, 1),
        ({"kind": "hex", "n_sites": 7}, 7),
        ({"kind": "hex", "n_sites": 7, "sectors_per_site": 3}, 21),
        ({"kind": "hex", "n_sites": 19, "sectors_per_site": 3}, 57),
    ],
)
def test_counts_and_shapes(kw: dict[str, object], n_cell: int) -> None:
    lay = _layout(**kw, ues_per_cell=12)
    assert lay.n_cell == n_cell
    assert lay.n_ue == 12
    assert lay.bs_position_m.shape == (n_cell, 3)
    assert lay.boresight_rad.shape == (n_cell,)
    assert lay.ue_position_m.shape == (n_cell, 12, 3)
    assert lay.indoor.shape == (n_cell, 12)
    assert lay.site_of_cell.shape == (n_cell,)
    assert np.all(lay.bs_position_m[:, 2] == 25.0)
    assert np.all(lay.ue_position_m[..., 2] == 1.5)


def test_hex_grid_isd_exact() -> None:
    isd = 500.0
    for n_sites in (7, 19):
        xy = hex_site_positions_m(n_sites, isd)
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        d_off = d[~np.eye(n_sites, dtype=bool)]
        np.testing.assert_allclose(d_off.min(), isd, rtol=1e-12)
        # Every neighbour distance is exactly isd (6 neighbours for the centre site).
        assert np.sum(np.isclose(d[0], isd)) == 6
        np.testing.assert_allclose(xy[0], [0.0, 0.0], atol=1e-12)
    assert len(np.unique(np.round(hex_site_positions_m(19, isd), 6), axis=0)) == 19


def test_sectors_share_site_and_boresights() -> None:
    lay = _layout(kind="hex", n_sites=19, sectors_per_site=3)
    assert lay.n_site == 19
    np.testing.assert_array_equal(lay.site_of_cell, np.repeat(np.arange(19), 3))
    # TR 38.901 Table 7.8-1: 30°, 150°, 270°.
    np.testing.assert_allclose(np.rad2deg(lay.boresight_rad[:3]), [30.0, 150.0, 270.0])
    assert np.all(lay.bs_position_m[0] == lay.bs_position_m[2])
    assert np.all(np.isnan(_layout(kind="hex", n_sites=7).boresight_rad))


@pytest.mark.parametrize(
    "kw",
    [
        {"kind": "single"},
        {"kind": "single", "sectors_per_site": 3, "cell_radius_m": 200.0},
        {"kind": "hex", "n_sites": 7},
        {"kind": "hex", "n_sites": 19, "sectors_per_site": 3},
    ],
)
def test_ues_inside_their_cell_and_beyond_min_distance(kw: dict[str, object]) -> None:
    lay = _layout(**kw, ues_per_cell=50, min_distance_m=35.0)
    assert np.all(in_cell(lay, lay.ue_position_m))
    d = distances_2d_m(lay, lay.ue_position_m)
    serving = d[np.arange(lay.n_cell), :, np.arange(lay.n_cell)]
    assert np.all(serving >= 35.0)
    if kw["kind"] == "hex":
        # Hex cells are Voronoi cells: no other site is closer than the serving one.
        assert np.all(serving <= d.min(axis=2) + 1e-9)
        assert serving.max() <= 500.0 / np.sqrt(3.0) + 1e-9
    else:
        assert serving.max() <= lay.cell_radius_m[0] + 1e-9
    if lay.n_cell % 3 == 0 and not np.all(np.isnan(lay.boresight_rad)):
        # Sector UEs lie within ±60° of their boresight.
        rel = lay.ue_position_m[..., :2] - lay.bs_position_m[:, None, :2]
        off = np.angle(
            np.exp(1j * (np.arctan2(rel[..., 1], rel[..., 0]) - lay.boresight_rad[:, None]))
        )
        assert np.all(np.abs(off) <= np.pi / 3 + 1e-9)


def test_uniform_drop_in_disk() -> None:
    # Uniform in the annulus [35, 250] m: E[r²] = (35² + 250²) / 2, std of the mean < 1 %.
    lay = _layout(kind="single", cell_radius_m=250.0, ues_per_cell=1000)
    r2 = (np.hypot(lay.ue_position_m[0, :, 0], lay.ue_position_m[0, :, 1]) ** 2).mean()
    assert r2 == pytest.approx((35.0**2 + 250.0**2) / 2, rel=0.06)


def test_indoor_fraction() -> None:
    lay = _layout(kind="hex", n_sites=7, sectors_per_site=3, ues_per_cell=100, indoor_fraction=0.8)
    # 2100 Bernoulli(0.8): std 0.0087.
    assert lay.indoor.mean() == pytest.approx(0.8, abs=0.04)
    assert not _layout(kind="single").indoor.any()


def test_determinism_by_seed() -> None:
    cfg = TopologyConfig(kind="hex", n_sites=7, sectors_per_site=3, indoor_fraction=0.5)
    a = build_layout(cfg, np.random.default_rng(3))
    b = build_layout(cfg, np.random.default_rng(3))
    c = build_layout(cfg, np.random.default_rng(4))
    np.testing.assert_array_equal(a.ue_position_m, b.ue_position_m)
    np.testing.assert_array_equal(a.indoor, b.indoor)
    assert not np.array_equal(a.ue_position_m, c.ue_position_m)


def test_antenna_pattern() -> None:
    lay = _layout(kind="single", sectors_per_site=3, ues_per_cell=1)
    # Points at azimuths 30° (boresight of sector 0), 62.5° and 210° (back of sector 0).
    az = np.deg2rad([30.0, 62.5, 210.0])
    pts = np.zeros((3, 1, 3))
    pts[:, 0, 0] = 100 * np.cos(az)
    pts[:, 0, 1] = 100 * np.sin(az)
    g = antenna_gain_db(lay, pts, max_gain_dbi=8.0)
    assert g.shape == (3, 1, 3)
    # TR 38.901 Table 7.3-1: 8 − min(12 (φ/65)², 30).
    assert g[0, 0, 0] == pytest.approx(8.0)
    assert g[1, 0, 0] == pytest.approx(8.0 - 12.0 * (32.5 / 65.0) ** 2)  # = 5 dB
    assert g[2, 0, 0] == pytest.approx(8.0 - 30.0)  # 180° off boresight
    omni = _layout(kind="single", bs_antenna_gain_dbi=5.0)
    assert np.all(antenna_gain_db(omni, omni.ue_position_m) == 5.0)


def test_invalid_configs_name_the_field() -> None:
    with pytest.raises(ValidationError, match="n_sites"):
        TopologyConfig(kind="single", n_sites=7)
    with pytest.raises(ValidationError, match="min_distance_m"):
        TopologyConfig(kind="single", cell_radius_m=30.0, min_distance_m=35.0)
    with pytest.raises(ValidationError, match="cell_radius_m"):
        TopologyConfig(kind="hex", cell_radius_m=100.0)
