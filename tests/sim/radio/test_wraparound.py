"""Wrap-around of the hex layout and the 3-D BS antenna (TR 38.901 §7.8.1, Table 7.3-1)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edgetwin.sim.radio.geometry import (
    TopologyConfig,
    antenna_gain_db,
    bs_gain_db,
    build_layout,
    distances_2d_m,
    element_pattern_db,
    hex_site_positions_m,
    hex_wrap_offsets_m,
    ue_to_bs_xy_m,
    vertical_array_gain_db,
)

ISD = 500.0


def _site_index(sites: np.ndarray, x: float, y: float) -> int:
    return int(np.argmin(np.hypot(sites[:, 0] - x, sites[:, 1] - y)))


@pytest.mark.parametrize(("n_sites", "norm"), [(7, np.sqrt(7.0)), (19, np.sqrt(19.0))])
def test_offsets_are_cluster_translations(n_sites: int, norm: float) -> None:
    # TR 38.901 §7.8.1 wrap-around: six copies of the N-site cluster, |shift| = sqrt(N) ISD.
    w = hex_wrap_offsets_m(n_sites, ISD)
    assert w.shape == (7, 2)
    np.testing.assert_allclose(w[0], 0.0)
    np.testing.assert_allclose(np.hypot(w[1:, 0], w[1:, 1]), norm * ISD)
    ang = np.sort(np.rad2deg(np.arctan2(w[1:, 1], w[1:, 0])) % 360.0)
    np.testing.assert_allclose(np.diff(ang), 60.0)
    # The copies tile the plane: no two images of any sites coincide.
    pts = (hex_site_positions_m(n_sites, ISD)[:, None, :] + w[None]).reshape(-1, 2)
    dd = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1))
    np.fill_diagonal(dd, np.inf)
    assert dd.min() == pytest.approx(ISD)


@pytest.mark.parametrize("n_sites", [7, 19])
def test_every_site_has_six_neighbours_on_the_torus(n_sites: int) -> None:
    sites = hex_site_positions_m(n_sites, ISD)
    w = hex_wrap_offsets_m(n_sites, ISD)
    d = np.hypot(*np.moveaxis(ue_to_bs_xy_m(sites, sites, w), -1, 0))
    assert np.all(np.sum(np.isclose(d, ISD), axis=1) == 6)
    # Without wrap-around an outer site of the 19-site grid has only 3 neighbours at ISD.
    d0 = np.hypot(*np.moveaxis(ue_to_bs_xy_m(sites, sites, np.zeros((0, 2))), -1, 0))
    assert np.sum(np.isclose(d0, ISD), axis=1).min() == 3


def test_hand_computed_distance_to_the_opposite_edge_site() -> None:
    # UE at the outer site (2 ISD, 0); the site at (-2 ISD, 0) is 4 ISD away in the plain grid
    # but its image shifted by axial (3, 2) lies at axial (1, 2) = (2 ISD, sqrt(3) ISD), so
    # with wrap-around it is sqrt(3) ISD away (the next image, axial (3, -3), is sqrt(7) ISD).
    cfg = dict(kind="hex", n_sites=19, sectors_per_site=3, isd_m=ISD, ues_per_cell=1)
    lay_w = build_layout(TopologyConfig(**cfg, wrap_around=True), np.random.default_rng(0))
    lay_0 = build_layout(TopologyConfig(**cfg), np.random.default_rng(0))
    sites = lay_w.bs_position_m[::3, :2]
    far = _site_index(sites, -2 * ISD, 0.0)
    ue = np.array([[[2 * ISD, 0.0, 1.5]]])
    assert distances_2d_m(lay_w, ue)[0, 0, 3 * far] == pytest.approx(np.sqrt(3.0) * ISD)
    assert distances_2d_m(lay_0, ue)[0, 0, 3 * far] == pytest.approx(4.0 * ISD)
    # The wrapped azimuth is that of the image: from (2, sqrt 3) ISD down to the UE, -90°, so
    # the sector with boresight 270° sees it on boresight (A_H = 0, TR 38.901 Table 7.3-1).
    g = antenna_gain_db(lay_w, ue)[0, 0, 3 * far : 3 * far + 3]
    assert np.argmax(g) == 2
    assert g[2] == pytest.approx(lay_w.bs_antenna_gain_dbi)


def test_default_is_off_and_unchanged() -> None:
    cfg = TopologyConfig(kind="hex", n_sites=19, sectors_per_site=3, ues_per_cell=3)
    assert not cfg.wrap_around
    lay = build_layout(cfg, np.random.default_rng(3))
    assert lay.wrap_offset_m.shape == (0, 2)
    d = lay.ue_position_m[:, :, None, :2] - lay.bs_position_m[None, None, :, :2]
    np.testing.assert_array_equal(distances_2d_m(lay, lay.ue_position_m), np.hypot(*d.T).T)


def test_drops_do_not_depend_on_wrap_around() -> None:
    cfg = dict(kind="hex", n_sites=7, sectors_per_site=3, ues_per_cell=4)
    a = build_layout(TopologyConfig(**cfg), np.random.default_rng(5))
    b = build_layout(TopologyConfig(**cfg, wrap_around=True), np.random.default_rng(5))
    np.testing.assert_array_equal(a.ue_position_m, b.ue_position_m)
    # Wrapped distances are never longer than plain ones.
    assert np.all(distances_2d_m(b, b.ue_position_m) <= distances_2d_m(a, a.ue_position_m) + 1e-9)


@pytest.mark.parametrize("kw", [{"kind": "single"}, {"kind": "hex", "n_sites": 1}])
def test_wrap_around_needs_a_multi_site_hex_grid(kw: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="wrap_around"):
        TopologyConfig(**kw, wrap_around=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("theta", "phi", "expected"),
    [
        (90.0, 0.0, 0.0),  # boresight
        (90.0, 32.5, -3.0),  # A_E,H: 12 (φ/65°)² = 3 dB at half the 3 dB beamwidth
        (122.5, 0.0, -3.0),  # A_E,V: 12 ((θ-90°)/65°)² = 3 dB
        (122.5, 32.5, -6.0),  # sum of both cuts
        (90.0, 180.0, -30.0),  # A_max = 30 dB (front-to-back)
        (180.0, 0.0, -12.0 * (90.0 / 65.0) ** 2),  # SLA_V not reached: -23.0 dB
        (180.0, 90.0, -30.0),  # -(A_V + A_H) = 46 dB, floored at A_max = 30 dB
    ],
)
def test_element_pattern_table_7_3_1(theta: float, phi: float, expected: float) -> None:
    # TR 38.901 Table 7.3-1: A = -min(-(A_V + A_H), 30 dB).
    assert float(element_pattern_db(np.array(theta), np.array(phi))) == pytest.approx(expected)


def test_vertical_array_gain_peaks_at_the_electrical_tilt() -> None:
    # 10 elements, one TXRU (TR 38.901 Table 7.8-1 calibration array): 10 dB at θ_etilt = 102°.
    theta = np.linspace(60.0, 150.0, 9001)
    g = vertical_array_gain_db(theta, 10, 0.5, 12.0)
    assert theta[np.argmax(g)] == pytest.approx(102.0, abs=0.02)
    assert g.max() == pytest.approx(10.0, abs=1e-6)
    assert float(vertical_array_gain_db(np.array(90.0), 10, 0.5, 12.0)) < 7.0
    np.testing.assert_array_equal(vertical_array_gain_db(theta, 1, 0.5, 12.0), 0.0)


def test_3d_gain_at_the_tilt_is_element_pattern_plus_array_gain() -> None:
    cfg = TopologyConfig(
        kind="hex",
        n_sites=7,
        sectors_per_site=3,
        ues_per_cell=1,
        bs_height_m=25.0,
        bs_antenna_pattern="3d",
        bs_downtilt_deg=12.0,
        bs_vertical_elements=10,
    )
    lay = build_layout(cfg, np.random.default_rng(0))
    # UE on the 30° boresight of cell 0, 12° below the horizon seen from the BS (θ = 102°).
    r = (25.0 - 1.5) / np.tan(np.deg2rad(12.0))
    ue = np.array([[r * np.cos(np.pi / 6), r * np.sin(np.pi / 6), 1.5]])
    # G_E,max + A_E,V(102°) + 10 log10(10) = 8 - 12 (12/65)² + 10 (TR 38.901 Table 7.3-1).
    expected = 8.0 - 12.0 * (12.0 / 65.0) ** 2 + 10.0
    assert bs_gain_db(lay, ue)[0, 0] == pytest.approx(expected, abs=1e-6)
    # The other sectors of the site see the UE 120° off boresight: floored at A_max = 30 dB.
    assert bs_gain_db(lay, ue)[0, 1] < expected - 25.0
