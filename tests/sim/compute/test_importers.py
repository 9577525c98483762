from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edgetwin.sim.compute.importers import (
    LLMSERVINGSIM_RTX4090_LLAMA31_8B,
    PUBLIC_DIR,
    VIDUR_A100_MLP,
    import_llmservingsim,
    import_splitwise,
    import_vidur_mlp,
    llmservingsim_mixed_attention,
)
from edgetwin.sim.compute.profiles import validate_profile

RAW = LLMSERVINGSIM_RTX4090_LLAMA31_8B


def test_public_copies_are_small_and_documented() -> None:
    files = [p for p in PUBLIC_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3_000_000
    readme = (PUBLIC_DIR / "README.md").read_text()
    for needle in (
        "MIT",
        "5daddb21a545658d5150b535712d0494584b5278",
        "7d47513363ec447a741ac5e47241580b47724fbf",
        "8f99e7dc9b407f4ce2488d03dd44c0b8b946dab0",
    ):
        assert needle in readme


def test_llmservingsim_mapping() -> None:
    df = import_llmservingsim()
    validate_profile(df)
    assert set(df["source"]) == {"llmservingsim"}
    counts = df.groupby("op").size().to_dict()
    assert counts == {
        "attn_decode": 99,
        "attn_prefill": 96,
        "elementwise": 152,
        "linear_down": 152,
        "linear_gate_up": 152,
        "linear_o": 152,
        "linear_qkv": 152,
        "lm_head": 40,
    }
    dense = pd.read_csv(RAW / "dense.csv").set_index(["layer", "tokens"])["time_us"]
    row = df[(df["op"] == "linear_qkv") & (df["n_tokens"] == 1)].iloc[0]
    assert row["time_median_s"] == pytest.approx(dense["qkv_proj", 1] * 1e-6)
    # elementwise remainder: 32 layers x (2 RMSNorm + RoPE + SiLU) + embedding + final norm
    it = df[(df["op"] == "elementwise") & (df["n_tokens"] == 256)].iloc[0]
    per_layer = 2 * dense["layernorm", 256] + dense["rotary_emb", 256] + dense["act_fn", 256]
    expect = 32 * per_layer + dense["embedding", 256] + dense["final_layernorm", 256]
    assert it["time_median_s"] == pytest.approx(expect * 1e-6)
    # LM head + sampler, per sequence
    ps = pd.read_csv(RAW / "per_sequence.csv").set_index(["layer", "sequences"])["time_us"]
    lm = df[(df["op"] == "lm_head") & (df["batch_size"] == 4)].iloc[0]
    assert lm["time_median_s"] == pytest.approx((ps["lm_head", 4] + ps["sampler", 4]) * 1e-6)
    dec = df[df["op"] == "attn_decode"]
    assert (dec["n_tokens"] == dec["batch_size"]).all()
    assert dec["flops"].gt(0).all()
    assert len(llmservingsim_mixed_attention()) == 8448


@pytest.mark.parametrize(("model", "n_rows"), [("llama-2-7b", 261), ("llama-3-8b", 456)])
def test_vidur_tp1_rows(model: str, n_rows: int) -> None:
    df = import_vidur_mlp(VIDUR_A100_MLP[model], model=model)
    validate_profile(df)
    assert set(df["op"]) == {
        "linear_qkv",
        "linear_o",
        "linear_gate_up",
        "linear_down",
        "elementwise",
    }
    assert (df.groupby("op").size() == n_rows).all()
    assert set(df["tp"]) == {1}
    assert (df["time_p90_s"] >= df["time_median_s"] - 1e-15).all()
    raw = pd.read_csv(VIDUR_A100_MLP[model])
    raw = raw[raw["num_tensor_parallel_workers"] == 1].sort_values("num_tokens")
    up = df[df["op"] == "linear_gate_up"]
    np.testing.assert_allclose(
        up["time_median_s"].to_numpy(), raw["time_stats.mlp_up_proj.median"].to_numpy() * 1e-3
    )
    with pytest.raises(ValueError, match="num_tensor_parallel_workers=3"):
        import_vidur_mlp(VIDUR_A100_MLP[model], model=model, tp=3)


def test_splitwise_iteration_rows() -> None:
    df = import_splitwise()
    validate_profile(df)
    assert set(df["op"]) == {"iteration"}
    assert set(df["model"]) == {"llama2-70b", "bloom-176b"}
    assert set(df["device"]) == {"a100-80gb"}
    half = len(df) // 2
    prompt, token = df.iloc[:half], df.iloc[half:]
    assert (prompt["context_len"] == 0).all()
    assert (prompt["n_tokens"] % prompt["batch_size"] == 0).all()
    assert (token["n_tokens"] == token["batch_size"]).all()
    # a prefill of a whole batch costs more than one decode step of it
    assert (prompt["time_median_s"].to_numpy() > token["time_median_s"].to_numpy()).all()
    assert df["n_repeats"].sum() == 2 * 420
