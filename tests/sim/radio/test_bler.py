"""Link tables: code-block BLER vs Sionna's PHYAbstraction, TBLER, MCS selection, CQI mapping."""

from __future__ import annotations

import numpy as np
import pytest

from edgetwin.sim.radio.bler import LinkTables, build_link_tables, code_block_bler
from edgetwin.sim.radio.link import code_block_segmentation, load_sionna_table, tbs_table
from edgetwin.sim.radio.nr_tables import CQI_TABLES, MCS_TABLES

N_PRB = 51  # 20 MHz at 30 kHz (TS 38.101-1 Table 5.3.2-1)


@pytest.fixture(
    scope="module", params=[(1, 1), (2, 2), (3, 3)], ids=lambda p: f"mcs{p[0]}cqi{p[1]}"
)
def tables(request: pytest.FixtureRequest) -> LinkTables:
    mcs_table, cqi_table = request.param
    return build_link_tables(
        n_prb_max=N_PRB, n_symbols=13, mcs_table=mcs_table, cqi_table=cqi_table
    )


def test_shapes_and_ranges(tables: LinkTables) -> None:
    n_mcs = MCS_TABLES[tables.mcs_table].n_mcs
    assert tables.n_mcs == n_mcs
    assert tables.n_sinr == 601  # −15..45 dB in 0.1 dB
    assert tables.tbs_bits.shape == (N_PRB + 1, n_mcs)
    assert tables.tbler.shape == (N_PRB + 1, n_mcs, 601)
    assert tables.best_mcs.shape == (N_PRB + 1, 601)
    assert tables.se_at_target.shape == tables.cqi_of_sinr.shape == (601,)
    assert tables.sinr_of_cqi_db.shape == (16,)
    assert tables.eesm_beta.shape == (n_mcs,)
    assert tables.best_mcs.dtype == tables.cqi_of_sinr.dtype == np.int64
    np.testing.assert_array_equal(tables.tbs_bits, tbs_table(N_PRB, 13, mcs_table=tables.mcs_table))
    assert np.all((tables.tbler >= 0.0) & (tables.tbler <= 1.0))
    assert np.all(tables.tbler[0] == 1.0)
    assert tables.sinr_grid_db[0] == -15.0
    assert tables.sinr_grid_db[-1] == pytest.approx(45.0)


def test_monotone(tables: LinkTables) -> None:
    # More SINR never hurts: TBLER non-increasing, MCS / CQI / SE non-decreasing.
    assert np.all(np.diff(tables.tbler, axis=-1) <= 0.0)
    assert np.all(np.diff(tables.best_mcs, axis=-1) >= 0)
    # SE of the best MCS: non-decreasing except the step from table 1's MCS 16 (16QAM,
    # 4·658/1024 = 2.5703) to MCS 17 (64QAM, 6·438/1024 = 2.5664), as TS 38.214 lists them.
    assert np.all(np.diff(tables.se_at_target) >= -0.0040)
    assert np.all(np.diff(tables.cqi_of_sinr) >= 0)
    assert np.all(np.diff(tables.sinr_of_cqi_db) >= 0.0)


def test_extremes(tables: LinkTables) -> None:
    top = tables.n_mcs - 1
    # −15 dB is below every curve; 45 dB above every curve (tables extrapolated, not clamped).
    assert np.all(tables.best_mcs[1:, 0] == 0)
    assert np.all(tables.tbler[1:, :, 0] > tables.bler_target)
    assert tables.se_at_target[0] == 0.0
    assert np.all(tables.best_mcs[1:, -1] == top)
    assert tables.cqi_of_sinr[0] == 0
    assert tables.cqi_of_sinr[-1] == 15
    assert tables.sinr_of_cqi_db[0] == tables.sinr_min_db
    se = MCS_TABLES[tables.mcs_table].spectral_efficiency
    assert tables.se_at_target[-1] == se[top]


def test_best_mcs_definition(tables: LinkTables) -> None:
    rng = np.random.default_rng(5)
    for p, s in zip(rng.integers(1, N_PRB + 1, 60), rng.integers(0, 601, 60), strict=True):
        ok = np.flatnonzero(tables.tbler[p, :, s] <= tables.bler_target)
        assert tables.best_mcs[p, s] == (ok.max() if ok.size else 0)
    s = 300
    assert (
        tables.se_at_target[s]
        == MCS_TABLES[tables.mcs_table].spectral_efficiency[tables.best_mcs[N_PRB, s]]
    )


def test_tbler_combines_code_blocks(tables: LinkTables) -> None:
    # TBLER = 1 − (1 − BLER_cb(K'))^C with C, K' from TS 38.212 §5.2.2.
    rng = np.random.default_rng(9)
    rate = MCS_TABLES[tables.mcs_table].code_rate
    grid = tables.sinr_grid_db
    for p, m in zip(rng.integers(1, N_PRB + 1, 25), rng.integers(0, tables.n_mcs, 25), strict=True):
        c, k = code_block_segmentation(tables.tbs_bits[p, m], rate[m])
        cb = code_block_bler(int(m), k, grid, mcs_table=tables.mcs_table)
        np.testing.assert_allclose(tables.tbler[p, m], 1.0 - (1.0 - cb) ** c, atol=1e-12)


def test_cqi_definition(tables: LinkTables) -> None:
    # TS 38.214 §5.2.2.1: the highest CQI whose (equivalent) MCS meets the target TB error
    # probability (0.1 for CQI tables 1/2, 1e-5 for table 3) on the reference resource.
    assert tables.cqi_bler_target == (1e-5 if tables.cqi_table == 3 else 0.1)
    se = MCS_TABLES[tables.mcs_table].spectral_efficiency
    eff = CQI_TABLES[tables.cqi_table].exact_efficiency
    eq = [0] + [int(np.flatnonzero(se <= e + 1e-12).max(initial=0)) for e in eff[1:]]
    full = tables.tbler[N_PRB]
    for s in range(0, 601, 7):
        q = tables.cqi_of_sinr[s]
        if q > 0:
            assert full[eq[q], s] <= tables.cqi_bler_target
        for higher in range(q + 1, 16):
            assert full[eq[higher], s] > tables.cqi_bler_target
    # The gNB's SINR for CQI q maps back to a CQI ≥ q (lower edge of the interval).
    reached = np.unique(tables.cqi_of_sinr)
    back = tables.cqi_of_sinr[tables.sinr_index(tables.sinr_of_cqi_db[reached])]
    np.testing.assert_array_equal(back, reached)


def test_sinr_index() -> None:
    t = build_link_tables(
        n_prb_max=6, n_symbols=13, sinr_min_db=-10.0, sinr_max_db=30.0, step_db=0.5
    )
    assert t.n_sinr == 81
    x = np.array([[-np.inf, -50.0, -10.0, -9.76], [0.24, 0.26, 29.9, 1e9]])
    idx = t.sinr_index(x)
    assert idx.shape == x.shape
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, [[0, 0, 0, 0], [20, 21, 80, 80]])
    assert int(t.sinr_index(np.float64(5.0))) == 30
    with pytest.raises(ValueError, match="mcs_table"):
        build_link_tables(n_prb_max=6, n_symbols=13, mcs_table=4)


def test_reference_sinr_thresholds() -> None:
    # Sanity against the AWGN capacity: MCS 28 of table 1 (5.55 bit/RE) needs more than the
    # Shannon SNR 10·log10(2^5.55 − 1) = 16.6 dB, and an LDPC code at 10 % BLER is within a few dB.
    t = build_link_tables(n_prb_max=N_PRB, n_symbols=13)
    grid = t.sinr_grid_db
    s28 = grid[np.argmax(t.tbler[N_PRB, 28] <= 0.1)]
    s0 = grid[np.argmax(t.tbler[N_PRB, 0] <= 0.1)]
    assert 16.6 < s28 < 22.0
    assert 10 * np.log10(2 ** (2 * 120 / 1024) - 1) < s0 < -4.0  # −7.5 dB Shannon for MCS 0


def test_filled_mcs_follow_the_shannon_shift() -> None:
    # Sionna has no curve for table-1 MCS 0..2: MCS 0 is MCS 3's curve moved by the Shannon-SNR
    # difference of their spectral efficiencies.
    mcs_keys = load_sionna_table("sys/bler_tables/PDSCH_table1.json")["category"]["1"]["index"]
    assert "0" not in mcs_keys["1"]["MCS"]
    se = MCS_TABLES[1].spectral_efficiency
    shift = 10 * np.log10((2 ** se[0] - 1) / (2 ** se[3] - 1))
    snr = np.linspace(-8.0, 0.0, 17)
    np.testing.assert_allclose(
        code_block_bler(0, 1000, snr), code_block_bler(3, 1000, snr - shift), atol=1e-12
    )
    assert np.all(code_block_bler(0, 1000, snr) <= code_block_bler(3, 1000, snr))


def test_extrapolation_beyond_table() -> None:
    # Table 2 MCS 27 ends at 25 dB with BLER 0.15 (CBS 2000); continuing the log-slope lets
    # it drop below 10 % instead of staying at 0.15 (Sionna's clamp).
    b = code_block_bler(27, 2000, np.array([25.0, 26.0, 40.0]), mcs_table=2)
    assert b[0] == pytest.approx(0.15033333, rel=1e-6)
    assert b[1] < 0.1
    assert b[2] == 0.0
    assert np.all(code_block_bler(10, np.array([24, 2000]), -30.0) == 1.0)


def test_code_block_bler_matches_sionna_phy_abstraction() -> None:
    sys_mod = pytest.importorskip("sionna.sys")
    torch = pytest.importorskip("torch")
    import sionna

    for table, snr_max in ((1, 20.0), (2, 25.0)):
        path = f"{sionna.__path__[0]}/sys/bler_tables/PDSCH_table{table}.json"
        phy = sys_mod.PHYAbstraction(load_bler_tables_from=[path])
        # SINRs on both grids (Sionna: −5 + 0.1k) and inside the tabulated range.
        snr = np.round(np.arange(-5.0, snr_max + 0.01, 0.3), 1)
        for mcs in (5, 12, 19, 26):
            # CBS on Sionna's 100-bit grid (24 + 100j); 2024 / 4024 exercise the clamp at 2000.
            for cbs in (24, 524, 1224, 1924, 2024, 4024):
                ref = phy.get_bler(mcs, table, 1, cbs, torch.as_tensor(10 ** (snr / 10))).numpy()
                mine = code_block_bler(mcs, cbs, snr, mcs_table=table)
                # Equal up to float32 rounding except where Sionna's Monte-Carlo table has an
                # uptick in SNR, which the running minimum removes: at most two block errors
                # in Sionna's ≥ 600 trials per point, i.e. ≤ 3.4e-3.
                np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=3.4e-3)
        # A curve without upticks matches to float32 precision.
        ref = phy.get_bler(12, table, 1, 1024, torch.as_tensor(10 ** (snr / 10))).numpy()
        np.testing.assert_allclose(
            code_block_bler(12, 1024, snr, mcs_table=table), ref, rtol=1e-5, atol=1e-7
        )
