from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetwin.kernels.fit import fit, predict
from edgetwin.kernels.tables import main, tabulate
from edgetwin.sim.compute.profiles import read_profile
from edgetwin.sim.compute.table_cost import TABLE_AXES, TableCostModel, load_cost_model

CPU = Path(__file__).resolve().parents[2] / "kernels" / "profiles" / "cpu" / "smollm-135m"


@pytest.fixture(scope="module")
def npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tabulate(CPU, out=tmp_path_factory.mktemp("tab") / "cpu" / "smollm-135m" / "table.npz")


def test_round_trip_reproduces_fit(npz: Path) -> None:
    """At the measured shapes, the tabulated model returns the fit's predictions."""
    m = TableCostModel.from_npz(npz)
    assert m.n_layers == 30
    result = fit(CPU, write=False)
    for op, axes in TABLE_AXES.items():
        if op in ("iteration", "elementwise", "attn_decode_mixed"):  # not profiled on the CPU
            continue
        df = read_profile(CPU / f"{op}.csv")
        entry = result["ops"][op]
        want = np.maximum(predict(df, entry["features"], entry["coef"]), 0.0)
        got = m.op_time_s(op, *(df[c].to_numpy() for c in axes))
        # GEMMs / LM head: every integer is a grid point (exact); attention: bilinear between
        # grid points of a fit that is linear along the context (≤ 1 % off the grid)
        rtol = 1e-9 if len(axes) == 1 else 1e-2
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12, err_msg=op)


def test_npz_is_a_cost_model(npz: Path) -> None:
    root = npz.parents[2]
    m = load_cost_model(root, model="smollm-135m", hardware="cpu")
    pt, pc, dc = np.array([64]), np.array([128]), np.array([100, 2000, 9000])
    b = m.breakdown_s(pt, pc, dc)
    assert sum(b.values()) == pytest.approx(m.iteration_time_s(pt, pc, dc))
    assert b["attn_decode"] > 0
    assert b["lm_head"] > 0
    longer = m.iteration_time_s(pt, pc, dc + 1000)
    assert longer >= m.iteration_time_s(pt, pc, dc)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.npz"
    assert main([str(CPU), "--out", str(out)]) == 0
    assert out.is_file()
    assert str(out) in capsys.readouterr().out
