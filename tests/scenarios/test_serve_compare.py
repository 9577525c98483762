"""``edgetwin compare`` of a serving scenario: request schedulers under common random numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgetwin.scenarios.cli import main
from edgetwin.scenarios.run import MARKER, mean_ci
from edgetwin.scenarios.serve_compare import SERVING_METRICS, compare_serving
from edgetwin.scenarios.serving_schema import validate_serving

# A loaded single replica: Poisson arrivals at 6 req/s of geometric prompts (mean 1000 tokens)
# on 8 sequence slots of an RTX 4090 (roofline) serve ~5 req/s, so a queue builds up and the
# admission order matters; 200 requests drain in ~40 simulated s (~0.03 s of wall time a run).
SCENARIO = """\
name: tiny_serving_compare
seed: 0
serving:
  model: llama-3.1-8b
  hardware: rtx4090
  max_num_seqs: 8
  max_num_batched_tokens: 16384
  kv_blocks: 4000
  ttft_slo_s: 1.0
  tpot_slo_s: 0.1
workload:
  arrival: {process: poisson, rate_rps: 6.0, n_requests: 200}
  prompt_tokens: {dist: geometric, mean: 1000}
  output_tokens: {dist: geometric, mean: 20}
"""

SEEDS = [0, 1, 2]


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "serving.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture
def config(scenario: Path):
    return validate_serving(__import__("yaml").safe_load(scenario.read_text()))


@pytest.fixture
def compared(config, tmp_path: Path):
    return compare_serving(
        config, [{"serve": "fcfs"}, {"serve": "sjf"}], SEEDS, tmp_path / "cmp", workers=1
    )


def _requests(out: Path, label: str, seed: int) -> pd.DataFrame:
    return pd.read_parquet(out / "runs" / label / f"seed{seed}" / "requests.parquet")


def test_every_policy_runs_once_per_seed_on_the_same_workload(compared) -> None:
    out = compared.out_dir
    runs = pd.read_parquet(out / "runs.parquet")
    assert sorted(zip(runs["policy_set"], runs["seed"], strict=True)) == sorted(
        (label, s) for label in ("serve=fcfs", "serve=sjf") for s in SEEDS
    )
    assert set(runs["policy.serve"]) == {"serve/fcfs", "serve/sjf"}
    assert {"ttft_mean_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_mean_s"} <= set(runs)
    assert {"e2e_mean_s", "throughput_rps", "slo_attainment", "goodput_rps"} <= set(runs)
    pd.testing.assert_frame_equal(runs, compared.runs)
    for seed in SEEDS:
        fcfs, sjf = _requests(out, "serve=fcfs", seed), _requests(out, "serve=sjf", seed)
        assert len(fcfs) == 200
        # common random numbers: the same seed draws the same workload for every scheduler
        for col in ("arrival_s", "prompt_tokens", "output_tokens"):
            np.testing.assert_array_equal(fcfs[col].to_numpy(), sjf[col].to_numpy())
        assert not np.array_equal(fcfs["ttft_s"].to_numpy(), sjf["ttft_s"].to_numpy())
    # ... and another seed another workload
    a0, a1 = (_requests(out, "serve=fcfs", s)["arrival_s"].to_numpy() for s in (0, 1))
    assert not np.allclose(a0, a1)
    meta = json.loads((out / "summary.json").read_text())
    assert meta["seeds"] == SEEDS
    assert meta["policy_sets"] == {"serve=fcfs": "serve/fcfs", "serve=sjf": "serve/sjf"}
    assert (out / MARKER).is_file()
    assert {"summary.csv", "paired.csv", "runs.csv", "config.resolved.yaml"} <= {
        p.name for p in out.iterdir()
    }


def test_sjf_lowers_mean_ttft_on_a_loaded_server(compared) -> None:
    """Shortest job first minimises the mean waiting time among non-preemptive disciplines
    (Conway, Maxwell & Miller, *Theory of Scheduling*, Addison-Wesley 1967, §8-4 — the
    M/G/1 SJF result; also Kleinrock, *Queueing Systems* Vol. 2, 1976, §3.6). Here the
    prompt length is the job size of the admission step, so on a queue that builds up SJF's
    mean TTFT is well below FCFS's on every seed (about half at this load).
    """
    runs = compared.runs.set_index(["policy_set", "seed"])
    for seed in SEEDS:
        fcfs = runs.loc[("serve=fcfs", seed), "ttft_mean_s"]
        sjf = runs.loc[("serve=sjf", seed), "ttft_mean_s"]
        assert sjf < 0.8 * fcfs, (seed, fcfs, sjf)
    paired = compared.paired.set_index("metric")
    assert paired.loc["ttft_mean_s", "mean_diff"] < 0


def test_paired_differences_are_means_of_per_seed_differences(compared) -> None:
    runs = compared.runs.set_index(["policy_set", "seed"])
    paired = pd.read_csv(compared.out_dir / "paired.csv").set_index("metric")
    assert set(paired["policy_set"]) == {"serve=sjf"}
    assert set(paired["baseline"]) == {"serve=fcfs"}
    for metric in ("ttft_mean_s", "ttft_p90_s", "e2e_mean_s", "goodput_rps", "slo_attainment"):
        d = np.array(
            [
                runs.loc[("serve=sjf", s), metric] - runs.loc[("serve=fcfs", s), metric]
                for s in SEEDS
            ]
        )
        n, mean, std, half = mean_ci(d)
        row = paired.loc[metric]
        assert row["n"] == n == len(SEEDS)
        assert row["mean_diff"] == pytest.approx(d.mean(), rel=1e-12, abs=1e-15)
        assert row["std_diff"] == pytest.approx(std, rel=1e-9, abs=1e-15)
        assert row["ci95_half_width"] == pytest.approx(half, rel=1e-9, abs=1e-15)
    summary = pd.read_csv(compared.out_dir / "summary.csv")
    fcfs = summary[(summary["policy_set"] == "serve=fcfs") & (summary["metric"] == "ttft_mean_s")]
    n, mean, _, half = mean_ci([runs.loc[("serve=fcfs", s), "ttft_mean_s"] for s in SEEDS])
    assert fcfs["mean"].item() == pytest.approx(mean)
    assert fcfs["ci95_half_width"].item() == pytest.approx(half)


def test_cli_compare_prints_a_table_and_writes_results(scenario, tmp_path, capsys) -> None:
    out = tmp_path / "o"
    args = ["compare", str(scenario), "--policies", "FCFS=serve=fcfs,serve=sjf", "--seeds", "2"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "tiny_serving_compare" in text
    assert "FCFS" in text
    assert "serve=sjf" in text
    assert "Δ serve=sjf" in text
    assert "ttft_mean_s" in text
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 4
    assert set(runs["policy_set"]) == {"FCFS", "serve=sjf"}
    assert sorted(set(runs["seed"])) == [0, 1]  # two seeds from the scenario's seed
    # --set and --duration reach the scenario (--duration is the horizon)
    args2 = [*args[:3], "serve=fcfs", "--seed-list", "5", "--set", "serving.max_num_seqs=4"]
    assert main([*args2, "--duration", "10", "--out", str(tmp_path / "p")]) == 0
    row = pd.read_parquet(tmp_path / "p" / "runs.parquet").iloc[0]
    assert row["seed"] == 5
    assert row["n_not_arrived"] > 0
    resolved = (tmp_path / "p" / "config.resolved.yaml").read_text()
    assert "max_num_seqs: 4" in resolved
    assert "horizon_s: 10" in resolved


@pytest.mark.parametrize(
    ("policies", "extra", "needle"),
    [
        ("serve=fcfs,serve=nope", [], "unknown serve policy 'nope'"),
        ("prb=pf", [], "policy family 'prb' does not apply"),
        ("serve=fcfs+power=equal", [], "policy family 'power' does not apply"),
        ("serve=prb/pf", [], "is not a 'serve' policy"),
        ("serve=sjf:beta=1", [], "take no arguments"),
        ("serve=fcfs,serve=fcfs", [], "given twice"),
        ("serve=fcfs", ["--seed-list", "1,1"], "seeds must be distinct"),
        ("serve=fcfs", ["--seed-list", "-1"], "expected an integer"),
        ("serve=fcfs", ["--seeds", "0"], "expected an integer in 1.."),
    ],
)
def test_bad_input_exits_2_with_one_line(
    scenario, tmp_path, capsys, policies, extra, needle
) -> None:
    out = tmp_path / "o"
    assert main(["compare", str(scenario), "--policies", policies, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("edgetwin: error:")
    assert needle in err
    if "policy" in needle or "does not apply" in needle or "arguments" in needle:
        assert "allowed: serve/fcfs, serve/sjf, serve/srpt" in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing ran, nothing was written


def test_a_users_directory_is_not_overwritten(scenario, tmp_path, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["compare", str(scenario), "--policies", "serve=fcfs", "--seeds", "1"]
    assert main([*args, "--out", str(out)]) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".mine")] == []
    # an EdgeTwin result is replaced; the previous one is kept as NAME.prev
    res = tmp_path / "res"
    assert main([*args, "--out", str(res)]) == 0
    assert main([*args, "--out", str(res)]) == 0
    assert "previous result is now" in capsys.readouterr().out
    assert (res / "runs.parquet").is_file()
    assert (tmp_path / "res.prev" / MARKER).is_file()


def test_trace_workload_and_headline_metrics(tmp_path: Path, capsys) -> None:
    """A trace replays the same requests whatever the seed; every headline metric is there."""
    rng = np.random.default_rng(4)
    n = 80
    trace = tmp_path / "trace.csv"
    pd.DataFrame(
        {
            "arrival_s": np.cumsum(rng.exponential(1 / 8.0, n)),
            "prompt_tokens": rng.integers(16, 3000, n),
            "output_tokens": rng.integers(1, 40, n),
        }
    ).to_csv(trace, index=False)
    config = validate_serving(
        {
            "name": "trace_cmp",
            "serving": {"hardware": "rtx4090", "max_num_seqs": 4, "kv_blocks": 3000},
            "workload": {"trace": str(trace)},
        }
    )
    result = compare_serving(config, [{"serve": "serve/srpt"}, {"serve": "sjf"}], [0, 7])
    assert result.out_dir is None
    assert list(result.runs["policy_set"]) == ["serve=srpt"] * 2 + ["serve=sjf"] * 2
    # the same trace on both seeds: the scheduler alone decides, deterministically
    by = result.runs.set_index(["policy_set", "seed"])
    for label in ("serve=srpt", "serve=sjf"):
        assert by.loc[(label, 0), "ttft_mean_s"] == by.loc[(label, 7), "ttft_mean_s"]
    assert set(SERVING_METRICS) <= set(result.runs.columns)
    assert set(SERVING_METRICS) <= set(result.summary["metric"])
    path = tmp_path / "t.yaml"
    path.write_text(__import__("yaml").safe_dump(config.model_dump(mode="json")))
    args = ["compare", str(path), "--policies", "serve=fcfs", "--seeds", "2"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    assert "replays the same requests on every seed" in capsys.readouterr().out


@pytest.mark.slow  # two spawned workers import the simulator: ~4 s on two busy cores
def test_workers_give_the_serial_result(config, compared, tmp_path: Path) -> None:
    """Two worker processes write the same tables as one (``wall_s`` aside)."""
    par = compare_serving(
        config, [{"serve": "fcfs"}, {"serve": "sjf"}], SEEDS, tmp_path / "par", workers=2
    )
    pd.testing.assert_frame_equal(
        par.runs.drop(columns="wall_s"), compared.runs.drop(columns="wall_s")
    )
    pd.testing.assert_frame_equal(par.paired, compared.paired)
    for seed in SEEDS:
        pd.testing.assert_frame_equal(
            _requests(par.out_dir, "serve=sjf", seed),
            _requests(compared.out_dir, "serve=sjf", seed),
        )
