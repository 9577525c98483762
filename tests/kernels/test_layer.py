"""The whole-layer operator ``decoder_layer`` and its frameworks (``kernels/ops/layer.py``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from edgetwin.kernels import hf
from edgetwin.kernels.cli import main
from edgetwin.kernels.ops import layer
from edgetwin.kernels.ops.base import Shape
from edgetwin.kernels.profile import profile
from edgetwin.sim.compute.profiles import read_profile
from edgetwin.sim.compute.table_cost import TableCostModel

CPU = torch.device("cpu")
DECODE = Shape(n_tokens=3, batch_size=3, context_len=10)
CHUNK = Shape(n_tokens=5, batch_size=1, context_len=7)
PREFILL = Shape(n_tokens=6, batch_size=1, context_len=0)


def _frameworks() -> list[str]:
    return ["torch", "transformers"] if hf.available() else ["torch"]


@pytest.mark.parametrize("framework", _frameworks())
@pytest.mark.parametrize("shape", [DECODE, CHUNK, PREFILL])
def test_every_call_sees_the_same_cache(tiny_model, framework: str, shape: Shape) -> None:
    # each call writes the new tokens' K/V and leaves the cache as it found it: two calls on
    # the same input give the same output (a growing cache would attend over more keys)
    run = layer.spec(framework).make_runner(tiny_model, shape, CPU, torch.float32, Path("."))
    with torch.inference_mode():
        first, second = run(), run()
    assert isinstance(first, torch.Tensor)
    b, n = shape.batch_size, 1 if shape.n_tokens == shape.batch_size else shape.n_tokens
    assert tuple(first.shape) == (b, n, tiny_model.hidden_size)
    assert torch.equal(first, second)


@pytest.mark.parametrize("framework", _frameworks())
@pytest.mark.parametrize("shape", [DECODE, CHUNK])
def test_a_pass_picks_one_token_per_sequence(tiny_model, framework: str, shape: Shape) -> None:
    run = layer.spec(framework, layer.PASS_NAME).make_runner(
        tiny_model, shape, CPU, torch.float32, Path(".")
    )
    with torch.inference_mode():
        first, second = run(), run()
    assert isinstance(first, torch.Tensor)
    assert tuple(first.shape) == (shape.batch_size,)
    assert int(first.max()) < tiny_model.vocab_size
    assert torch.equal(first, second)  # the cache is back where it was


def test_work_counts_by_hand(tiny_model) -> None:
    # tiny: d 64, H 4, H_kv 2, d_h 16, I 128; one layer's weights
    # qkv 64·(64+2·32) + o 64·64 + gate_up 64·256 + down 128·64 + 2 norms 64 = 53,376
    w = 64 * 128 + 64 * 64 + 64 * 256 + 128 * 64 + 2 * 64
    spec = layer.spec("torch")
    # decode 3 × (10 + 1) keys; GEMMs 2 N W (Kaplan et al. 2020), attention 4 H d_h per pair
    assert spec.flops(tiny_model, DECODE, 4) == 2 * 3 * w + 4 * 4 * 16 * 33
    # a chunk of 5 over 7 cached: query i sees 7 + i + 1 keys -> 5 · (7 + 3) pairs
    assert spec.flops(tiny_model, CHUNK, 4) == 2 * 5 * w + 4 * 4 * 16 * 50
    # weights once + the K/V of every cached token after the call (Pope et al. 2022)
    assert spec.bytes_moved(tiny_model, DECODE, 4) == 4 * (w + 2 * 32 * 33)
    assert spec.bytes_moved(tiny_model, CHUNK, 2) == 2 * (w + 2 * 32 * 12)
    # a pass adds the LM head 2 S d V over the sequences' last positions (V = 256)
    passes = layer.spec("torch", layer.PASS_NAME)
    assert (
        passes.flops(tiny_model, DECODE, 4) == spec.flops(tiny_model, DECODE, 4) + 2 * 3 * 64 * 256
    )


def test_grid_has_decode_and_prefill_rows(tiny_model) -> None:
    for quick in (True, False):
        shapes = layer.spec("torch").grid(tiny_model, quick)
        decode = [s for s in shapes if s.n_tokens == s.batch_size]
        prefill = [s for s in shapes if s.n_tokens != s.batch_size]
        assert decode
        assert prefill
        assert all(s.batch_size == 1 for s in prefill)


def test_framework_names_are_checked(monkeypatch) -> None:
    with pytest.raises(ValueError, match="auto, transformers, torch"):
        layer.resolve_framework("vllm")
    with pytest.raises(ValueError, match="transformers, torch"):
        layer.spec("onnx")  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` fails
    hf.classes.cache_clear()
    try:
        assert layer.resolve_framework("auto") == "torch"
        with pytest.raises(hf.TransformersMissingError, match="edgetwin\\[validate\\]"):
            layer.resolve_framework("transformers")
    finally:
        hf.classes.cache_clear()


def test_profile_records_the_framework_and_fits_its_overhead(tiny_model, tmp_path) -> None:
    ops = [
        "linear_qkv",
        "linear_o",
        "linear_gate_up",
        "linear_down",
        "lm_head",
        "attn_prefill",
        "attn_decode",
        "decoder_layer",
        "decoder_pass",
    ]
    profile(tiny_model, "cpu", tmp_path, ops=ops, quick=True, cache="hot", framework="torch")
    folder = tmp_path / "cpu" / "tiny"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["framework"] == "torch"
    assert meta["framework_version"] == str(torch.__version__)
    rows = read_profile(folder / "decoder_layer.csv")
    assert len(rows) == len(layer.spec("torch").grid(tiny_model, True))
    model = TableCostModel.from_profile_dir(folder)
    assert model.framework is not None
    assert all(c >= 0 for c in model.framework.coef)
    assert model.framework.n_pass_rows == len(rows)
    assert all(c >= 0 for c in model.framework.pass_coef)


def test_cli_names_the_missing_extra(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    hf.classes.cache_clear()
    try:
        args = ["profile", "--model", "smollm-135m", "--out", str(tmp_path), "--quick"]
        code = main([*args, "--ops", "decoder_layer", "--framework", "transformers"])
    finally:
        hf.classes.cache_clear()
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "--framework transformers" in err
    assert "pip install 'edgetwin[validate]'" in err
    assert not (tmp_path / "cpu").exists()


def test_cli_refuses_an_unknown_framework(tmp_path, capsys) -> None:
    code = main(["profile", "--model", "smollm-135m", "--out", str(tmp_path), "--framework", "x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "auto" in err
    assert "torch" in err
