"""``edgetwin serve`` and serving scenarios (``edgetwin run`` of a YAML with ``serving:``)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgetwin.scenarios.cli import main
from edgetwin.scenarios.serve import (
    AZURE_DIR_ENV,
    default_kv_blocks,
    run_serving,
)
from edgetwin.scenarios.serving_schema import validate_serving
from edgetwin.sim.workload.traces import shared_data_dir

AZURE_DIR = Path(os.environ.get(AZURE_DIR_ENV) or shared_data_dir() / "azure_llm_2023")
HAS_AZURE = (AZURE_DIR / "AzureLLMInferenceTrace_conv.csv").is_file()
HAS_TABLE = importlib.util.find_spec("edgetwin.sim.compute.table_cost") is not None


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    """A small random trace: 60 requests over ~20 s."""
    rng = np.random.default_rng(1)
    n = 60
    df = pd.DataFrame(
        {
            "arrival_s": np.cumsum(rng.exponential(1 / 3.0, n)),
            "prompt_tokens": rng.integers(16, 1500, n),
            "output_tokens": rng.integers(1, 300, n),
        }
    )
    path = tmp_path / "trace.csv"
    df.to_csv(path, index=False)
    return path


def _serve(trace: Path, out: Path, *extra: str) -> int:
    args = ["serve", "--trace", str(trace), "--model", "llama-3.1-8b", "--hardware", "a100"]
    return main([*args, "--kv-blocks", "2000", "--max-num-seqs", "64", "--out", str(out), *extra])


def _config(trace: Path, **serving: object) -> dict[str, object]:
    base = {"model": "llama-3.1-8b", "hardware": "rtx4090", "kv_blocks": 600, **serving}
    return {"name": "t", "seed": 0, "serving": base, "workload": {"trace": str(trace)}}


def test_serve_writes_consistent_files(trace: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert _serve(trace, out, "--ttft-slo", "0.5", "--tpot-slo", "0.05") == 0
    assert "TTFT" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {
        "requests.csv",
        "summary.json",
        "config.resolved.yaml",
    }
    req = pd.read_csv(out / "requests.csv")
    summary = json.loads((out / "summary.json").read_text())
    m = summary["metrics"]
    assert len(req) == m["n_requests"] == 60
    fin = req[req["status"] == "finished"]
    assert m["n_finished"] == len(fin) == 60
    for col in ("ttft", "tpot", "e2e"):
        x = fin[f"{col}_s"].dropna()
        assert m[f"{col}_mean_s"] == pytest.approx(x.mean(), rel=1e-9)
        assert m[f"{col}_p90_s"] == pytest.approx(np.percentile(x, 90), rel=1e-9)
    np.testing.assert_allclose(fin["ttft_s"], fin["first_token_s"] - fin["arrival_s"], atol=1e-9)
    np.testing.assert_allclose(fin["e2e_s"], fin["completion_s"] - fin["arrival_s"], atol=1e-9)
    assert (fin["generated_tokens"] == fin["output_tokens"]).all()
    assert m["makespan_s"] == pytest.approx(fin["completion_s"].max())
    assert m["throughput_rps"] == pytest.approx(60 / m["makespan_s"])
    ok = (fin["ttft_s"] <= 0.5) & (fin["tpot_s"].isna() | (fin["tpot_s"] <= 0.05))
    assert m["slo_attainment"] == pytest.approx(ok.mean())
    assert 0.0 <= m["kv_usage_mean"] <= m["kv_usage_max"] <= 1.0
    assert summary["cost_model"]["kind"] == "roofline"
    assert summary["versions"]["python"]
    assert summary["wall_s"] > 0
    resolved = validate_serving(
        __import__("yaml").safe_load((out / "config.resolved.yaml").read_text())
    )
    assert resolved.serving.kv_blocks == 2000
    assert resolved.serving.ttft_slo_s == 0.5


def test_slo_attainment_is_a_monotone_fraction(trace: Path) -> None:
    values = []
    for slo in (0.02, 0.1, 0.5, 2.0, 100.0):
        _, summary = run_serving(validate_serving(_config(trace, ttft_slo_s=slo)))
        att = summary["metrics"]["slo_attainment"]
        assert 0.0 <= att <= 1.0
        values.append(att)
    assert values == sorted(values)
    assert values[-1] == 1.0
    assert values[0] < 1.0


def test_same_seed_same_output(trace: Path, tmp_path: Path) -> None:
    extra = ("--replicas", "2", "--router", "random", "--seed", "4")
    assert _serve(trace, tmp_path / "a", *extra) == 0
    assert _serve(trace, tmp_path / "b", *extra) == 0
    a = (tmp_path / "a" / "requests.csv").read_bytes()
    assert a == (tmp_path / "b" / "requests.csv").read_bytes()
    replicas = pd.read_csv(tmp_path / "a" / "requests.csv")["replica"]
    assert set(replicas) == {0, 1}


def test_replicas_least_outstanding_and_chunked_prefill(trace: Path) -> None:
    cfg = _config(trace, replicas=3, router="least_outstanding", chunked_prefill=True)
    cfg["serving"]["max_num_batched_tokens"] = 256  # type: ignore[index]
    run, summary = run_serving(validate_serving(cfg))
    m = summary["metrics"]
    assert m["n_finished"] == 60
    assert sum(m["n_routed"]) == 60
    assert set(run.requests["replica"]) == {0, 1, 2}


def test_horizon_leaves_unfinished_requests(trace: Path) -> None:
    cfg = _config(trace)
    cfg["horizon_s"] = 5.0
    run, summary = run_serving(validate_serving(cfg))
    m = summary["metrics"]
    assert m["makespan_s"] == pytest.approx(5.0)
    assert m["n_finished"] + m["n_unfinished"] + m["n_rejected"] + m["n_not_arrived"] == 60
    assert m["n_unfinished"] > 0
    assert m["n_not_arrived"] == int((run.requests["arrival_s"] > 5.0).sum()) > 0
    assert len(run.requests) == 60


def test_requests_that_never_fit_are_rejected(trace: Path) -> None:
    cfg = _config(trace)
    cfg["serving"]["max_num_batched_tokens"] = 512  # type: ignore[index]
    run, summary = run_serving(validate_serving(cfg))
    m = summary["metrics"]
    assert (
        m["n_rejected"]
        == int((run.requests["prompt_tokens"] + run.requests["output_tokens"] - 1 > 512).sum())
        > 0
    )
    assert m["n_finished"] + m["n_rejected"] == 60


@pytest.mark.skipif(not HAS_AZURE, reason="Azure LLM 2023 trace not available")
def test_azure_conv_head(tmp_path: Path) -> None:
    out = tmp_path / "az"
    argv = ["serve", "--trace", "azure-conv", "--max-requests", "200", "--hardware", "rtx4090"]
    rc = main([*argv, "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"]["n_requests"] == 200
    assert summary["metrics"]["n_finished"] == 200
    assert summary["metrics"]["kv_blocks"] == default_kv_blocks("llama-3.1-8b", "rtx4090", 16)


def test_azure_missing_file_is_a_clean_error(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv(AZURE_DIR_ENV, str(tmp_path / "nowhere"))
    assert main(["serve", "--trace", "azure-code", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgetwin: error: Azure LLM 2023 trace 'azure-code' not found")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "gpt-9"], "unknown model 'gpt-9'"),
        (["--hardware", "tpu"], "no roofline numbers for hardware 'tpu'"),
        (["--hardware", "cpu"], "measured profiles only"),
        (["--trace", "/no/such/file.csv"], "trace file not found"),
        (["--profiles", "/no/such/dir"], "profile folder not found"),
        (["--max-num-seqs", "0"], "expected a positive integer"),
        (["--router", "best"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_without_traceback(trace, tmp_path, capsys, args, needle) -> None:
    argv = ["serve", "--kv-blocks", "500", "--out", str(tmp_path / "o")]
    if "--trace" not in args:  # an option given twice is refused on its own
        argv += ["--trace", str(trace)]
    assert main([*argv, *args]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_bad_trace_columns(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("t,p,o\n0,1,1\n")
    assert main(["serve", "--trace", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "missing column" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_TABLE, reason="table cost model not available")
def test_public_profiles_table_model(tmp_path: Path) -> None:
    out = tmp_path / "t"
    argv = ["serve", "--trace", "azure-conv", "--max-requests", "100", "--profiles", "public"]
    if not HAS_AZURE:
        pytest.skip("Azure LLM 2023 trace not available")
    assert main([*argv, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cost_model"]["kind"] == "table"
    assert summary["metrics"]["n_finished"] == 100
    assert 0.01 < summary["metrics"]["ttft_p50_s"] < 10.0


def test_profiles_folder_selects_table_model_or_falls_back(trace, tmp_path, capsys) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    rc = _serve(trace, tmp_path / "o", "--profiles", str(profiles))
    err = capsys.readouterr().err
    if HAS_TABLE:  # an empty folder has no (hardware, model) pair
        assert rc == 2
        assert err.startswith("edgetwin: error:")
    else:
        assert rc == 0
        assert "roofline model is used" in err
        summary = json.loads((tmp_path / "o" / "summary.json").read_text())
        assert summary["cost_model"]["kind"] == "roofline"


LLMSS_PERF = shared_data_dir() / "llmservingsim" / "perf"


def _llmss_copy(tmp_path: Path, gpu: str) -> Path:
    """The shared LLMServingSim RTX 4090 folder copied under another GPU's name."""
    if not LLMSS_PERF.is_dir():
        pytest.skip("shared LLMServingSim profiles not available")
    dst = tmp_path / "perf" / gpu
    shutil.copytree(LLMSS_PERF / "RTX4090", dst)
    return tmp_path / "perf"


def _serve_gpu(trace: Path, out: Path, hardware: str, profiles: Path) -> int:
    args = ["serve", "--trace", str(trace), "--hardware", hardware, "--profiles", str(profiles)]
    return main([*args, "--kv-blocks", "2000", "--max-num-seqs", "64", "--out", str(out)])


@pytest.mark.skipif(not HAS_TABLE, reason="table cost model not available")
def test_llmservingsim_folder_of_another_gpu(trace, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("EDGETWIN_CACHE_DIR", str(tmp_path / "cache"))
    perf = _llmss_copy(tmp_path, "L40S")
    # was: silently served with the shipped RTX 4090 tables; now one line naming what is there
    assert _serve_gpu(trace, tmp_path / "o", "rtx4090", perf) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("edgetwin: error: no cost-model profiles for hardware='rtx4090'")
    assert "found LLMServingSim l40s/llama-3.1-8b (tp1)" in err
    assert "expected an EdgeTwin <hardware>/<model>/ folder" in err
    assert not (tmp_path / "o").exists()
    # the right hardware id serves from that folder and says so in summary.json
    assert _serve_gpu(trace, tmp_path / "o", "l40s", perf) == 0
    cost = json.loads((tmp_path / "o" / "summary.json").read_text())["cost_model"]
    assert (cost["kind"], cost["format"], cost["source_hardware"]) == (
        "table",
        "llmservingsim",
        "L40S",
    )
    assert cost["folder"] == str(perf / "L40S" / "meta-llama" / "Llama-3.1-8B" / "bf16")
    assert len(cost["sha256"]) == 64
    assert cost["cache"] == "written"
    assert cost["tables"] == [
        "attn_decode",
        "attn_decode_mixed",
        "attn_prefill",
        "elementwise",
        "linear_down",
        "linear_gate_up",
        "linear_o",
        "linear_qkv",
        "lm_head",
    ]
    assert cost["files"] == [
        "meta.yaml",
        "tp1/attention.csv",
        "tp1/dense.csv",
        "tp1/per_sequence.csv",
    ]


@pytest.mark.skipif(not HAS_TABLE, reason="table cost model not available")
def test_yaml_profiles_folder_same_as_public(trace, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EDGETWIN_CACHE_DIR", str(tmp_path / "cache"))
    perf = _llmss_copy(tmp_path, "RTX4090")
    by_folder = run_serving(validate_serving(_config(trace, profiles=str(perf))))[0]
    public = run_serving(validate_serving(_config(trace, profiles="public")))[0]
    assert by_folder.cost_model["format"] == "llmservingsim"
    assert public.cost_model["format"] == "public"
    # the same CSVs: the same run
    pd.testing.assert_frame_equal(by_folder.requests, public.requests)


SCENARIO = """
name: tiny_serving
description: generated workload
seed: 3
serving:
  model: llama-2-7b
  hardware: h100
  replicas: 2
  router: round_robin
  ttft_slo_s: 1.0
workload:
  arrival: {process: gamma, rate_rps: 4.0, cv: 2.0, n_requests: 40}
  prompt_tokens: {dist: geometric, mean: 300}
  output_tokens: {dist: fixed, mean: 50}
"""


def test_run_dispatches_serving_scenarios(tmp_path, capsys) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    out = tmp_path / "o"
    assert main(["run", str(path), "--out", str(out), "--set", "serving.max_num_seqs=8"]) == 0
    assert "tiny_serving" in capsys.readouterr().out
    req = pd.read_csv(out / "requests.csv")
    assert len(req) == 40
    assert (req["output_tokens"] == 50).all()
    resolved = (out / "config.resolved.yaml").read_text()
    assert "max_num_seqs: 8" in resolved
    assert "seed: 3" in resolved
    # another seed draws another workload
    assert main(["run", str(path), "--out", str(tmp_path / "p"), "--seed", "4"]) == 0
    other = pd.read_csv(tmp_path / "p" / "requests.csv")
    assert not np.allclose(other["arrival_s"], req["arrival_s"])


def test_run_serving_scenario_bad_field(tmp_path, capsys) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("rate_rps: 4.0", "rate_rps: -1"))
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "workload.arrival.rate_rps" in err
    assert "Traceback" not in err


def test_builtin_serving_scenario_validates() -> None:
    path = Path(__file__).resolve().parents[2] / "scenarios/serving/azure_conv_serving.yaml"
    config = validate_serving(__import__("yaml").safe_load(path.read_text()))
    assert config.workload.trace == "azure-conv"


def test_refuses_to_replace_a_non_result_directory(trace, tmp_path, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert _serve(trace, out) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert (out / "keep.txt").exists()


def test_progress_slices_do_not_change_the_run(trace: Path) -> None:
    from edgetwin.scenarios.serve import simulate

    config = validate_serving(_config(trace, replicas=2))
    plain = simulate(config)
    seen: list[float] = []
    sliced = simulate(config, progress=seen.append, n_chunks=7)
    pd.testing.assert_frame_equal(plain.requests, sliced.requests)
    assert plain.summary == sliced.summary
    assert len(seen) == 7
    assert seen == sorted(seen)
    assert seen[-1] == 1.0  # the last slice ends at the last arrival
    assert seen[0] < 0.5


def test_shipped_profiles_by_name_from_any_directory(trace, tmp_path, monkeypatch) -> None:
    from edgetwin.scenarios.serve import build_cost_model, shipped_profiles_dir

    monkeypatch.chdir(tmp_path)  # no kernels/profiles below the working directory
    assert (shipped_profiles_dir() / "cpu" / "smollm-135m").is_dir()
    by_name, info = build_cost_model("smollm-135m", "cpu", "shipped")
    by_path, _ = build_cost_model("smollm-135m", "cpu", shipped_profiles_dir())
    assert (info["kind"], info["profiles"], info["format"]) == ("table", "shipped", "edgetwin")
    assert info["folder"] == str(shipped_profiles_dir() / "cpu" / "smollm-135m")
    assert "linear_qkv" in info["tables"]
    args = (np.array([128]), np.array([0]), np.array([100, 200]))
    assert by_name.iteration_time_s(*args) == by_path.iteration_time_s(*args) > 0


def test_trace_format_is_detected_from_the_file(tmp_path, capsys) -> None:
    mooncake = tmp_path / "m.jsonl"
    mooncake.write_text(
        '{"timestamp": 0, "input_length": 600, "output_length": 20, "hash_ids": [0, 1]}\n'
        '{"timestamp": 1500, "input_length": 40, "output_length": 3}\n',
        encoding="utf-8",
    )
    assert _serve(mooncake, tmp_path / "out") == 0
    rows = pd.read_csv(tmp_path / "out" / "requests.csv")
    assert rows["arrival_s"].tolist() == [0.0, 1.5]  # Mooncake timestamps are milliseconds
    assert rows["prompt_tokens"].tolist() == [600, 40]
    assert rows["generated_tokens"].tolist() == [20, 3]
    windows = tmp_path / "w.csv"
    windows.write_text(
        "client_id,window_start_s,rate_rps,iat_cv,iat_dist,dist_param1,dist_param2\n"
        "0,0,1.5,2.0,Gamma,0.25,2.6\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert _serve(windows, tmp_path / "out2") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "ServeGen client windows" in err
    assert "Mooncake JSONL" in err
    assert not (tmp_path / "out2").exists()
