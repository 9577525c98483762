"""Ray-traced backend (sionna.rt): batches, disk cache, indoor UEs, clear LLVM error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetwin.sim.radio.channel import ChannelConfig, ChannelModel, make_channel
from edgetwin.sim.radio.geometry import Layout, TopologyConfig, build_layout, in_cell
from edgetwin.sim.radio.mobility import MobilityConfig, make_mobility

PRB_HZ = (np.arange(24) - 12) * 360e3


def _rt_or_skip() -> None:
    pytest.importorskip("drjit")
    from edgetwin.sim.radio.channel_raytraced import rt_status

    ok, why = rt_status()
    if not ok:
        pytest.skip(f"ray tracing unavailable: {why}")


def _street_layout(seed: int = 0) -> Layout:
    # simple_street_canyon spans x in [-94, 92] m, y in [-60, 61] m.
    return build_layout(
        TopologyConfig(kind="single", cell_radius_m=50.0, ues_per_cell=6, min_distance_m=5.0),
        np.random.default_rng(seed),
    )


def _channel(layout: Layout, cache: Path, seed: int = 2, **cfg: object) -> ChannelModel:
    mob = make_mobility(
        MobilityConfig(kind="linear", speed_mps=3.0), layout, np.random.default_rng(1)
    )
    return make_channel(
        ChannelConfig(backend="raytraced", cache_dir=str(cache), batch_slots=20, **cfg),  # type: ignore[arg-type]
        layout,
        mob,
        carrier_hz=3.5e9,
        prb_frequencies_hz=PRB_HZ,
        slot_s=5e-4,
        bs_antenna_gain_dbi=8.0,
        rng=np.random.default_rng(seed),
    )


def test_batches_cache_and_continuity(tmp_path: Path) -> None:
    _rt_or_skip()
    from edgetwin.sim.radio.channel_raytraced import indoor_mask, outdoor_layout

    layout = outdoor_layout(_street_layout(), "simple_street_canyon", np.random.default_rng(5))
    assert np.all(in_cell(layout, layout.ue_position_m))
    ch = _channel(layout, tmp_path)
    assert not indoor_mask(ch._scene, layout.ue_position_m).any()
    batches = [ch.next_batch() for _ in range(3)]
    assert ch.n_traced == 3  # moving UEs: one trace per batch start
    assert len(list(tmp_path.glob("*.npz"))) == 3
    for k, b in enumerate(batches):
        assert b.first_slot == 20 * k
        assert b.gain.shape == (20, 1, 6, 24)
        assert b.large_scale_gain.shape == (1, 6, 1)
        assert np.all(np.isfinite(b.gain))
        assert np.all(b.gain > 0)
        # Street-level links over 5-50 m: 60-110 dB.
        assert np.all((b.pathloss_db > 50) & (b.pathloss_db < 130))
    # A second run loads every trace from the cache and gives identical batches.
    again = _channel(layout, tmp_path)
    for b in batches:
        np.testing.assert_array_equal(again.next_batch().gain, b.gain)
    assert again.n_traced == 0
    assert again.n_cache_hits == 3
    # Continuity across traces: the step at a batch boundary is like the steps inside.
    g = np.log(np.concatenate([b.gain for b in batches])[:, 0])  # [60, n_ue, n_prb]
    steps = np.median(np.abs(np.diff(g, axis=0)), axis=(1, 2))
    assert steps[19] < 3 * np.median(steps)
    assert steps[39] < 3 * np.median(steps)


def test_indoor_ues_are_reported(tmp_path: Path) -> None:
    _rt_or_skip()
    from edgetwin.sim.radio.channel_raytraced import _load_scene, indoor_mask

    layout = _street_layout()
    inside = indoor_mask(_load_scene("simple_street_canyon", 3.5e9), layout.ue_position_m)
    assert inside.any(), "this drop has UEs inside buildings"
    with pytest.raises(ValueError, match="inside buildings"):
        _channel(layout, tmp_path)


def test_unknown_scene_and_too_large_cells(tmp_path: Path) -> None:
    _rt_or_skip()
    layout = _street_layout()
    with pytest.raises(ValueError, match=r"not a sionna\.rt scene"):
        _channel(layout, tmp_path, scene="atlantis")
    big = build_layout(TopologyConfig(kind="single"), np.random.default_rng(0))  # 289 m radius
    with pytest.raises(ValueError, match="do not fit"):
        _channel(big, tmp_path)


def test_clear_error_without_llvm(monkeypatch: pytest.MonkeyPatch) -> None:
    dr = pytest.importorskip("drjit")
    from edgetwin.sim.radio import channel_raytraced

    monkeypatch.setattr(dr, "has_backend", lambda backend: False)
    with pytest.raises(RuntimeError, match="libllvm19"):
        channel_raytraced._require_rt()
    ok, why = channel_raytraced.rt_status()
    assert not ok
    assert "LLVM backend" in why


def test_backend_modules_import_no_heavy_dependency() -> None:
    code = (
        "import sys, edgetwin.sim.radio.channel_raytraced, edgetwin.sim.radio.channel_sionna\n"
        "heavy = [m for m in ('torch', 'sionna', 'drjit', 'mitsuba') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
