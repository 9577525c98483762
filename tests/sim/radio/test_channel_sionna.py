"""Sionna TR 38.901 backend: contract, determinism, and agreement with the statistical backend."""

from __future__ import annotations

import numpy as np
import pytest

from edgetwin.sim.radio.channel import ChannelConfig, ChannelModel, make_channel
from edgetwin.sim.radio.geometry import Layout, TopologyConfig, build_layout
from edgetwin.sim.radio.mobility import MobilityConfig, make_mobility

pytest.importorskip("sionna.phy")

FC = 3.5e9
SLOT_S = 5e-4
PRB_HZ = (np.arange(51) - 25) * 360e3


def _make(
    backend: str, layout: Layout, mob: dict[str, object] | None = None, seed: int = 0, **cfg: object
) -> ChannelModel:
    mobility = make_mobility(MobilityConfig(**(mob or {})), layout, np.random.default_rng(1))  # type: ignore[arg-type]
    return make_channel(
        ChannelConfig(backend=backend, **cfg),  # type: ignore[arg-type]
        layout,
        mobility,
        carrier_hz=FC,
        prb_frequencies_hz=PRB_HZ,
        slot_s=SLOT_S,
        bs_antenna_gain_dbi=8.0,
        rng=np.random.default_rng(seed),
    )


def test_contract_determinism_and_continuity() -> None:
    lay = build_layout(TopologyConfig(kind="single", ues_per_cell=4), np.random.default_rng(0))
    a = _make("sionna", lay, {"kind": "linear", "speed_mps": 10.0}, batch_slots=20)
    b = _make("sionna", lay, {"kind": "linear", "speed_mps": 10.0}, batch_slots=20)
    assert (a.n_cell, a.n_ue, a.n_prb) == (1, 4, 51)
    ba = [a.next_batch() for _ in range(2)]
    bb = [b.next_batch() for _ in range(2)]
    for k, (x, y) in enumerate(zip(ba, bb, strict=True)):
        assert x.first_slot == 20 * k
        assert x.gain.shape == (20, 1, 4, 51)
        assert x.large_scale_gain.shape == (1, 4, 1)
        assert x.pathloss_db.shape == (1, 4)
        assert x.los.shape == (1, 4)
        assert np.all(np.isfinite(x.gain))
        assert np.all(x.gain > 0)
        np.testing.assert_array_equal(x.gain, y.gain)  # same seed -> same batches
    # The UEs moved 0.01 m/slot: the path loss follows them.
    assert not np.array_equal(ba[0].pathloss_db, ba[1].pathloss_db)
    # Continuity: the step across the batch boundary is like the steps inside a batch.
    g = np.log(np.concatenate([ba[0].gain, ba[1].gain])[:, 0])  # [40, n_ue, n_prb]
    steps = np.median(np.abs(np.diff(g, axis=0)), axis=(1, 2))  # [39]
    assert steps[19] < 3 * np.median(steps)


def test_statistics_agree_with_the_statistical_backend() -> None:
    """UMa, 7 sites x 3 sectors x 20 UEs = 420 UEs on the same drop for both backends.

    Both backends use the same TR 38.901 path-loss and LOS-probability formulas (test_pathloss
    checks they match Sionna's to 1e-9 dB) and the same antenna pattern, so their
    distributions differ only through independent LOS / shadowing / fading draws. The per-UE
    random terms spread by ~7 dB (σ_SF = 4-6 dB plus the LOS/NLOS gap; ~8 dB for the SINR),
    so the difference of two sample medians over N = 420 UEs has a standard deviation of about
    1.25·sqrt(2)·8/sqrt(420) ≈ 0.7 dB: the 3 dB tolerance is ~4σ.
    """
    lay = build_layout(
        TopologyConfig(kind="hex", n_sites=7, sectors_per_site=3, ues_per_cell=20),
        np.random.default_rng(4),
    )
    c = np.arange(lay.n_cell)
    noise_over_p = 10 ** ((-174 + 10 * np.log10(51 * 360e3) + 9 - 46) / 10)  # 46 dBm, NF 9 dB
    medians = {}
    for backend in ("statistical", "sionna"):
        b = _make(backend, lay, batch_slots=10).next_batch()
        serving_ls = b.large_scale_gain[c, :, c]  # [n_cell, n_ue]
        fading = b.gain / serving_ls[None, :, :, None]
        # Mean fading gain 1: 420 links x 6 PRBs 10 apart, std of the mean ~0.016 (±0.08).
        assert fading[0, :, :, ::10].mean() == pytest.approx(1.0, abs=0.08)
        interference = b.large_scale_gain.sum(axis=2) - serving_ls
        sinr_db = 10 * np.log10(b.gain.mean(axis=(0, 3)) / (noise_over_p + interference))
        medians[backend] = (
            np.median(b.pathloss_db),
            np.median(-10 * np.log10(serving_ls)),
            np.median(sinr_db),
            b.los.mean(),
        )
    st, si = medians["statistical"], medians["sionna"]
    assert st[0] == pytest.approx(si[0], abs=3.0)  # path loss (incl. O2I), dB
    assert st[1] == pytest.approx(si[1], abs=3.0)  # coupling loss incl. shadowing/antenna, dB
    assert st[2] == pytest.approx(si[2], abs=3.0)  # wideband SINR, dB
    # LOS share: 420 Bernoulli draws each, std of the difference ≈ 0.03.
    assert st[3] == pytest.approx(si[3], abs=0.12)


@pytest.mark.slow
@pytest.mark.parametrize(("scenario", "isd"), [("umi", 200.0), ("rma", 1732.0), ("inh", 40.0)])
def test_other_scenarios_agree(scenario: str, isd: float) -> None:
    h_bs = {"umi": 10.0, "rma": 35.0, "inh": 3.0}[scenario]
    lay = build_layout(
        TopologyConfig(
            kind="hex",
            n_sites=7,
            sectors_per_site=3,
            ues_per_cell=10,
            isd_m=isd,
            bs_height_m=h_bs,
            ue_height_m=1.0 if scenario == "inh" else 1.5,
            min_distance_m=3.0 if scenario == "inh" else 10.0,
        ),
        np.random.default_rng(4),
    )
    med = {}
    for backend in ("statistical", "sionna"):
        b = _make(backend, lay, batch_slots=5, scenario=scenario).next_batch()
        med[backend] = np.median(b.pathloss_db)
    assert med["statistical"] == pytest.approx(med["sionna"], abs=3.0)
