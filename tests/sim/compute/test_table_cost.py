from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgetwin.sim.compute.importers import (
    LLMSERVINGSIM_RTX4090_LLAMA31_8B,
    VIDUR_A100_MLP,
    import_llmservingsim,
    import_vidur_mlp,
    llmservingsim_mixed_attention,
)
from edgetwin.sim.compute.profiles import KERNELS_SOURCE
from edgetwin.sim.compute.table_cost import (
    TABLE_AXES,
    OpTable,
    TableCostModel,
    available_models,
    keeps_measured_shape,
    load_cost_model,
)

E = np.array([], dtype=np.int64)


def _a(*x: int) -> np.ndarray:
    return np.array(x, dtype=np.int64)


@pytest.fixture(scope="module")
def rtx() -> TableCostModel:
    m = load_cost_model(None, model="llama-3.1-8b", hardware="rtx4090")
    assert isinstance(m, TableCostModel)
    return m


def _rel_errors(m: TableCostModel, df: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Per op: (median, p90) of |table / measured - 1| at the profile's own rows."""
    out = {}
    for op, sub in df.groupby("op"):
        if op not in m.tables:
            continue
        shape = [sub[c].to_numpy() for c in TABLE_AXES[str(op)]]
        err = np.abs(m.op_time_s(str(op), *shape) / sub["time_median_s"].to_numpy() - 1.0)
        out[str(op)] = (float(np.median(err)), float(np.percentile(err, 90)))
    return out


def test_reproduces_llmservingsim_rows(rtx: TableCostModel) -> None:
    rows = import_llmservingsim()
    errs = _rel_errors(rtx, rows)
    print({k: (round(a, 4), round(b, 4)) for k, (a, b) in errs.items()})  # noqa: T201
    assert set(errs) == set(rows["op"])  # every imported operator became a table
    for op, (med, p90) in errs.items():
        assert med < 0.05, op
        assert p90 < 0.10, op


@pytest.mark.parametrize("model", ["llama-2-7b", "llama-3-8b"])
def test_reproduces_vidur_rows(model: str) -> None:
    m = load_cost_model(None, model=model, hardware="a100")
    assert isinstance(m, TableCostModel)
    errs = _rel_errors(m, import_vidur_mlp(VIDUR_A100_MLP[model], model=model))
    print(model, {k: (round(a, 4), round(b, 4)) for k, (a, b) in errs.items()})  # noqa: T201
    for op, (med, p90) in errs.items():
        assert med < 0.05, op
        assert p90 < 0.10, op


def test_mixed_batch_attention(rtx: TableCostModel) -> None:
    """Prefill chunk + decode batch attention against LLMServingSim's 8,448 mixed rows."""
    mx = llmservingsim_mixed_attention()
    pre = rtx.op_time_s("attn_prefill", mx["prefill_chunk"].to_numpy(), mx["kv_prefill"].to_numpy())
    dec = rtx.op_time_s("attn_decode_mixed", mx["n_decode"].to_numpy(), mx["kv_decode"].to_numpy())
    err = np.abs((pre + dec) / mx["time_s"].to_numpy() - 1.0)
    sep = rtx.op_time_s("attn_decode", mx["n_decode"].to_numpy(), mx["kv_decode"].to_numpy())
    err_sep = np.abs((pre + sep) / mx["time_s"].to_numpy() - 1.0)
    print("mixed attention |rel err| median, p90:", np.median(err), np.percentile(err, 90))  # noqa: T201
    print("separate kernels |rel err| median, p90:", np.median(err_sep), np.percentile(err_sep, 90))  # noqa: T201
    assert np.median(err) < 0.08
    assert np.percentile(err, 90) < 0.25
    assert np.median(err) < 0.5 * np.median(err_sep)
    # the iteration uses the mixed table only when a prefill chunk is present
    b_mixed = rtx.breakdown_s(_a(512), _a(0), np.full(64, 4096))
    b_dec = rtx.breakdown_s(E, E, np.full(64, 4096))
    assert b_mixed["attn_decode"] > b_dec["attn_decode"]


def test_rtx4090_decode_is_memory_bound(rtx: TableCostModel) -> None:
    """One decode step reads all weights once: ~8.03e9 params x 2 B (bf16) = 16.06 GB over the
    RTX 4090's 1008 GB/s GDDR6X (NVIDIA Ada whitepaper) -> >= 15.9 ms; 15-25 ms expected."""
    t = rtx.iteration_time_s(E, E, _a(1024))
    assert 0.015 <= t <= 0.025
    assert t >= 0.95 * 8.03e9 * 2 / 1008e9


def test_rtx4090_prefill_is_compute_bound(rtx: TableCostModel) -> None:
    """A 1024-token prefill is ~2 x 8.03e9 x 1024 = 16.4 TFLOP (Kaplan et al. 2020); at the
    4090's 165 TFLOP/s dense bf16 with fp32 accumulate that is ~100 ms; allow 0.6-1.6x."""
    t = rtx.iteration_time_s(_a(1024), _a(0), E)
    ideal = 2 * 8.03e9 * 1024 / 165e12
    assert 0.6 * ideal <= t <= 1.6 * ideal


def test_matches_llmservingsim_sum_at_grid_points(rtx: TableCostModel) -> None:
    """Decode batch 8 at 1024 KV tokens: the model equals the raw kernel times summed."""
    dense = pd.read_csv(LLMSERVINGSIM_RTX4090_LLAMA31_8B / "dense.csv")
    d = dense.set_index(["layer", "tokens"])["time_us"]
    ps = pd.read_csv(LLMSERVINGSIM_RTX4090_LLAMA31_8B / "per_sequence.csv")
    s = ps.set_index(["layer", "sequences"])["time_us"]
    att = pd.read_csv(LLMSERVINGSIM_RTX4090_LLAMA31_8B / "attention.csv")
    a = att[(att.prefill_chunk == 0) & (att.n_decode == 8) & (att.kv_decode == 1024)]
    per_layer = sum(
        d[k, 8] * c
        for k, c in {
            "qkv_proj": 1,
            "o_proj": 1,
            "gate_up_proj": 1,
            "down_proj": 1,
            "layernorm": 2,
            "rotary_emb": 1,
            "act_fn": 1,
        }.items()
    ) + float(a["time_us"].iloc[0])
    direct = 32 * per_layer + d["embedding", 8] + d["final_layernorm", 8]
    direct += s["lm_head", 8] + s["sampler", 8]
    # within 1 %: the tables are monotone (running max), the raw rows are a little noisy
    assert rtx.iteration_time_s(E, E, np.full(8, 1024)) == pytest.approx(direct * 1e-6, rel=0.01)


def test_breakdown_sums_and_empty_batch(rtx: TableCostModel) -> None:
    pt, pc, dc = _a(100, 7), _a(0, 300), _a(5, 900, 4000)
    b = rtx.breakdown_s(pt, pc, dc)
    assert sum(b.values()) == pytest.approx(rtx.iteration_time_s(pt, pc, dc))
    assert all(v >= 0 for v in b.values())
    assert rtx.iteration_time_s(E, E, E) == 0.0
    m = load_cost_model(None, model="llama-3.1-8b", hardware="rtx4090", overhead_s=1e-3)
    assert m.iteration_time_s(pt, pc, dc) == pytest.approx(rtx.iteration_time_s(pt, pc, dc) + 1e-3)


@pytest.mark.parametrize("hw_model", [("rtx4090", "llama-3.1-8b"), ("a100", "llama-3-8b")])
def test_monotone_in_tokens_and_context(hw_model: tuple[str, str]) -> None:
    m = load_cost_model(None, model=hw_model[1], hardware=hw_model[0])
    toks = [1, 2, 3, 5, 16, 17, 100, 1000, 2047, 2048, 2049, 5000, 40000]
    pre = [m.iteration_time_s(_a(n), _a(0), E) for n in toks]
    assert np.all(np.diff(pre) >= 0)
    ctx = [1, 16, 17, 500, 1024, 9000, 16384, 16385, 50000]
    dec = [m.iteration_time_s(E, E, np.full(4, c)) for c in ctx]
    assert np.all(np.diff(dec) >= 0)
    chunk_ctx = [m.iteration_time_s(_a(256), _a(c), E) for c in [0, 10, 100, 5000, 20000]]
    assert np.all(np.diff(chunk_ctx) >= 0)
    batch = [m.iteration_time_s(E, E, np.full(b, 700)) for b in [1, 2, 3, 100, 256, 300, 600]]
    assert np.all(np.diff(batch) >= 0)


def test_op_table_rules() -> None:
    t = OpTable((np.array([2.0, 4.0, 8.0]),), np.array([1.0, 3.0, 2.0]))  # noisy dip
    assert t.at(0) == 0.0
    assert t.at(1) == 1.0  # held below the grid
    assert t.at(3) == 2.0
    assert t.at(8) == 3.0  # running max removed the dip
    assert t.at(16) == 3.0  # flat last segment -> flat extrapolation
    t2 = OpTable((np.array([1.0, 2.0]), np.array([0.0, 10.0])), np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(t2.at2(np.array([1.5, 3.0]), np.array([5.0, 20.0])), [2.5, 7.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        OpTable((np.array([1.0, 1.0]),), np.array([1.0, 2.0]))


def test_own_profiles_keep_their_measured_shape_imported_ones_are_clipped() -> None:
    # oneDNN's kernel switch: 2-3 rows slower than 4 (measured, kernels/README.md)
    rows = pd.DataFrame(
        {"n_tokens": [1, 2, 4, 8], "time_median_s": [1.0, 1.5, 1.0, 1.2], "source": "x"}
    )
    clipped = OpTable.from_rows(rows, ("n_tokens",))
    own = OpTable.from_rows(rows.assign(source=KERNELS_SOURCE), ("n_tokens",))
    assert keeps_measured_shape(rows.assign(source=KERNELS_SOURCE))
    assert not keeps_measured_shape(rows)
    assert clipped.at(4) == 1.5  # running max
    assert own.at(4) == 1.0  # as measured
    assert own.at(3) == pytest.approx(1.25)  # interpolated between the measured points
    mixed = rows.assign(source=[KERNELS_SOURCE, "x", KERNELS_SOURCE, KERNELS_SOURCE])
    assert OpTable.from_rows(mixed, ("n_tokens",)).at(4) == 1.5  # any imported row: clipped


def test_npz_round_trip_and_profile_tree(rtx: TableCostModel, tmp_path: Path) -> None:
    rtx.to_npz(tmp_path / "gpu" / "m" / "table.npz")
    back = load_cost_model(tmp_path, model="m", hardware="gpu")
    pt, pc, dc = _a(300), _a(64), np.arange(1, 60) * 37
    assert back.iteration_time_s(pt, pc, dc) == pytest.approx(rtx.iteration_time_s(pt, pc, dc))
    assert ("gpu", "m") in available_models(tmp_path)


def test_cpu_profile_dir_builds() -> None:
    root = Path(__file__).resolve().parents[3] / "kernels" / "profiles"
    m = load_cost_model(root, model="smollm-135m", hardware="cpu")
    assert m.iteration_time_s(_a(64), _a(0), _a(128, 256)) > 0


def test_unknown_pair_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"available: .*a100/llama-2-7b.*rtx4090/llama-3\.1-8b"):
        load_cost_model(None, model="llama-3.1-8b", hardware="h100")
    with pytest.raises(ValueError, match="missing operator tables"):
        TableCostModel({}, n_layers=1)
