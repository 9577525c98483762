"""MCS/CQI tables, TBS (TS 38.214 §5.1.3.2), segmentation (TS 38.212 §5.2.2) and EESM.

Reference values are worked by hand from the standard (steps in the comments) and cross-checked
against the project's CSV copies of the tables and against Sionna (imported inside the tests
only: importing it costs seconds).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from edgetwin.sim.radio.link import (
    code_block_segmentation,
    cqi_spectral_efficiency,
    eesm_beta,
    eesm_effective_sinr_db,
    effective_sinr_db,
    load_sionna_table,
    mcs_spectral_efficiency,
    tbs_bits,
    tbs_table,
)
from edgetwin.sim.radio.nr_tables import (
    CQI_TABLES,
    MCS_TABLES,
    TBS_SMALL_TABLE_BITS,
    cqi_table,
    mcs_table,
)
from edgetwin.sim.workload.traces import shared_data_dir

TABLES_DIR = shared_data_dir() / "3gpp_nr_tables"


def _read_csv(name: str) -> list[dict[str, str]]:
    path = TABLES_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# --- tables ---------------------------------------------------------------------------------
def test_mcs_tables_match_csv() -> None:
    rows = _read_csv("nr_pdsch_mcs_tables.csv")
    for t, table in MCS_TABLES.items():
        mine = [r for r in rows if int(r["mcs_table"]) == t]
        assert len(mine) == table.n_mcs
        for r in mine:
            m = int(r["mcs_index"])
            assert table.qm[m] == int(r["modulation_order_Qm"])
            assert table.r_x1024[m] == float(r["target_code_rate_x1024"])
            assert table.spectral_efficiency[m] == pytest.approx(
                float(r["spectral_efficiency_bits_per_re"]), abs=6e-5
            )


def test_cqi_tables_match_csv() -> None:
    rows = _read_csv("nr_cqi_tables.csv")
    for t, table in CQI_TABLES.items():
        mine = [r for r in rows if int(r["cqi_table"]) == t]
        assert len(mine) == 16
        for r in mine[1:]:
            q = int(r["cqi_index"])
            assert table.qm[q] == int(r["modulation_order_Qm"])
            assert table.r_x1024[q] == float(r["code_rate_x1024"])
            assert table.efficiency[q] == float(r["efficiency_bits_per_re"])
        assert table.qm[0] == 0
        assert table.efficiency[0] == 0.0


def test_mcs_tables_match_sionna() -> None:
    utils = pytest.importorskip("sionna.phy.nr.utils")
    torch = pytest.importorskip("torch")
    for t, table in MCS_TABLES.items():
        qm, rate = utils.decode_mcs_index(torch.arange(table.n_mcs), table_index=t, is_pusch=False)
        np.testing.assert_array_equal(qm.numpy(), table.qm)
        np.testing.assert_allclose(rate.numpy(), table.code_rate, rtol=1e-6)


def test_table_shapes_and_lookups() -> None:
    # Reserved rows left out: 29 / 28 / 29 / 27 MCS (TS 38.214 Tables 5.1.3.1-1..4).
    assert [MCS_TABLES[t].n_mcs for t in (1, 2, 3, 4)] == [29, 28, 29, 27]
    # Table 5.1.3.2-1: 93 TBS values from 24 to 3824, all byte-aligned and increasing.
    assert TBS_SMALL_TABLE_BITS.size == 93
    assert (TBS_SMALL_TABLE_BITS[0], TBS_SMALL_TABLE_BITS[-1]) == (24, 3824)
    assert np.all(np.diff(TBS_SMALL_TABLE_BITS) > 0)
    assert np.all(TBS_SMALL_TABLE_BITS % 8 == 0)
    # Half-integer code rates of table 2 (MCS 20: 682.5, MCS 26: 916.5).
    assert MCS_TABLES[2].r_x2048[20] == 1365
    assert MCS_TABLES[2].r_x2048[26] == 1833
    assert mcs_spectral_efficiency(28, 1) == 6 * 948 / 1024
    assert mcs_spectral_efficiency(27, 2) == 8 * 948 / 1024
    assert mcs_spectral_efficiency(0, 3) == 2 * 30 / 1024
    assert cqi_spectral_efficiency(15, 1) == 5.5547
    assert cqi_spectral_efficiency(15, 2) == 7.4063
    assert cqi_spectral_efficiency(1, 3) == 0.0586
    assert cqi_spectral_efficiency(0) == 0.0
    with pytest.raises(ValueError, match=r"0\.\.28"):
        mcs_spectral_efficiency(29, 1)
    with pytest.raises(ValueError, match=r"0\.\.27"):
        mcs_spectral_efficiency(28, 2)
    with pytest.raises(ValueError, match="cqi"):
        cqi_spectral_efficiency(16)
    with pytest.raises(ValueError, match="1, 2, 3 or 4"):
        mcs_table(5)
    with pytest.raises(ValueError, match="1, 2 or 3"):
        cqi_table(4)


# --- TBS, TS 38.214 §5.1.3.2 --------------------------------------------------------------
@pytest.mark.parametrize(
    ("n_prb", "n_symbols", "mcs", "table", "dmrs", "expected"),
    [
        # MCS 4 (Qm 2, R 308/1024): N'_RE = 12·12 − 12 = 132, N_RE = 1320,
        # N_info = 1320·308/1024·2 = 794.06 ≤ 3824 -> n = max(3, 9 − 6) = 3,
        # N'_info = 8·⌊794.06/8⌋ = 792 -> Table 5.1.3.2-1: smallest TBS ≥ 792 is 808.
        (10, 12, 4, 1, 12, 808),
        # MCS 27 (Qm 6, R 910/1024): N'_RE = 156 − 12 = 144, N_RE = 15264,
        # N_info = 15264·6·910/1024 = 81388.125 > 3824 -> n = ⌊log2(81364.125)⌋ − 5 = 11,
        # N'_info = 2048·round(39.73) = 81920; R > 1/4 and N'_info > 8424 ->
        # C = ⌈81944/8424⌉ = 10, TBS = 8·10·⌈81944/80⌉ − 24 = 81976.
        (106, 13, 27, 1, 12, 81976),
        # MCS 0 (Qm 2, R 120/1024 ≤ 1/4): N_RE = 144·273 = 39312, N_info = 9213.75,
        # n = ⌊log2(9189.75)⌋ − 5 = 8, N'_info = 256·round(35.90) = 9216,
        # C = ⌈9240/3816⌉ = 3, TBS = 24·⌈9240/24⌉ − 24 = 9216.
        (273, 13, 0, 1, 12, 9216),
        # MCS 15 (Qm 4, R 616/1024): N_RE = 2880, N_info = 6930, n = ⌊log2(6906)⌋ − 5 = 7,
        # N'_info = 128·round(53.95) = 6912 ≤ 8424 -> TBS = 8·⌈6936/8⌉ − 24 = 6912.
        (20, 13, 15, 1, 12, 6912),
        # 156-RE cap: N'_RE = 168 -> 156; MCS 10 (Qm 4, R 340/1024): N_info = 207.19,
        # n = 3, N'_info = 200 -> TBS 208 (without the cap: N_info = 223.1 -> 216).
        (1, 14, 10, 1, 0, 208),
        # Table 2 MCS 20 (Qm 8, R 682.5/1024): N_info = 144·8·682.5/1024 = 767.81,
        # N'_info = 760 -> TBS 768.
        (1, 13, 20, 2, 12, 768),
    ],
)
def test_tbs_hand_worked(
    n_prb: int, n_symbols: int, mcs: int, table: int, dmrs: int, expected: int
) -> None:
    got = tbs_bits(n_prb, n_symbols, mcs, mcs_table=table, dmrs_re_per_prb=dmrs)
    assert got == expected
    row = tbs_table(n_prb, n_symbols, mcs_table=table, dmrs_re_per_prb=dmrs)[n_prb, mcs]
    assert row == expected


def test_tbs_small_values_come_from_the_table() -> None:
    tbs = tbs_table(40, 13, mcs_table=3)
    small = tbs[(tbs > 0) & (tbs <= 3824)]
    assert small.size > 100
    assert np.isin(small, TBS_SMALL_TABLE_BITS).all()
    # TS 38.214 step 4: large TBS make (TBS + 24) a multiple of 8·C.
    large = tbs[tbs > 3824]
    assert np.all((large + 24) % 8 == 0)


def test_tbs_layers_overhead_and_errors() -> None:
    # ν = 2 doubles N_info: 2 layers on 10 PRBs equal 1 layer on 20 PRBs.
    assert tbs_bits(10, 13, 15, n_layers=2) == tbs_bits(20, 13, 15)
    # xOverhead 6 reduces N'_RE from 144 to 138.
    assert tbs_bits(10, 13, 15, overhead_re_per_prb=6) < tbs_bits(10, 13, 15)
    assert tbs_bits(0, 13, 15) == 0
    table = tbs_table(20, 13)
    assert table.shape == (21, 29)
    assert table.dtype == np.int64
    assert np.all(table[0] == 0)
    assert np.all(np.diff(table, axis=0) >= 0)  # more PRBs, no smaller TB
    with pytest.raises(ValueError, match="n_symbols"):
        tbs_bits(10, 15, 3)
    with pytest.raises(ValueError, match="> 0"):
        tbs_bits(10, 1, 3, dmrs_re_per_prb=12)
    with pytest.raises(ValueError, match="mcs_index"):
        tbs_bits(10, 13, 29)


def test_tbs_table_equals_scalar_function() -> None:
    rng = np.random.default_rng(7)
    table = tbs_table(273, 12, mcs_table=2, n_layers=2, dmrs_re_per_prb=18)
    for p, m in zip(rng.integers(0, 274, 40), rng.integers(0, 28, 40), strict=True):
        assert table[p, m] == tbs_bits(
            int(p), 12, int(m), mcs_table=2, n_layers=2, dmrs_re_per_prb=18
        )


@pytest.mark.parametrize(
    ("n_symbols", "dmrs", "overhead", "layers"),
    [(13, 12, 0, 1), (14, 0, 0, 1), (14, 18, 6, 2), (4, 6, 0, 1), (12, 24, 0, 4)],
)
def test_tbs_and_segmentation_match_sionna(
    n_symbols: int, dmrs: int, overhead: int, layers: int
) -> None:
    utils = pytest.importorskip("sionna.phy.nr.utils")
    torch = pytest.importorskip("torch")
    for t, table in MCS_TABLES.items():
        mine = tbs_table(
            275,
            n_symbols,
            mcs_table=t,
            n_layers=layers,
            dmrs_re_per_prb=dmrs,
            overhead_re_per_prb=overhead,
        )[1:]
        prb, mcs = np.meshgrid(np.arange(1, 276), np.arange(table.n_mcs), indexing="ij")
        qm, rate = utils.decode_mcs_index(
            torch.as_tensor(mcs.ravel()), table_index=t, is_pusch=False
        )
        tb, cb, n_cb, _, _ = utils.calculate_tb_size(
            qm,
            rate,
            num_prbs=torch.as_tensor(prb.ravel()),
            num_ofdm_symbols=n_symbols,
            num_dmrs_per_prb=dmrs,
            num_layers=layers,
            num_ov=overhead,
            return_cw_length=False,
        )
        np.testing.assert_array_equal(mine, tb.numpy().reshape(prb.shape))
        c, k = code_block_segmentation(mine, table.code_rate[None, :])
        np.testing.assert_array_equal(c, n_cb.numpy().reshape(prb.shape))
        np.testing.assert_array_equal(k, cb.numpy().reshape(prb.shape))


# --- code-block segmentation, TS 38.212 §5.2.2 / §7.2.2 ----------------------------------
@pytest.mark.parametrize(
    ("tbs", "rate", "n_cb", "k"),
    [
        # A = 81976 > 3824: L = 24, B = 82000; R = 0.89 -> BG1, K_cb = 8448;
        # C = ⌈82000/8424⌉ = 10, B' = 82000 + 240, K' = 8224.
        (81976, 910 / 1024, 10, 8224),
        # A = 9216, R = 0.117 ≤ 0.25 -> BG2, K_cb = 3840: B = 9240, C = ⌈9240/3816⌉ = 3,
        # K' = (9240 + 72)/3 = 3104.
        (9216, 120 / 1024, 3, 3104),
        # A = 808 ≤ 3824: L = 16, B = 824 ≤ K_cb -> one block without a CB CRC.
        (808, 308 / 1024, 1, 824),
        # A = 3824, R = 0.9 -> BG1 (A > 292, R > 0.67); B = 3840 ≤ 8448 -> C = 1.
        (3824, 0.9, 1, 3840),
        # A = 4000, R = 0.2 -> BG2: B = 4024 > 3840 -> C = 2, K' = (4024 + 48)/2 = 2036.
        (4000, 0.2, 2, 2036),
        # Same TB at R = 0.5 -> BG1 (A > 3824): one block of 4024 bits.
        (4000, 0.5, 1, 4024),
    ],
)
def test_segmentation_hand_worked(tbs: int, rate: float, n_cb: int, k: int) -> None:
    c, kk = code_block_segmentation(tbs, rate)
    assert (int(c), int(kk)) == (n_cb, k)


def test_segmentation_is_vectorized() -> None:
    tbs = np.array([[808, 81976], [9216, 4000]])
    c, k = code_block_segmentation(tbs, np.array([[0.3, 0.89], [0.117, 0.2]]))
    assert c.shape == k.shape == (2, 2)
    np.testing.assert_array_equal(c, [[1, 10], [3, 2]])
    # C·K' = TBS + TB CRC + C·CB CRC (when C > 1).
    np.testing.assert_array_equal(c * k, [[824, 82240], [9312, 4072]])


# --- EESM -------------------------------------------------------------------------------
def test_eesm_beta_tables() -> None:
    b1, b2, b3 = eesm_beta(1), eesm_beta(2), eesm_beta(3)
    assert b1.shape == (29,)
    assert b2.shape == (28,)
    assert b3.shape == (29,)
    raw = load_sionna_table("sys/esm_params/eesm_beta_table.json")["index"]
    np.testing.assert_array_equal(b1, raw["1"])
    assert (b1[0], b1[-1]) == (1.60, 34.28)
    # Table 3 reuses the β of identical (Qm, R) from table 1 (its MCS 9..28 all appear in
    # table 1), and the lowest-rate QPSK β (table 1 MCS 0) for its extra low rates.
    t1, t3 = MCS_TABLES[1], MCS_TABLES[3]
    for m in range(9, 29):
        (same,) = np.flatnonzero((t1.qm == t3.qm[m]) & (t1.r_x1024 == t3.r_x1024[m]))
        assert b3[m] == b1[same]
    np.testing.assert_array_equal(b3[:7], b1[0])
    with pytest.raises(ValueError, match="no EESM β"):
        eesm_beta(4)


def test_load_sionna_table_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="looked in") as e:
        load_sionna_table("sys/no_such_table.json")
    assert "shared" in str(e.value)


def test_effective_sinr_properties() -> None:
    rng = np.random.default_rng(3)
    # Equal SINRs -> that SINR, whatever β.
    assert effective_sinr_db(np.full(12, 7.5), 10) == pytest.approx(7.5)
    sinr_db = rng.uniform(-5, 25, size=(50, 24))
    for mcs in (0, 14, 28):
        beta = eesm_beta(1)[mcs]
        eff = eesm_effective_sinr_db(sinr_db, beta)
        lin = 10 ** (sinr_db / 10)
        # min ≤ γ_eff ≤ arithmetic mean (Jensen: −β ln E[e^{−γ/β}] ≤ E[γ]).
        assert np.all(eff >= sinr_db.min(axis=1) - 1e-9)
        assert np.all(eff <= 10 * np.log10(lin.mean(axis=1)) + 1e-9)
        assert eff[0] == pytest.approx(effective_sinr_db(sinr_db[0], mcs))
        # Monotone: raising one PRB's SINR does not lower the effective SINR.
        up = sinr_db.copy()
        up[:, 3] += 3.0
        assert np.all(eesm_effective_sinr_db(up, beta) >= eff - 1e-12)
    # Larger β weighs strong PRBs more (β -> ∞ gives the mean).
    two = np.array([0.0, 20.0])
    assert effective_sinr_db(two, 28) > effective_sinr_db(two, 0)
    # No overflow at high SINR.
    assert effective_sinr_db(np.array([60.0, 61.0]), 0) == pytest.approx(60.0, abs=0.01)
    with pytest.raises(ValueError, match="shape"):
        effective_sinr_db(sinr_db, 3)


def test_effective_sinr_matches_sionna() -> None:
    sys_mod = pytest.importorskip("sionna.sys")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    n_ut = 6
    sinr_db = rng.uniform(-5.0, 25.0, size=(1, 12, n_ut, 1))  # [sym, sc, ut, stream]
    mcs = np.array([0, 5, 10, 17, 22, 27])
    for table in (1, 2):
        eesm = sys_mod.EESM(precision="double")
        ref = eesm(
            torch.as_tensor(10 ** (sinr_db / 10)),
            torch.as_tensor(mcs),
            mcs_table_index=table,
            per_stream=False,
        ).numpy()
        for u in range(n_ut):
            mine = effective_sinr_db(sinr_db[0, :, u, 0], int(mcs[u]), mcs_table=table)
            assert mine == pytest.approx(10 * np.log10(ref[u]), abs=1e-9)
