"""Where should an LLM request run: on the phone, at the edge or in the cloud?

Run: ``python examples/offload_comparison.py [--dur 20] [--seeds 4] [--out DIR]``
(``EDGETWIN_FAST=1`` for a quick pass, as the test suite does). The ``edge_cloud`` scenario (60
chat UEs on one 3-sector n78 site; SmolLM-360M on the device, Llama-3.1-8B on the site's L40S and
on 4 cloud H100s 30 ms away) runs once per offload policy on the **same seeds** (same UE drops,
channels, sessions and prompts: common random numbers):

* ``offload/local``       — every request on the UE's own device,
* ``offload/edge``        — every request over the NR uplink to the site's edge GPU,
* ``offload/cloud``       — every request on to the cloud region,
* ``offload/min_latency`` — per request, the tier with the least estimated latency.

It prints mean ± 95 % CI over seeds of TTFT p50/p90, E2E p90 and SLO attainment (all measured at
the UE; percentiles over the finished requests, SLO attainment over all of them, a request still
running at the end counting as a miss), the paired differences to ``min_latency`` on the same
seed, and writes the comparison (tables, one run folder per policy and seed with its
TTFT-CDF-per-tier, latency-breakdown and TTFT-vs-SINR plots, and ``offload_metrics_ci.png``) to
``--out``. The same from the shell::

    edgetwin compare edge_cloud --set duration_s=20 --seeds 4 \
      --policies offload=local,offload=edge,offload=cloud,offload=min_latency
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from edgetwin.scenarios import plots
from edgetwin.scenarios.load import load_scenario
from edgetwin.scenarios.run import compare, summarize_comparison
from edgetwin.scenarios.sweep import paired_differences

FAST = os.environ.get("EDGETWIN_FAST") == "1"
POLICIES = ("local", "edge", "cloud", "min_latency")
BASELINE = "min_latency"
METRICS = ("ttft_ue_p50_s", "ttft_ue_p90_s", "e2e_ue_p90_s", "slo_attainment")


def _pm(mean: float, half: float) -> str:
    return f"{mean:.3f} ± {half:.3f}" if pd.notna(half) else f"{mean:.3f}"


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the four offload policies on matched seeds; print means and paired differences."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dur", type=float, default=5.0 if FAST else 20.0, help="seconds")
    parser.add_argument("--seeds", type=int, default=2 if FAST else 4, help="seeds 0..N-1")
    parser.add_argument(
        "--out", default=None if FAST else "results/offload_comparison", help="result folder"
    )
    args = parser.parse_args(argv)

    config = load_scenario("edge_cloud", {"duration_s": args.dur})
    runs = compare(
        config,
        [{"offload": p} for p in POLICIES],
        range(args.seeds),
        out_dir=args.out,
        plots=args.out is not None,
        labels=list(POLICIES),
    )

    summary = summarize_comparison(runs)
    summary = summary[summary["metric"].isin(METRICS)]
    summary = summary.assign(
        value=[_pm(m, h) for m, h in zip(summary["mean"], summary["ci95_half_width"], strict=True)]
    )
    wide = summary.pivot(index="policy_set", columns="metric", values="value")
    wide = wide.loc[list(POLICIES), list(METRICS)]
    print(
        f"edge_cloud · {args.dur:g} s · seeds 0..{args.seeds - 1} · "
        "mean ± 95 % CI half-width over seeds"
    )
    print(wide.rename_axis(index="offload", columns=None).to_string())

    # the library's paired statistics (per seed: policy − baseline), on a tidy table
    tidy = runs.melt(id_vars=["policy_set", "seed"], value_vars=list(METRICS), var_name="metric")
    paired = paired_differences(tidy, [], BASELINE)
    paired = paired.assign(
        value=[
            f"{m:+.3f} ± {h:.3f}" if pd.notna(h) else f"{m:+.3f}"
            for m, h in zip(paired["mean_diff"], paired["ci95_half_width"], strict=True)
        ]
    )
    diff = paired.pivot(index="policy_set", columns="metric", values="value")
    diff = diff.loc[[p for p in POLICIES if p != BASELINE], list(METRICS)]
    print(f"\npaired difference to {BASELINE} on the same seed (mean ± 95 % CI half-width)")
    print(diff.rename_axis(index="offload", columns=None).to_string())

    shares = runs.groupby("policy_set")[["share_local", "share_edge", "share_cloud"]].mean()
    print(f"\nshare of requests per tier under {BASELINE}:")
    print(shares.loc[[BASELINE]].round(3).to_string(index=False))
    n_req = runs.groupby("policy_set")[["requests", "requests_finished"]].mean()
    print("\nrequests per run (mean over seeds):")
    print(n_req.loc[list(POLICIES)].round(1).rename_axis(index="offload").to_string())

    if args.out is not None:
        path = plots.metrics_with_ci(
            summarize_comparison(runs),
            list(POLICIES),
            METRICS,
            Path(args.out) / "offload_metrics_ci.png",
            title="edge_cloud: offload policies, mean ± 95 % CI",
        )
        print(f"\ntables and plots in {args.out}/: {path.name}, runs/<policy>/seed<k>/*.png")
    return wide


if __name__ == "__main__":
    main()
