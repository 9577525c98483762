"""The per-layer framework overhead: fit, composition into the table cost model, storage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgetwin.sim.compute.framework_overhead import (
    FrameworkOverhead,
    fit_framework_overhead,
    fit_pass_overhead,
    kv_tokens,
    layer_shape,
)
from edgetwin.sim.compute.table_cost import OpTable, TableCostModel

E = np.zeros(0, np.int64)


def _model(framework: FrameworkOverhead | None = None) -> TableCostModel:
    """Linear tables: GEMMs 1 µs/token, attention 1 ns per query-key pair, LM head 10 µs."""
    n = np.arange(1.0, 4097.0)
    lin = OpTable((n,), 1e-6 * n)
    chunk, ctx = np.array([1.0, 4096.0]), np.array([0.0, 8192.0])
    pre = OpTable((chunk, ctx), 1e-9 * chunk[:, None] * (ctx[None, :] + chunk[:, None]))
    b, kv = np.array([1.0, 256.0]), np.array([1.0, 8192.0])
    dec = OpTable((b, kv), 1e-9 * b[:, None] * kv[None, :])
    tables = {op: lin for op in ("linear_qkv", "linear_o", "linear_gate_up", "linear_down")}
    tables |= {"attn_prefill": pre, "attn_decode": dec, "lm_head": OpTable((n,), 1e-5 + 0 * n)}
    return TableCostModel(tables, n_layers=4, framework=framework, name="synthetic")


def _layer_rows(model: TableCostModel, coef: tuple[float, float, float]) -> pd.DataFrame:
    """Whole-layer times = the model's operator sum + a known overhead."""
    shapes = [(b, b, c) for b in (1, 4, 16) for c in (128, 1024)] + [(64, 1, 0), (512, 1, 256)]
    rows = []
    for n, b, c in shapes:
        it = layer_shape(n, b, c)
        t = model.layer_ops_s(*it) + coef[0] + coef[1] * n + coef[2] * kv_tokens(*it)
        rows.append({"n_tokens": n, "batch_size": b, "context_len": c, "time_median_s": t})
    return pd.DataFrame(rows)


def test_fit_reproduces_a_known_linear_overhead() -> None:
    base = _model()
    coef = (3e-4, 2e-6, 4e-7)
    fw = fit_framework_overhead(_layer_rows(base, coef), base.layer_ops_s)
    assert fw.max_rel_error < 1e-6
    assert fw.n_rows == 8
    for n, kv in ((1, 129), (16, 16400), (512, 768)):  # measured rows: the truth
        assert fw.seconds(n, kv) == pytest.approx(coef[0] + coef[1] * n + coef[2] * kv, rel=1e-5)


def test_fit_follows_a_jump_in_the_cost_per_kv_token() -> None:
    # above some K every KV token costs more (e.g. fresh mmap pages): a hinge at a measured K
    base = _model()
    rows = _layer_rows(base, (1e-4, 0.0, 1e-7))
    kv = np.array(
        [
            kv_tokens(*layer_shape(*r))
            for r in rows[["n_tokens", "batch_size", "context_len"]].to_numpy()
        ]
    )
    rows["time_median_s"] += 2e-6 * np.maximum(kv - 4100, 0)
    fw = fit_framework_overhead(rows, base.layer_ops_s)
    assert fw.max_rel_error < 1e-6
    # 16 x 1,024 cached (K = 16,400): 1e-4 + 1e-7 K + 2e-6 (K - 4,100)
    assert fw.seconds(16, 16400) == pytest.approx(1e-4 + 1e-7 * 16400 + 2e-6 * 12300, rel=1e-5)


def test_overhead_never_falls_with_more_work() -> None:
    base = _model()
    rows = _layer_rows(base, (1e-4, 1e-6, 1e-7))
    rng = np.random.default_rng(0)
    rows["time_median_s"] *= rng.uniform(0.9, 1.3, len(rows))  # noisy layers
    fw = fit_framework_overhead(rows, base.layer_ops_s)
    assert all(c >= 0 for c in fw.coef)
    kv_grid = np.arange(0, 40_000, 37)
    for n in (1, 16, 512):
        t = np.array([fw.seconds(n, int(k)) for k in kv_grid])
        assert (np.diff(t) >= 0).all()
    assert fw.seconds(64, 5000) >= fw.seconds(16, 5000)


def test_fit_never_gives_a_negative_coefficient() -> None:
    # layers faster than their operators (e.g. operators timed colder than inside a layer):
    # non-negative least squares (Lawson & Hanson 1974) keeps the overhead at 0, not negative
    base = _model()
    rows = _layer_rows(base, (0.0, 0.0, 0.0))
    rows["time_median_s"] *= 0.9
    fw = fit_framework_overhead(rows, base.layer_ops_s)
    assert not any(fw.coef)
    assert fw.max_rel_error == pytest.approx(1 / 0.9 - 1)


def test_layer_shape_reads_decode_and_prefill_rows() -> None:
    pt, pc, dc = layer_shape(4, 4, 100)  # decode: 4 sequences attend over 101 keys
    assert len(pt) == 0
    assert dc.tolist() == [101] * 4
    assert kv_tokens(pt, pc, dc) == 404
    pt, pc, dc = layer_shape(64, 1, 256)  # one chunk of 64 over 256 cached
    assert pt.tolist() == [64]
    assert pc.tolist() == [256]
    assert kv_tokens(pt, pc, dc) == 320


def test_breakdown_adds_the_overhead_of_every_layer() -> None:
    fw = FrameworkOverhead(coef=(1e-3, 1e-6, 1e-7))
    with_fw, without = _model(fw), _model()
    dc = np.full(8, 501, np.int64)
    a, b = with_fw.breakdown_s(E, E, dc), without.breakdown_s(E, E, dc)
    assert a["framework"] == pytest.approx(4 * (1e-3 + 8e-6 + 8 * 501 * 1e-7))
    assert b["framework"] == 0.0
    assert {k: v for k, v in a.items() if k != "framework"} == {
        k: v for k, v in b.items() if k != "framework"
    }
    assert with_fw.iteration_time_s(E, E, E) == 0.0  # an empty batch costs nothing


def test_from_profiles_fits_decoder_layer_rows(tmp_path: Path) -> None:
    base = _model()
    rows = _layer_rows(base, (2e-4, 0.0, 5e-7))
    profile = []
    for op, t in base.tables.items():
        axis = {"lm_head": "batch_size"}.get(op, "n_tokens")
        if len(t.axes) == 1:
            for x, v in zip(t.axes[0], t.values, strict=True):
                profile.append({"op": op, axis: int(x), "time_median_s": v})
        else:
            a1 = "batch_size" if op == "attn_decode" else "n_tokens"
            for i, x in enumerate(t.axes[0]):
                for j, y in enumerate(t.axes[1]):
                    profile.append(
                        {
                            "op": op,
                            a1: int(x),
                            "context_len": int(y),
                            "time_median_s": t.values[i, j],
                        }
                    )
    profile += [{"op": "decoder_layer", **r} for r in rows.to_dict("records")]
    df = pd.DataFrame(profile).fillna(0)
    m = TableCostModel.from_profiles(df, n_layers=4)
    assert m.framework is not None
    assert m.framework.max_rel_error < 1e-6
    assert m.framework.seconds(4, 4100) == pytest.approx(2e-4 + 5e-7 * 4100, rel=1e-5)
    back = TableCostModel.from_npz(m.to_npz(tmp_path / "t.npz"))
    assert back.framework is not None
    assert back.framework.coef == m.framework.coef
    assert back.framework.knots == m.framework.knots
    dc = np.full(3, 77, np.int64)
    assert back.iteration_time_s(E, E, dc) == pytest.approx(m.iteration_time_s(E, E, dc))


@pytest.mark.parametrize("coef", [(1.0, -1e-9, 0.0), (1.0, 2.0), (float("nan"), 0.0, 0.0)])
def test_bad_coefficients_are_refused(coef: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="coef must be 3 finite numbers >= 0"):
        FrameworkOverhead(coef=coef)
    with pytest.raises(ValueError, match="coef must be 4 finite numbers"):
        FrameworkOverhead(coef=(1.0, 0.0, 0.0), knots=(10.0,))
    with pytest.raises(ValueError, match="knots must increase"):
        FrameworkOverhead(coef=(0.0,) * 5, knots=(10.0, 5.0))


def test_fit_refuses_empty_or_non_positive_rows() -> None:
    base = _model()
    with pytest.raises(ValueError, match="no decoder_layer rows"):
        fit_framework_overhead(_layer_rows(base, (0, 0, 0)).iloc[:0], base.layer_ops_s)
    rows = _layer_rows(base, (0, 0, 0))
    rows.loc[0, "time_median_s"] = 0.0
    with pytest.raises(ValueError, match="must be finite and > 0"):
        fit_framework_overhead(rows, base.layer_ops_s)


def test_pass_fit_recovers_a_known_per_pass_overhead() -> None:
    base = _model(FrameworkOverhead(coef=(1e-4, 0.0, 1e-7)))
    d = (2e-3, 5e-5, 1e-6)  # s, s per sequence, s per token
    rows = _layer_rows(base, (0.0, 0.0, 0.0))
    for i, (n, b, c) in enumerate(rows[["n_tokens", "batch_size", "context_len"]].to_numpy()):
        it = layer_shape(int(n), int(b), int(c))
        n_seq = len(it[0]) + len(it[2])
        t = base.one_layer_pass_s(*it) + d[0] + d[1] * n_seq + d[2] * n
        rows.loc[i, "time_median_s"] = t
    coef, _, mx = fit_pass_overhead(rows, base.one_layer_pass_s)
    np.testing.assert_allclose(coef, d, rtol=1e-5)
    assert mx < 1e-6
    with_pass = _model(FrameworkOverhead(coef=(1e-4, 0.0, 1e-7), pass_coef=coef))
    dc = np.full(4, 100, np.int64)
    extra = with_pass.breakdown_s(E, E, dc)["framework_pass"]
    assert extra == pytest.approx(d[0] + 4 * d[1] + 4 * d[2])
