from __future__ import annotations

import math
import statistics
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from edgetwin.sim.compute.cost_model import MODEL_DIMS
from edgetwin.sim.compute.device_roofline import (
    EDGE_DEVICES,
    EDGE_MODELS,
    ORIN_NANO_8GB,
    ORIN_NANO_SUPER,
    DecodeRow,
    DeviceCostModel,
    EdgeDevice,
    EdgeModelSpec,
    bytes_per_token,
    fit_efficiency,
    jetson_cost_model,
    leave_one_out,
    load_jetson_ai_lab,
    predict_tokens_per_s,
)

DEVICES = list(EDGE_DEVICES.values())
# V=1000, d=64; L=2, n_h=4, n_kv=2, d_h=16.
TOY = EdgeModelSpec("toy", 1_000_000, 1000, 64, False, 2, 4, 2, 16)


def _a(*x: int) -> np.ndarray:
    return np.array(x, dtype=np.int64)


def test_bytes_per_token_hand_computed() -> None:
    # untied: the input embedding (V·d = 64,000) is not streamed:
    # 936,000 params x 4 bits = 468,000 B
    assert bytes_per_token(TOY) == 468_000
    # KV: 2 (K,V) x L=2 x n_kv=2 x d_h=16 x 2 B = 256 B/token; 10 tokens -> 2,560 B
    assert TOY.kv_bytes_per_token() == 256
    assert bytes_per_token(TOY, context_tokens=10) == 468_000 + 2_560
    # 4.5 bits/weight: 936,000 x 4.5 / 8
    assert bytes_per_token(TOY, bits_per_weight=4.5) == 526_500
    # tied: the one matrix is read once, as the LM head -> all 1,000,000 params stream
    assert bytes_per_token(replace(TOY, tied_embeddings=True)) == 500_000
    # a real row: Llama-3.1-8B, untied, V·d = 128256·4096 = 525,336,576
    assert bytes_per_token(EDGE_MODELS["llama-3.1-8b"]) == pytest.approx(
        (8.03e9 - 525_336_576) / 2, rel=1e-12
    )
    with pytest.raises(ValueError, match="context_tokens >= 0"):
        bytes_per_token(TOY, context_tokens=-1)


def test_from_dims_counts_smollm2_like_published() -> None:
    # SmolLM-1.7B and SmolLM2-1.7B share their dimensions; the published count is 1.71 B.
    spec = EdgeModelSpec.from_dims("smollm-1.7b", MODEL_DIMS["smollm-1.7b"], tied_embeddings=True)
    assert spec.n_params == pytest.approx(1.71e9, rel=3e-3)


@pytest.mark.parametrize("method", ["log_ls", "median"])
def test_fit_recovers_known_efficiency_exactly(method: str) -> None:
    rng = np.random.default_rng(0)
    eta = 0.37
    dev = ORIN_NANO_SUPER
    rows = [
        DecodeRow(f"m{i}", float(b), eta * dev.mem_bandwidth_bytes_per_s / float(b))
        for i, b in enumerate(rng.uniform(2e8, 6e9, size=9))
    ]
    assert fit_efficiency(rows, dev, method) == pytest.approx(eta, rel=1e-12)  # type: ignore[arg-type]
    for r in leave_one_out(rows, dev, method):  # type: ignore[arg-type]
        assert r.efficiency == pytest.approx(eta, rel=1e-12)
        assert abs(r.rel_error) < 1e-12


def test_fit_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one row"):
        fit_efficiency([], ORIN_NANO_8GB)
    with pytest.raises(ValueError, match="method must be"):
        fit_efficiency([DecodeRow("x", 1e9, 10.0)], ORIN_NANO_8GB, "mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least two rows"):
        leave_one_out([DecodeRow("x", 1e9, 10.0)], ORIN_NANO_8GB)


@pytest.mark.parametrize("dev", DEVICES, ids=lambda d: d.name)
def test_loo_on_real_table_is_finite_and_never_uses_the_held_out_row(dev: EdgeDevice) -> None:
    rows = load_jetson_ai_lab(dev)
    assert [r.model for r in rows] == list(EDGE_MODELS)
    loo = leave_one_out(rows, dev)
    assert len(loo) == 7
    for r in loo:
        assert math.isfinite(r.rel_error)
        assert math.isfinite(r.predicted_tokens_per_s)
        assert r.predicted_tokens_per_s > 0
    for i in range(7):
        perturbed = list(rows)
        perturbed[i] = replace(rows[i], tokens_per_s=rows[i].tokens_per_s * 3.0)
        again = leave_one_out(perturbed, dev)
        # the held-out row's own measurement never enters its prediction ...
        assert again[i].predicted_tokens_per_s == loo[i].predicted_tokens_per_s
        assert again[i].efficiency == loo[i].efficiency
        # ... but it does enter every other row's fit
        for j in range(7):
            if j != i:
                assert again[j].predicted_tokens_per_s != loo[j].predicted_tokens_per_s


@pytest.mark.parametrize("dev", DEVICES, ids=lambda d: d.name)
def test_loo_median_error_bound_on_real_table(dev: EdgeDevice) -> None:
    """Bound on the real leave-one-out median |error|, derived from the data.

    Per-row efficiencies r_i = tok/s_i · bytes_i / B lie in 0.41-0.77 (original) and 0.42-0.75
    (Super). For the log-LS fit, held-out row i's log error is exactly n/(n-1) = 7/6 times its
    in-sample log deviation log(η_all / r_i) (checked below). The median |in-sample log deviation|
    is 0.195 (original) and 0.175 (Super), so the median LOO |error| is at most
    exp(7/6 · 0.195) - 1 = 25.5 % (original) and exp(7/6 · 0.175) - 1 = 22.6 % (Super). The
    measured values are 22.4 % and 18.4 %. Asserted: that data-derived bound, and 26 % as a fixed
    regression bound for both devices. A single bandwidth factor cannot do much better on this
    table: the two Gemma 2 rows reach only 0.6-0.75 of the bandwidth efficiency of the other five.
    """
    rows = load_jetson_ai_lab(dev)
    loo = leave_one_out(rows, dev)
    eta_all = fit_efficiency(rows, dev)
    r = [row.tokens_per_s * row.bytes_per_token / dev.mem_bandwidth_bytes_per_s for row in rows]
    assert min(r) <= eta_all <= max(r) < 1.0  # a physical fraction of peak bandwidth
    for ri, res in zip(r, loo, strict=True):
        loo_log_err = math.log(res.predicted_tokens_per_s / res.measured_tokens_per_s)
        assert loo_log_err == pytest.approx(7 / 6 * math.log(eta_all / ri), rel=1e-9)
    median_abs = statistics.median(abs(x.rel_error) for x in loo)
    median_dev = statistics.median(abs(math.log(eta_all / ri)) for ri in r)
    assert median_abs <= math.exp(7 / 6 * median_dev) - 1 + 1e-12
    assert median_abs <= 0.26
    assert 0.5 < eta_all < 0.7  # the fitted value is 0.59 on both devices


def test_device_cost_model_decode_matches_roofline_and_protocol() -> None:
    cm = jetson_cost_model("jetson-orin-nano-super", "llama-3.2-3b")
    rows = load_jetson_ai_lab(ORIN_NANO_SUPER)
    eta = fit_efficiency(rows, ORIN_NANO_SUPER)
    assert cm.efficiency == eta
    spec = EDGE_MODELS["llama-3.2-3b"]
    expected = 1.0 / predict_tokens_per_s(bytes_per_token(spec), ORIN_NANO_SUPER, eta)
    assert cm.decode_time_s() == pytest.approx(expected, rel=1e-12)
    # the CostModel protocol: one decode sequence attending to c KV tokens = batch-1 decode at c
    e = _a()
    for c in (1, 512, 4096):
        assert cm.iteration_time_s(e, e, _a(c)) == pytest.approx(cm.decode_time_s(c), rel=1e-12)
        bd = cm.breakdown_s(e, e, _a(c))
        assert bd["compute_excess"] == 0.0  # batch-1 decode is memory-bound
    assert cm.iteration_time_s(e, e, e) == 0.0
    # batched decode reads the weights once: 8 sequences cost far less than 8 single steps
    assert cm.iteration_time_s(e, e, _a(*[128] * 8)) < 2 * cm.decode_time_s(128)


def test_device_cost_model_prefill_is_compute_bound_lower_bound() -> None:
    cm = jetson_cost_model(ORIN_NANO_8GB, "llama-3.1-8b")
    assert ORIN_NANO_8GB.peak_fp16_dense_flops == 10e12
    t = [cm.prefill_time_s(n) for n in (1, 16, 128, 1024, 4096)]
    assert np.all(np.diff(t) > 0)
    # long prompt: compute-bound, at least 2·P_streamed·n / F (ε = 1 gives the lower bound)
    spec = EDGE_MODELS["llama-3.1-8b"]
    n = 1024
    bd = cm.breakdown_s(_a(n), _a(0), _a())
    assert bd["compute_excess"] > 0
    floor = 2 * (spec.streamed_params - spec.embedding_params) * n / 10e12
    assert cm.prefill_time_s(n) > floor
    half = replace(cm, compute_efficiency=0.5)
    assert half.prefill_time_s(n) > 1.9 * cm.prefill_time_s(n)
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        DeviceCostModel(ORIN_NANO_8GB, spec, efficiency=1.2)
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        DeviceCostModel(ORIN_NANO_8GB, spec, efficiency=0.5, compute_efficiency=0.0)


def test_module_imports_no_torch() -> None:
    code = (
        "import sys, edgetwin.sim.compute.device_roofline\n"
        "print([m for m in ('torch', 'gymnasium', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
