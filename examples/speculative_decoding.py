"""Speculative decoding across the radio: every draft policy against cloud-only decoding.

Run: ``python examples/speculative_decoding.py [--quick] [--seeds 2] [--duration 6] [--out DIR]``
(``EDGETWIN_FAST=1``, as the test suite sets, implies ``--quick`` and writes nothing unless
``--out`` is given).

The scenario is ``specdec_jetson`` (one n78 cell with background users; Jetson Orin Nano Super
devices draft with SmolLM2-1.7B, ~14.5 ms per token; the cloud's Llama-3.1-8B on an H100
verifies 30 ms away). Every ``draft`` policy (``draft/fixed`` with k = 1, 2, 4, ``draft/osd``,
``draft/specdecpp``, ``draft/flexspec``, and the shipped ``draft/ppo`` checkpoint when torch is
installed) and the cloud-only autoregressive baseline (``speculative.mode: autoregressive``: the
cloud decodes alone and streams every token) run on the **same seeds** (the same drop, channels,
sessions and, for the drafting policies, the same acceptance draws per round), along three axes:

* **SINR, cell centre → edge**: the cell radius the UEs are dropped in (the uplink SINR the
  UEs saw, from the uplink's per-UE table, is printed with it);
* **cloud load**: drafting devices in the cell, all verified by the one cloud replica;
* **α**: the per-token acceptance rate (i.i.d.).

Measured per run: **speedup** = time per output token at the UE after the first token
(token-weighted over every cloud request that received two or more tokens, finished or cut by
the horizon) of the autoregressive baseline / that of the policy (> 1: speculative decoding
is faster); tokens per second of round time per device; the **discard rate** (discarded drafted
tokens per delivered token) against the **verification rate** (verify passes per delivered
token: SpecDec++'s Pareto plot, fixed k = 0..8 tracing the frontier); device **energy per
token** (drafting, J).

Tables (``runs``, ``pareto`` as CSV and parquet), plots and ``summary.json`` are assembled in a
temporary folder and moved into ``--out`` at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgetwin.scenarios import build
from edgetwin.scenarios.argtypes import OneLineParser, int_at_least, positive_float_up_to
from edgetwin.scenarios.load import load_scenario, validate_scenario
from edgetwin.scenarios.run import atomic_dir

FAST = os.environ.get("EDGETWIN_FAST") == "1"
PROG = "speculative_decoding.py"
SCENARIO = "specdec_jetson"
BASELINE = "cloud-autoregressive"
POLICIES = (
    "draft/fixed:k=1",
    "draft/fixed:k=2",
    "draft/fixed:k=4",
    "draft/osd",
    "draft/specdecpp",
    "draft/flexspec",
)
#: The shipped draft/ppo checkpoint (agents/rl/checkpoints), used when torch is installed.
PPO_CHECKPOINT = (
    Path(__file__).resolve().parents[1] / "agents" / "rl" / "checkpoints" / "draft_length_ppo.pt"
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The options; ``--quick`` (or ``EDGETWIN_FAST=1``) changes the defaults only."""
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run (as the tests do)")
    parser.add_argument("--seeds", type=int_at_least(1), help="matched seeds 0..N-1")
    parser.add_argument(
        "--duration", type=positive_float_up_to(3600, "seconds"), help="simulated seconds per run"
    )
    parser.add_argument("--no-ppo", action="store_true", help="leave out draft/ppo")
    parser.add_argument("--out", help="result folder (default results/speculative_decoding)")
    args = parser.parse_args(argv)
    args.quick = args.quick or FAST
    if args.seeds is None:
        args.seeds = 1 if args.quick else 2
    if args.duration is None:
        args.duration = 2.0 if args.quick else 6.0
    if args.out is None and not FAST:
        args.out = "results/speculative_decoding"
    parser.check_out(args.out)  # before the work, in one line
    return args


def policies(args: argparse.Namespace) -> list[str]:
    """The draft policies of this run (``draft/ppo`` when its checkpoint and torch are here)."""
    out = list(POLICIES)
    if not args.no_ppo and PPO_CHECKPOINT.is_file():
        try:
            import torch  # noqa: F401
        except ImportError:
            return out
        out.append(f"draft/ppo:{PPO_CHECKPOINT}")
    return out


def axes(quick: bool) -> dict[str, list[tuple[str, float, dict[str, Any]]]]:
    """Per axis: ``(axis, value, overrides)`` of each point."""
    radii = (100.0, 500.0) if quick else (75.0, 150.0, 300.0, 600.0)
    n_llm = (3, 8) if quick else (5, 20, 60)
    alphas = (0.5, 0.85) if quick else (0.4, 0.6, 0.8, 0.9)
    return {
        "cell_radius_m": [("cell_radius_m", r, {"topology": {"cell_radius_m": r}}) for r in radii],
        "drafting_devices": [
            (
                "drafting_devices",
                float(n),
                {"topology": {"ues_per_cell": n + 10}, "workload": {"llm_ues_per_cell": n}},
            )
            for n in n_llm
        ],
        "alpha": [
            ("alpha", a, {"speculative": {"acceptance": {"kind": "iid", "alpha": a, "k_max": 8}}})
            for a in alphas
        ],
    }


def base_raw(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario as a dict (quick: 6 drafting devices, 4 background users)."""
    raw = load_scenario(SCENARIO).model_dump(mode="json", exclude_none=True)
    raw["duration_s"] = args.duration
    if args.quick:
        raw["topology"] = {**raw["topology"], "ues_per_cell": 10}
        raw["workload"] = {**raw["workload"], "llm_ues_per_cell": 6}
    # keep the devices busy: more rounds per simulated second
    raw["workload"]["sessions"] = {
        **raw["workload"]["sessions"], "think_time_mean_s": 1.0, "session_gap_mean_s": 1.0,
    }  # fmt: skip
    return raw


def _merge(raw: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    for key, value in over.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def run_one(raw: dict[str, Any], policy: str, seed: int) -> dict[str, Any]:
    """One run; the metrics of the cloud's requests and of the rounds."""
    if policy == BASELINE:
        raw = _merge(raw, {"speculative": {"mode": "autoregressive"}})
        sim = build(validate_scenario(raw), seed=seed)
    else:
        sim = build(validate_scenario(raw), {"draft": policy.removeprefix("draft/")}, seed=seed)
    sim.run()
    res = sim.results()
    req = res.tables["requests"]
    cloud = req[req["tier"] == "cloud"]
    done = cloud[cloud["status"] == "finished"]
    # time per output token after the first, token-weighted over every request that received
    # two or more tokens (finished or cut by the horizon: no bias towards short requests)
    dec = cloud[cloud["received_tokens"] >= 2]
    span = float((dec["last_token_ue_s"] - dec["first_token_ue_s"]).sum())
    n_tok = float((dec["received_tokens"] - 1).sum())
    ul = res.tables.get("ul_ue")
    sinr = math.nan
    if ul is not None and "mean_sinr_db" in ul.columns:
        n_llm = int(raw["workload"]["llm_ues_per_cell"])
        sinr = float(np.nanmean(ul["mean_sinr_db"].to_numpy()[:n_llm]))
    s = res.summary
    return {
        "policy": policy,
        "seed": seed,
        "finished": len(done),
        "tpot_s": span / n_tok if n_tok > 0 else math.nan,
        "e2e_s": float(done["e2e_ue_s"].mean()) if len(done) else math.nan,
        "ul_sinr_db": sinr,
        "k_mean": s.get("spec_k_mean", 0.0),
        "tokens_per_round": s.get("spec_tokens_per_round_mean", 1.0),
        "tokens_per_s_per_device": s.get("spec_tokens_per_s_per_device", math.nan),
        "discard_rate": s.get("spec_discard_rate", 0.0),
        "verification_rate": s.get("spec_verification_rate", 1.0),
        "energy_per_token_j": s.get("spec_energy_per_token_j", 0.0),
        "rounds": s.get("spec_rounds", 0.0),
    }


def run(args: argparse.Namespace) -> dict[str, pd.DataFrame]:
    """Every axis point × policy × seed, and the Pareto sweep of fixed k."""
    raw0 = base_raw(args)
    pols = [BASELINE, *policies(args)]
    rows = [
        {"axis": axis, "value": value, **run_one(_merge(raw0, over), policy, seed)}
        for axis, points in axes(args.quick).items()
        for _name, value, over in points
        for seed in range(args.seeds)
        for policy in pols
    ]
    runs = pd.DataFrame(rows)
    base = runs[runs.policy == BASELINE].set_index(["axis", "value", "seed"])["tpot_s"]
    key = pd.MultiIndex.from_frame(runs[["axis", "value", "seed"]])
    runs["speedup"] = base.reindex(key).to_numpy() / runs["tpot_s"].to_numpy()
    ks = (0, 2, 4, 8) if args.quick else tuple(range(9))
    pareto = [
        run_one(raw0, policy, seed)
        for seed in range(args.seeds)
        for policy in [f"draft/fixed:k={k}" for k in ks] + pols[1:]
    ]
    return {"runs": runs, "pareto": pd.DataFrame(pareto)}


def _figure(n: int) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * n, 3.4))
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, n, i + 1) for i in range(n)]


def plot_speedup(runs: pd.DataFrame, path: Path) -> None:
    """Speedup over cloud-only autoregressive decoding along each axis, one line per policy."""
    names = list(dict.fromkeys(runs["axis"]))
    fig, axs = _figure(len(names))
    for ax, axis in zip(axs, names, strict=True):
        sub = runs[(runs.axis == axis) & (runs.policy != BASELINE)]
        mean = sub.groupby(["policy", "value"])["speedup"].mean().unstack("policy")
        for policy in mean.columns:
            ax.plot(mean.index, mean[policy], marker="o", label=_short(policy))
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.set_xlabel(axis)
        ax.set_ylabel("TPOT speedup over cloud AR")
    axs[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_pareto(pareto: pd.DataFrame, path: Path) -> None:
    """Discard rate against verification rate (SpecDec++'s Pareto plot)."""
    fig, (ax,) = _figure(1)
    mean = pareto.groupby("policy")[["verification_rate", "discard_rate"]].mean()
    fixed = mean[mean.index.str.startswith("draft/fixed")]
    fixed = fixed.iloc[np.argsort(-fixed["verification_rate"].to_numpy())]
    ax.plot(fixed["verification_rate"], fixed["discard_rate"], "o-", color="0.5", label="fixed k")
    for policy, row in mean.drop(index=fixed.index).iterrows():
        ax.plot(row["verification_rate"], row["discard_rate"], "s", label=_short(str(policy)))
    ax.set_xlabel("verify passes per delivered token")
    ax.set_ylabel("discarded drafts per delivered token")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _short(policy: str) -> str:
    return "draft/ppo" if policy.startswith("draft/ppo:") else policy


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the sweeps on matched seeds, print the tables, write tables and plots."""
    args = parse_args(argv)
    t0 = time.perf_counter()
    tables = run(args)
    wall_s = time.perf_counter() - t0
    runs, pareto = tables["runs"].copy(), tables["pareto"].copy()
    runs["policy"] = runs["policy"].map(_short)
    pareto["policy"] = pareto["policy"].map(_short)
    print(f"{SCENARIO}: {args.duration:g} s per run, seeds 0..{args.seeds - 1}"
          f"{' (quick)' if args.quick else ''}")  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        for axis in dict.fromkeys(runs["axis"]):
            sub = runs[runs.axis == axis]
            print(f"\nspeedup over cloud-only autoregressive (TPOT ratio) against {axis}")
            print(sub.pivot_table(index="policy", columns="value", values="speedup")
                  .round(3).to_string())  # fmt: skip
            if axis == "cell_radius_m":
                sinr = sub.groupby("value")["ul_sinr_db"].mean().round(1)
                print("mean uplink SINR of the drafting UEs [dB]: "
                      + ", ".join(f"{v:g} m: {s}" for v, s in sinr.items()))  # fmt: skip
        cols = ["k_mean", "tokens_per_round", "tokens_per_s_per_device", "discard_rate",
                "verification_rate", "energy_per_token_j", "tpot_s"]  # fmt: skip
        print("\nPareto sweep and energy (base point, mean over seeds)")
        print(pareto.groupby("policy", sort=False)[cols].mean().round(4).to_string())
    print(f"\n{len(runs) + len(pareto)} runs in {wall_s:.1f} s wall")
    summary = {
        "scenario": SCENARIO,
        "duration_s": args.duration,
        "seeds": args.seeds,
        "quick": args.quick,
        "policies": [BASELINE, *map(_short, policies(args))],
        "wall_s": wall_s,
        "best_speedup": float(runs.loc[runs.policy != BASELINE, "speedup"].max()),
    }
    if args.out is not None:
        with atomic_dir(args.out, on_replaced=print) as tmp:
            for name, df in (("runs", runs), ("pareto", pareto)):
                df.to_csv(tmp / f"{name}.csv", index=False)
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            plot_speedup(runs, tmp / "speedup.png")
            plot_pareto(pareto, tmp / "pareto_discard_vs_verify.png")
            (tmp / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(f"tables (csv, parquet), plots and summary.json in {args.out}/")
    return {**tables, "summary": summary}


if __name__ == "__main__":
    main()
