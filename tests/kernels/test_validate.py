"""`edgetwin kernels validate`: a real (tiny) model timed against its own quick profile.

No accuracy bound is asserted here: a 2-layer, 64-wide model is all framework overhead, which
the operator sum does not model. The structure, the timing protocol and the CLI are checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from edgetwin.kernels import cli
from edgetwin.kernels import hf as hf_import
from edgetwin.kernels import validate as val
from edgetwin.kernels.models import MODELS, ModelSpec
from edgetwin.kernels.profile import profile

REPO = Path(__file__).resolve().parents[2]
BATCHES = (1, 3)
CONTEXTS = (8, 24)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def hf():
    return pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny() -> ModelSpec:
    # as conftest's tiny_model (module scope here, so that one profile serves every test)
    return ModelSpec("tiny", "test/tiny", 64, 2, 4, 2, 16, 128, 256)


@pytest.fixture(scope="module")
def profiles(tmp_path_factory, tiny) -> Path:
    root = tmp_path_factory.mktemp("profiles")
    torch.set_num_threads(1)
    profile(tiny, "cpu", root, quick=True, max_time_s=0.01)
    return root


@pytest.fixture(scope="module")
def table(hf, tiny, profiles) -> pd.DataFrame:
    torch.set_num_threads(1)
    return val.validate(
        tiny, "cpu", profiles, batches=BATCHES, contexts=CONTEXTS, quick=True, repeats=2
    )


# ------------------------------------------------------------------------------ the table
def test_table_has_every_cell_and_the_columns(table, tiny):
    assert list(table.columns[: len(val.COLUMNS)]) == list(val.COLUMNS)
    pred_cols = [c for c in table.columns if c.startswith("pred_")]
    assert "pred_linear_qkv_ms" in pred_cols
    assert "pred_attn_decode_ms" in pred_cols
    assert "pred_attn_prefill_ms" in pred_cols
    assert len(table.columns) == len(val.COLUMNS) + len(pred_cols)
    cells = {(r.kind, r.batch, r.context) for r in table.itertuples()}
    assert cells == {(k, b, c) for k in val.KINDS for b in BATCHES for c in CONTEXTS}
    assert len(table) == len(cells)
    assert (table["model"] == tiny.model_id).all()
    assert (table["device"] == "cpu").all()
    assert (table["dtype"] == "float32").all()
    assert (table["threads"] == 1).all()
    assert (table["n_repeats"] == 2).all()
    dec = table[table["kind"] == "decode"]
    pre = table[table["kind"] == "prefill"]
    assert (dec["new_tokens"] == dec["batch"]).all()
    assert (pre["new_tokens"] == pre["batch"] * pre["context"]).all()
    assert table.attrs["skipped"] == []
    assert table.attrs["transformers_version"]
    assert Path(table.attrs["profile_dir"]).name == tiny.model_id


def test_measured_and_predicted_are_positive_and_the_error_is_as_defined(table):
    meas = table["measured_ms"].to_numpy()
    pred = table["predicted_ms"].to_numpy()
    assert (meas > 0).all()
    assert np.isfinite(meas).all()
    assert (pred > 0).all()
    assert (table["measured_p90_ms"] >= table["measured_ms"]).all()
    np.testing.assert_allclose(table["error_pct"], 100.0 * (pred - meas) / meas, rtol=1e-12)
    parts = table[[c for c in table.columns if c.startswith("pred_")]].sum(axis=1)
    np.testing.assert_allclose(parts, pred, rtol=1e-9)


def test_prediction_is_the_cost_model_of_the_grid_cell(table, tiny, profiles):
    from edgetwin.sim.compute.table_cost import load_cost_model

    cost = load_cost_model(profiles, model=tiny.model_id, hardware="cpu")
    empty = np.zeros(0, dtype=np.int64)
    for r in table.itertuples():
        if r.kind == "decode":  # b decodes, each attending over the c cached tokens + the new one
            want = cost.iteration_time_s(empty, empty, np.full(r.batch, r.context + 1))
        else:  # b chunks of c tokens, nothing cached
            want = cost.iteration_time_s(
                np.full(r.batch, r.context), np.zeros(r.batch, dtype=np.int64), empty
            )
        assert r.predicted_ms == pytest.approx(1e3 * want, rel=1e-12)
    assert val.predict(cost, "decode", 2, 10) == cost.breakdown_s(empty, empty, np.full(2, 11))
    with pytest.raises(ValueError, match="kind"):
        val.predict(cost, "train", 1, 1)  # type: ignore[arg-type]


def test_summary_and_the_goal_line(table):
    s = val.summary(table)
    assert list(s.index) == ["decode", "prefill", "all"]
    err = table["error_pct"].abs()
    assert s.loc["all", "median_abs_error_pct"] == pytest.approx(err.median())
    assert s.loc["all", "max_abs_error_pct"] == pytest.approx(err.max())
    assert s.loc["decode", "cells"] == len(BATCHES) * len(CONTEXTS)
    lines = val.format_summary(table)
    assert lines[-1].startswith("goal (median |error| <= 10 %, max |error| <= 20 %")
    assert lines[-1].endswith(("met", "missed"))


def test_goal_thresholds():
    def df(errors):
        return pd.DataFrame({"kind": ["decode"] * len(errors), "error_pct": errors})

    assert val.goal_met(df([5.0, -9.0, 19.9]))
    assert not val.goal_met(df([5.0, -9.0, 21.0]))  # max above 20 %
    assert not val.goal_met(df([11.0, -12.0, 1.0]))  # median above 10 %
    assert not val.goal_met(df([]))
    assert val.format_summary(df([5.0, -9.0, 19.9]))[-1].endswith(": met")


def test_quick_skips_prefill_cells_above_the_token_budget(hf, tiny, profiles):
    df = val.validate(
        tiny,
        "cpu",
        profiles,
        batches=(1, 2),
        contexts=(8, 16),
        kinds=("prefill",),
        quick=True,
        repeats=1,
        max_prefill_tokens=16,
    )
    assert {(r.batch, r.context) for r in df.itertuples()} == {(1, 8), (2, 8), (1, 16)}
    assert df.attrs["skipped"] == [(2, 16)]
    assert "skipped 1 prefill cell(s) above 16 tokens (batch x context): 2x16" in "\n".join(
        val.format_summary(df)
    )


# ------------------------------------------------------------------------------ timing protocol
def _cache_kw(model) -> str:
    return val._forward_kwargs(model)[0]


def test_build_model_has_the_spec_dimensions_and_keeps_the_global_rng(hf, tiny):
    state = torch.random.get_rng_state()
    model = val.build_model(tiny)
    assert torch.equal(state, torch.random.get_rng_state())
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads) == (64, 2, 4)
    assert (c.num_key_value_heads, c.head_dim, c.intermediate_size, c.vocab_size) == (
        2,
        16,
        128,
        256,
    )
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    tied = val.build_model(ModelSpec("tied", "test/tied", 64, 2, 4, 2, 16, 128, 256, True))
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    # same seed, same weights
    again = val.build_model(tiny)
    assert torch.equal(model.model.embed_tokens.weight, again.model.embed_tokens.weight)


def test_smollm_specs_tie_their_embeddings_as_the_checkpoints():
    assert MODELS["smollm-135m"].tie_embeddings
    assert MODELS["smollm-360m"].tie_embeddings
    assert not MODELS["llama-3.1-8b"].tie_embeddings


def test_decode_step_runs_at_context_c(hf, tiny):
    model = val.build_model(tiny)
    batch, context, repeats = 3, 20, 4
    before: list[tuple[int, tuple[int, ...]]] = []
    after: list[tuple[int, tuple[int, ...]]] = []
    kw = _cache_kw(model)

    def pre(_module, _args, kwargs):
        before.append((kwargs[kw].get_seq_length(), tuple(kwargs["input_ids"].shape)))

    def post(_module, _args, kwargs, out):
        after.append((kwargs[kw].get_seq_length(), tuple(out.logits.shape)))

    prefix = val.prefill_cache(model, context)
    h1 = model.register_forward_pre_hook(pre, with_kwargs=True)
    h2 = model.register_forward_hook(post, with_kwargs=True)
    try:
        res = val.time_decode(model, batch, context, quick=True, repeats=repeats, prefix=prefix)
    finally:
        h1.remove()
        h2.remove()
    assert res.n_repeats == repeats
    assert len(before) == repeats + 1  # one warm-up call with --quick
    # every step starts from c cached tokens, feeds one token per sequence ...
    assert before == [(context, (batch, 1))] * len(before)
    # ... attends over c + 1 keys, and only the last position reaches the LM head
    assert after == [(context + 1, (batch, 1, tiny.vocab_size))] * len(after)
    assert prefix.get_seq_length() == context  # the one-sequence prefix is not consumed


def test_decode_builds_its_own_prefix(hf, tiny):
    model = val.build_model(tiny)
    res = val.time_decode(model, 2, 5, quick=True, repeats=1)
    assert res.median_s > 0
    with pytest.raises(ValueError, match="expected 6"):
        val.time_decode(model, 2, 6, quick=True, repeats=1, prefix=val.prefill_cache(model, 5))


def test_prefill_is_b_sequences_of_c_tokens_from_an_empty_cache(hf, tiny):
    model = val.build_model(tiny)
    seen: list[tuple[object, tuple[int, ...], tuple[int, ...]]] = []
    kw = _cache_kw(model)

    def post(_module, _args, kwargs, out):
        cache = kwargs.get(kw)
        seen.append((cache, tuple(kwargs["input_ids"].shape), tuple(out.logits.shape)))

    h = model.register_forward_hook(post, with_kwargs=True)
    try:
        res = val.time_prefill(model, 3, 12, quick=True, repeats=2)
    finally:
        h.remove()
    assert res.n_repeats == 2
    assert len(seen) == 3
    for cache, ids, logits in seen:
        assert cache is None  # no cache given: the model starts an empty one
        assert ids == (3, 12)
        assert logits == (3, 1, tiny.vocab_size)


def test_transformers_imports_from_the_checkout_root(hf):
    # In a source checkout the folder kernels/ would shadow Hugging Face's `kernels` package
    # (transformers 5 imports it) when the checkout root is on sys.path.
    code = (
        "import sys; from edgetwin.kernels import hf; hf.classes(); "
        "m = sys.modules.get('kernels'); "
        "print('ok', getattr(m, '__file__', None))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok")
    assert str(REPO / "kernels") not in out.stdout


# ------------------------------------------------------------------------------ CSV
def test_write_csv_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "v.csv"
    df = pd.DataFrame({"kind": ["decode"], "error_pct": [1.5]})
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(val.os, "replace", spy)
    assert val.write_csv(df, path) == path
    assert len(replaced) == 1
    assert Path(replaced[0][0]).parent == path.parent
    assert replaced[0][1] == str(path)
    pd.testing.assert_frame_equal(pd.read_csv(path), df)

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        val.write_csv(df.assign(error_pct=[9.0]), path)
    pd.testing.assert_frame_equal(pd.read_csv(path), df)  # the old file is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["v.csv"]  # no temp file left


# ------------------------------------------------------------------------------ CLI
@pytest.fixture
def tiny_registered(monkeypatch, tiny):
    monkeypatch.setitem(MODELS, tiny.model_id, tiny)
    return tiny


def test_cli_prints_the_table_and_writes_the_csv(hf, tiny_registered, profiles, tmp_path, capsys):
    out = tmp_path / "res" / "validate.csv"
    argv = ["validate", "--model", "tiny", "--profiles", str(profiles), "--batch", "1,2"]
    argv += ["--context", "8, 16", "--quick", "--threads", "1", "--repeats", "1"]
    argv += ["--max-prefill-tokens", "16", "--out", str(out)]
    assert cli.main(argv) == 0
    std = capsys.readouterr()
    assert std.err == ""
    lines = std.out.splitlines()
    assert lines[0].startswith("tiny (random weights) on cpu")
    assert lines[1] == f"predicted by the profiles in {profiles / 'cpu' / 'tiny'}"
    head = lines.index(val.HEADER)
    rows = lines[head + 1 : head + 1 + 7]  # 4 decode + 3 prefill cells (2x16 skipped)
    assert [r.split()[:3] for r in rows] == [
        ["decode", "1", "8"],
        ["decode", "2", "8"],
        ["decode", "1", "16"],
        ["decode", "2", "16"],
        ["prefill", "1", "8"],
        ["prefill", "2", "8"],
        ["prefill", "1", "16"],
    ]
    assert any(line.startswith("skipped 1 prefill cell(s)") for line in lines)
    assert any(line.startswith("decode: median |error|") for line in lines)
    assert any(line.startswith("all: median |error|") for line in lines)
    assert any(line.startswith("goal (median |error| <= 10 %") for line in lines)
    assert lines[-1] == f"wrote {out}"
    df = pd.read_csv(out)
    assert len(df) == 7
    assert list(df.columns[: len(val.COLUMNS)]) == list(val.COLUMNS)
    # The CSV keeps 6 significant digits (relative rounding up to 5e-6 per value), so the
    # error recomputed from the rounded columns can differ by ~1e-3 percentage points.
    np.testing.assert_allclose(
        df["error_pct"],
        100 * (df["predicted_ms"] - df["measured_ms"]) / df["measured_ms"],
        rtol=1e-4,
        atol=1e-2,
    )
    for r, printed in zip(df.itertuples(), rows, strict=True):
        assert float(printed.split()[3]) == pytest.approx(r.measured_ms, abs=1e-3)
    assert sorted(p.name for p in out.parent.iterdir()) == ["validate.csv"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "0"], "argument --batch: expected comma-separated distinct integers"),
        (["--batch", "-2"], "argument --batch"),
        (["--batch", "1.5"], "argument --batch"),
        (["--batch", "x"], "argument --batch"),
        (["--batch", ""], "argument --batch"),
        (["--batch", "1,,4"], "argument --batch"),
        (["--batch", "4,1,4"], "got 4 twice in '4,1,4'; give each value once"),
        (["--batch", "1025"], "in 1..1024, got '1025'"),
        (["--context", "32769"], "in 1..32768, got '32769'"),
        (["--context", "128,128"], "twice"),
        (["--context", "0"], "argument --context"),
        (["--repeats", "0"], "argument --repeats"),
        (["--threads", "0"], "argument --threads"),
        (["--max-prefill-tokens", "-1"], "argument --max-prefill-tokens"),
        (["--out", ""], "argument --out: expected a file path"),
        (["--batch", "1", "--batch", "2"], "given twice"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_cli_bad_arguments_are_one_line(args, message, capsys):
    assert cli.main(["validate", "--model", "smollm-135m", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("edgetwin kernels: error: ")
    assert message in err


def test_cli_needs_a_model(capsys):
    assert cli.main(["validate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--model" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "gpt-5"], "unknown model id 'gpt-5'"),
        (["--model", "tiny", "--device", "tpu"], "device must be 'cpu' or 'cuda[:N]'"),
        (["--model", "tiny", "--profiles", "/nonexistent/p"], "profile folder not found"),
        (["--model", "tiny", "--out", "{tmp}"], "is a folder; give a file path"),
        (["--model", "tiny", "--out", "{tmp}/f.txt/x.csv"], "is a file, not a folder"),
    ],
)
def test_cli_bad_input_is_one_line(hf, tiny_registered, tmp_path, args, message, capsys):
    (tmp_path / "f.txt").write_text("x")
    argv = ["validate", *(a.format(tmp=tmp_path) for a in args)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("edgetwin kernels: error: ")
    assert message in err


def test_cli_profiles_without_the_model(hf, tiny_registered, tmp_path, capsys):
    assert cli.main(["validate", "--model", "tiny", "--profiles", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no cost-model profiles for hardware='cpu', model='tiny'" in err


def test_cli_without_transformers_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` fails
    hf_import.classes.cache_clear()
    try:
        assert cli.main(["validate", "--model", "smollm-135m", "--quick"]) == 2
    finally:
        hf_import.classes.cache_clear()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("edgetwin kernels: error: ")
    assert "pip install 'edgetwin[validate]'" in err
    with pytest.raises(val.TransformersMissingError):
        val.validate("smollm-135m", "cpu")
    hf_import.classes.cache_clear()


def test_validate_checks_its_grid():
    for kwargs, message in [
        ({"batches": []}, "batch list is empty"),
        ({"batches": [0]}, "1..1024"),
        ({"batches": [True]}, "1..1024"),
        ({"contexts": [val.MAX_CONTEXT + 1]}, "1..32768"),
        ({"contexts": [8, 8]}, "names 8 twice"),
        ({"kinds": ["train"]}, "kinds"),
        ({"repeats": 0}, "repeats"),
        ({"max_prefill_tokens": 0}, "max_prefill_tokens"),
    ]:
        with pytest.raises(ValueError, match=message):
            val.validate("smollm-135m", "cpu", **kwargs)


def test_cli_bounds_match_the_module():
    assert cli.VALIDATE_MAX_BATCH == val.MAX_BATCH
    assert cli.VALIDATE_MAX_CONTEXT == val.MAX_CONTEXT
