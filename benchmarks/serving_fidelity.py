"""Serving fidelity: replay a measured vLLM run and compare per-request latency (issue 8, part 4).

The development set (``shared/data/llmservingsim/bench/RTX4090/Llama-3.1-8B/``, MANIFEST B4) is
a real vLLM 0.19.0 run of 300 ShareGPT requests of Llama-3.1-8B on one RTX 4090. This script
replays it through :func:`edgetwin.scenarios.serve.simulate` with the run's own engine settings
(``vllm/meta.json``: ``max_num_seqs``, ``max_num_batched_tokens``, chunked prefill, block size,
the KV pool of ``num_gpu_blocks`` blocks) and the LLMServingSim profiles of the same GPU/model
(MANIFEST B3), and prints for TTFT, TPOT and E2E the mean and p50/p90/p95/p99 of vLLM, of
EdgeTwin and the signed error (%), beside LLMServingSim's own error on the same run
(``validation/summary.txt``). Goal (issue 8): every mean within 1 %, every percentile within 3 %;
each row says PASS or MISS.

Replay inputs, per request: the arrival time, the prompt and output token counts. The arrival is
the engine-side ``queued_ts`` (when vLLM's scheduler received the request; ``--arrivals client``
uses the client's ``arrival_time`` instead), shifted so the first request arrives at 0: vLLM
measures TTFT and E2E from ``queued_ts`` (MANIFEST B4), so the replay measures from the same
instant. Metrics as MANIFEST B4: TTFT = first_token_ts - queued_ts, TPOT = (last_token_ts -
first_token_ts) / (output_toks - 1), E2E = last_token_ts - queued_ts. Percentiles are numpy's
linear interpolation.

Nothing is fitted to this run: the engine settings come from its ``meta.json`` and the iteration
times from the profiles (see ``sim/compute/table_cost.py`` and ``sim/compute/server.py`` for the
modelled vLLM behaviour and the named constants).

Usage::

    .venv/bin/python benchmarks/serving_fidelity.py
    .venv/bin/python benchmarks/serving_fidelity.py --max-requests 100 --json out.json

Exit status: 0 when the replay ran (whatever the goal says), 1 when it failed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

#: Goal of issue 8: |error| of every mean and of every percentile (%).
GOAL_MEAN_PCT: Final[float] = 1.0
GOAL_PERCENTILE_PCT: Final[float] = 3.0
#: Statistics of the table (LLMServingSim's summary.txt names p50 "Median").
STATS: Final[tuple[str, ...]] = ("mean", "p50", "p90", "p95", "p99")
METRICS: Final[tuple[str, ...]] = ("ttft", "tpot", "e2e")
#: summary.txt metric names.
_PEER_NAMES: Final[dict[str, str]] = {"TTFT": "ttft", "TPOT": "tpot", "Latency": "e2e"}
_PEER_STATS: Final[dict[str, str]] = {
    "Mean": "mean",
    "Median": "p50",
    "P90": "p90",
    "P95": "p95",
    "P99": "p99",
}


def _data_dirs() -> tuple[Path, Path]:
    from edgetwin.sim.workload.traces import shared_data_dir

    base = shared_data_dir() / "llmservingsim"
    return (
        base / "bench" / "RTX4090" / "Llama-3.1-8B",
        base / "perf" / "RTX4090" / "meta-llama" / "Llama-3.1-8B" / "bf16",
    )


BENCH_DIR, PROFILE_DIR = _data_dirs()


@dataclass
class MeasuredRun:
    """A measured vLLM run: its requests (arrival, sizes, latencies) and engine settings."""

    requests: pd.DataFrame  # arrival_s, prompt_tokens, output_tokens, ttft_s, tpot_s, e2e_s
    engine: dict[str, Any]  # meta.json engine_kwargs
    kv_cache: dict[str, Any]  # meta.json kv_cache
    scheduler: dict[str, Any]  # meta.json resolved_config.scheduler_config


def load_measured(
    bench_dir: Path = BENCH_DIR, *, arrivals: str = "queued", max_requests: int | None = None
) -> MeasuredRun:
    """Read ``vllm/requests.jsonl`` and ``vllm/meta.json`` of a measured run.

    Args:
        bench_dir: The run's folder (``vllm/`` inside).
        arrivals: ``"queued"`` (engine ``queued_ts``) or ``"client"`` (``arrival_time``).
        max_requests: Keep the first N requests by arrival.
    """
    rows = [
        json.loads(line)
        for line in (bench_dir / "vllm" / "requests.jsonl").read_text().splitlines()
        if line.strip()
    ]
    d = pd.DataFrame(rows)
    col = {"queued": "queued_ts", "client": "arrival_time"}[arrivals]
    d = d.sort_values(col, kind="stable").reset_index(drop=True)
    if max_requests is not None:
        d = d.iloc[:max_requests].reset_index(drop=True)
    out = pd.DataFrame(
        {
            "arrival_s": d[col] - d[col].iloc[0],
            "prompt_tokens": d["input_toks"].astype(np.int64),
            "output_tokens": d["output_toks"].astype(np.int64),
            "ttft_s": d["first_token_ts"] - d["queued_ts"],
            "tpot_s": (d["last_token_ts"] - d["first_token_ts"])
            / (d["output_toks"] - 1).where(d["output_toks"] > 1),
            "e2e_s": d["last_token_ts"] - d["queued_ts"],
        }
    )
    meta = json.loads((bench_dir / "vllm" / "meta.json").read_text())
    return MeasuredRun(
        out,
        meta["engine_kwargs"],
        meta["kv_cache"],
        meta.get("resolved_config", {}).get("scheduler_config", {}),
    )


def replay(
    run: MeasuredRun, profiles: Path = PROFILE_DIR, *, overhead_s: float = 0.0
) -> tuple[pd.DataFrame, float]:
    """Replay ``run`` through :func:`~edgetwin.scenarios.serve.simulate`.

    Returns:
        The simulated request table (``ttft_s``, ``tpot_s``, ``e2e_s``, ...) in arrival order,
        and the wall seconds of the simulation.
    """
    from edgetwin.scenarios.serve import simulate
    from edgetwin.scenarios.serving_schema import validate_serving

    eng, kv, sched = run.engine, run.kv_cache, run.scheduler
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.csv"
        run.requests[["arrival_s", "prompt_tokens", "output_tokens"]].to_csv(trace, index=False)
        config = validate_serving(
            {
                "name": "vllm_fidelity",
                "seed": 0,
                "serving": {
                    "model": "llama-3.1-8b",
                    "hardware": "rtx4090",
                    "profiles": str(profiles),
                    "max_num_seqs": int(eng["max_num_seqs"]),
                    "max_num_batched_tokens": int(eng["max_num_batched_tokens"]),
                    "block_size": int(kv["block_size"]),
                    "kv_blocks": int(kv["num_gpu_blocks"]),
                    "chunked_prefill": bool(sched.get("enable_chunked_prefill", True)),
                    "overhead_s": overhead_s,
                },
                "workload": {"trace": str(trace)},
            },
            source="serving_fidelity",
        )
        t0 = time.perf_counter()
        sim = simulate(config)
        wall = time.perf_counter() - t0
    req = sim.requests.sort_values("arrival_s", kind="stable").reset_index(drop=True)
    return req, wall


def stats(x: np.ndarray) -> dict[str, float]:
    """Mean and p50/p90/p95/p99 (numpy linear interpolation) of the finite values."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    p = np.percentile(x, [50, 90, 95, 99])
    return {"mean": float(x.mean()), **{k: float(v) for k, v in zip(STATS[1:], p, strict=True)}}


def peer_errors(bench_dir: Path = BENCH_DIR) -> dict[tuple[str, str], float]:
    """LLMServingSim's signed errors (%) from ``validation/summary.txt``, by (metric, stat)."""
    path = bench_dir / "validation" / "summary.txt"
    out: dict[tuple[str, str], float] = {}
    if not path.is_file():
        return out
    pat = re.compile(
        r"^(TTFT|TPOT|Latency)\s+(Mean|Median|P90|P95|P99)\s+\S+\s+\S+\s+([-+]?[\d.]+)%"
    )
    for line in path.read_text().splitlines():
        m = pat.match(line.strip())
        if m:
            out[(_PEER_NAMES[m[1]], _PEER_STATS[m[2]])] = float(m[3])
    return out


def compare(measured: pd.DataFrame, simulated: pd.DataFrame) -> pd.DataFrame:
    """One row per (metric, stat): vLLM, EdgeTwin (ms), error (%), goal, verdict."""
    rows = []
    for metric in METRICS:
        real = stats(measured[f"{metric}_s"].to_numpy())
        sim = stats(simulated[f"{metric}_s"].to_numpy())
        for s in STATS:
            err = 100.0 * (sim[s] - real[s]) / real[s]
            goal = GOAL_MEAN_PCT if s == "mean" else GOAL_PERCENTILE_PCT
            rows.append(
                {
                    "metric": metric,
                    "stat": s,
                    "vllm_ms": 1e3 * real[s],
                    "edgetwin_ms": 1e3 * sim[s],
                    "error_pct": err,
                    "goal_pct": goal,
                    "verdict": "PASS" if abs(err) <= goal else "MISS",
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=BENCH_DIR, help="measured run folder")
    parser.add_argument("--profiles", type=Path, default=PROFILE_DIR, help="profile folder")
    parser.add_argument("--arrivals", choices=("queued", "client"), default="queued")
    parser.add_argument("--max-requests", type=int, help="replay the first N requests only")
    parser.add_argument("--json", metavar="PATH", help="also write the table as JSON")
    args = parser.parse_args(argv)
    try:
        run = load_measured(args.bench, arrivals=args.arrivals, max_requests=args.max_requests)
        sim, wall = replay(run, args.profiles)
    except (OSError, ValueError, KeyError) as exc:
        print(f"serving_fidelity: error: {exc}", file=sys.stderr)
        return 1
    if (sim["status"] != "finished").any():
        print("serving_fidelity: warning: not every request finished", file=sys.stderr)
    table = compare(run.requests, sim)
    peer = peer_errors(args.bench) if args.max_requests is None else {}
    n = len(run.requests)
    print(
        f"vLLM replay: {n} requests, Llama-3.1-8B on RTX 4090, arrivals={args.arrivals}, "
        f"max_num_seqs {run.engine['max_num_seqs']}, max_num_batched_tokens "
        f"{run.engine['max_num_batched_tokens']}, KV {run.kv_cache['num_gpu_blocks']} x "
        f"{run.kv_cache['block_size']}; simulated in {wall:.2f} s wall"
    )
    print(
        f"{'metric':6s} {'stat':5s} {'vLLM ms':>11s} {'EdgeTwin ms':>12s} {'error %':>8s} "
        f"{'goal %':>7s} {'verdict':>7s} {'LLMServingSim %':>16s}"
    )
    for r in table.itertuples():
        p = peer.get((r.metric, r.stat))
        ps = f"{p:+.1f}" if p is not None else "n/a"
        print(
            f"{r.metric:6s} {r.stat:5s} {r.vllm_ms:11.1f} {r.edgetwin_ms:12.1f} "
            f"{r.error_pct:+8.2f} {r.goal_pct:7.1f} {r.verdict:>7s} {ps:>16s}"
        )
    n_pass = int((table["verdict"] == "PASS").sum())
    print(f"{n_pass}/{len(table)} rows within the goal (means 1 %, percentiles 3 %)")
    if args.json:
        out = {
            "benchmark": "serving_fidelity",
            "n_requests": n,
            "arrivals": args.arrivals,
            "wall_s": wall,
            "rows": table.to_dict(orient="records"),
            "llmservingsim_error_pct": {f"{m}_{s}": v for (m, s), v in peer.items()},
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
