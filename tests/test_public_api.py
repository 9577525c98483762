"""The functions the README documents are importable where it says, with reference values."""

import numpy as np
import pytest

from edgetwin.agents.baselines import water_filling
from edgetwin.sim.metrics import jain_index
from edgetwin.sim.radio import (
    cqi_spectral_efficiency,
    effective_sinr_db,
    los_probability,
    mcs_spectral_efficiency,
    pathloss_db,
    tbs_bits,
)


def test_documented_functions_answer_with_reference_values():
    # TS 38.214 Table 5.1.3.1-1, MCS 28: 64QAM, R = 948/1024 (MCS 27: R = 910/1024).
    assert mcs_spectral_efficiency(28, 1) == pytest.approx(6 * 948 / 1024, abs=1e-4)
    assert mcs_spectral_efficiency(27, 1) == pytest.approx(6 * 910 / 1024, abs=1e-4)
    # TS 38.214 Table 5.2.2.1-2, CQI 15: 64QAM, efficiency 5.5547.
    assert cqi_spectral_efficiency(15, 1) == pytest.approx(5.5547, abs=1e-3)
    # TS 38.214 §5.1.3.2: 1 PRB, 13 symbols, 12 DM-RS REs -> N_RE = 144; MCS 0 (Qm 2, R 120/1024)
    # N_info = 144 * 120/1024 * 2 = 33.75 -> n = 3, N'_info = 32 -> smallest table TBS >= 32: 32.
    assert tbs_bits(1, 13, 0) == 32
    # Equal SINRs: the EESM effective SINR equals them.
    assert effective_sinr_db(np.full(8, 10.0), 10) == pytest.approx(10.0, abs=1e-9)
    # TR 38.901 Table 7.4.1-1 UMa LOS below the breakpoint: 28 + 22 log10(d3d) + 20 log10(fc GHz).
    d3d = np.hypot(100.0, 25.0 - 1.5)
    expected = 28.0 + 22.0 * np.log10(d3d) + 20.0 * np.log10(3.5)
    got = pathloss_db("uma", np.array([100.0]), fc_hz=3.5e9, h_bs_m=25.0, h_ut_m=1.5, los=True)
    assert got[0] == pytest.approx(expected, abs=1e-6)
    # TR 38.901 Table 7.4.2-1: LOS probability is 1 within 18 m for UMa.
    assert los_probability("uma", np.array([10.0]))[0] == pytest.approx(1.0)
    assert jain_index([1.0, 1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert jain_index([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    p = water_filling(np.array([1.0, 2.0, 10.0]), 3.0)
    # Water level mu: (mu - 1) + (mu - 2) = 3 -> mu = 3; the third channel stays dry.
    np.testing.assert_allclose(p, [2.0, 1.0, 0.0], atol=1e-12)


def test_scenarios_reexports_functions_even_after_their_modules_are_imported():
    import edgetwin.scenarios.builder
    import edgetwin.scenarios.load
    import edgetwin.scenarios.run  # the submodules first, as a user's code may
    from edgetwin.scenarios import build, compare, load_scenario, run_scenario

    assert build is edgetwin.scenarios.builder.build
    assert load_scenario is edgetwin.scenarios.load.load_scenario
    assert callable(compare)
    assert callable(run_scenario)
    sim = build(load_scenario("small_cell", {"duration_s": 0.002}), seed=0)
    sim.run()
    assert sim.results().summary["seed"] == 0
