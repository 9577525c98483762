"""Replay of a measured vLLM 0.19 run (issue 8): mean latency errors stay bounded.

The development set of MANIFEST B4 (300 ShareGPT requests of Llama-3.1-8B on one RTX 4090, vLLM
0.19, KV 2,588 x 16 blocks) is replayed whole through ``benchmarks/serving_fidelity.py`` with the
LLMServingSim profiles of the same GPU/model (MANIFEST B3); the whole run takes ~2 s to simulate,
so no slice is needed.

Why the bound is 3 % on each mean (TTFT, TPOT, E2E):

* the full run measures +1.5 % (TTFT), -0.2 % (TPOT), +1.1 % (E2E) with the vLLM v1 scheduling
  of ``sim/compute/server.py`` (running requests first, full-sequence admission, automatic
  prefix caching of preempted requests' blocks); 3 % leaves twice the largest of them for
  legitimate changes elsewhere (cost tables, other engine details) without a re-baseline;
* it fails each model that misses a documented vLLM behaviour: the scheduler before issue 8
  (+7.1 / +5.2 / +6.6 %) and the same scheduler without prefix caching (+5.1 / +3.1 / +4.6 %).

The issue's goal (1 % on means, 3 % on percentiles) is reported, row by row, by the benchmark;
this test guards against regressions, it does not claim the goal.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Bound on |mean error| (%) of TTFT, TPOT and E2E (see the module docstring).
MEAN_ERROR_BOUND_PCT = 3.0


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "serving_fidelity", ROOT / "benchmarks" / "serving_fidelity.py"
    )
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["serving_fidelity"] = mod
    spec.loader.exec_module(mod)
    return mod


F = _benchmark()
HAS_DATA = (F.BENCH_DIR / "vllm" / "requests.jsonl").is_file() and (
    F.PROFILE_DIR / "tp1" / "attention.csv"
).is_file()


@pytest.mark.skipif(not HAS_DATA, reason="shared/data/llmservingsim (MANIFEST B3, B4) missing")
def test_replay_of_the_measured_vllm_run_keeps_mean_errors_bounded() -> None:
    run = F.load_measured()
    sim, _ = F.replay(run)
    assert (sim["status"] == "finished").all()
    assert len(sim) == len(run.requests) == 300
    # the replay is the run's own requests, in the same order
    assert (sim["prompt_tokens"].to_numpy() == run.requests["prompt_tokens"].to_numpy()).all()
    assert (sim["output_tokens"].to_numpy() == run.requests["output_tokens"].to_numpy()).all()
    table = F.compare(run.requests, sim).set_index(["metric", "stat"])
    for metric in ("ttft", "tpot", "e2e"):
        err = table.loc[(metric, "mean"), "error_pct"]
        assert abs(err) <= MEAN_ERROR_BOUND_PCT, (metric, err)


@pytest.mark.skipif(not HAS_DATA, reason="shared/data/llmservingsim (MANIFEST B4) missing")
def test_measured_statistics_match_llmservingsims_table() -> None:
    # the vLLM column is computed as LLMServingSim's validation/summary.txt computes it
    run = F.load_measured()
    ttft = F.stats(run.requests["ttft_s"].to_numpy())
    tpot = F.stats(run.requests["tpot_s"].to_numpy())
    e2e = F.stats(run.requests["e2e_s"].to_numpy())
    assert ttft["mean"] * 1e3 == pytest.approx(65456.6, abs=0.1)
    assert ttft["p99"] * 1e3 == pytest.approx(137356.3, abs=0.1)
    assert tpot["mean"] * 1e3 == pytest.approx(32.4, abs=0.05)
    assert e2e["p95"] * 1e3 == pytest.approx(148977.6, abs=0.1)
    peer = F.peer_errors()
    assert peer[("ttft", "mean")] == pytest.approx(0.6)
    assert len(peer) == 15
