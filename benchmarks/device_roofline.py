"""Fidelity of the published-device roofline: Jetson Orin Nano / Orin Nano Super decode rates.

For each device, the script fits the bandwidth efficiency η of
``edgetwin.sim.compute.device_roofline`` on all 7 rows of the shipped Jetson AI Lab table
(MLC, INT4, batch 1). It then prints the leave-one-out table: each row predicted from η fitted on
the other 6, with its relative error ``(predicted − measured) / measured``, and the median and max
|error|. Pure arithmetic on a 7-row CSV: it runs in well under a second.

Usage::

    .venv/bin/python benchmarks/device_roofline.py
    .venv/bin/python benchmarks/device_roofline.py --method median
    .venv/bin/python benchmarks/device_roofline.py --context-tokens 100 --bits-per-weight 4.5
    .venv/bin/python benchmarks/device_roofline.py --json results/device_roofline.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from edgetwin.sim.compute.device_roofline import (
    EDGE_DEVICES,
    EDGE_MODELS,
    fit_efficiency,
    leave_one_out,
    load_jetson_ai_lab,
)


def run(method: str, context_tokens: int, bits_per_weight: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": method,
        "context_tokens": context_tokens,
        "bits_per_weight": bits_per_weight,
        "devices": {},
    }
    for name, dev in EDGE_DEVICES.items():
        rows = load_jetson_ai_lab(
            dev, bits_per_weight=bits_per_weight, context_tokens=context_tokens
        )
        eff = fit_efficiency(rows, dev, method)  # type: ignore[arg-type]
        loo = leave_one_out(rows, dev, method)  # type: ignore[arg-type]
        abs_err = [abs(r.rel_error) for r in loo]
        out["devices"][name] = {
            "mem_bandwidth_bytes_per_s": dev.mem_bandwidth_bytes_per_s,
            "efficiency_all_rows": eff,
            "loo": [
                {
                    "model": r.model,
                    "streamed_params": EDGE_MODELS[r.model].streamed_params,
                    "bytes_per_token": row.bytes_per_token,
                    "measured_tokens_per_s": r.measured_tokens_per_s,
                    "predicted_tokens_per_s": r.predicted_tokens_per_s,
                    "rel_error": r.rel_error,
                    "efficiency_without_row": r.efficiency,
                }
                for r, row in zip(loo, rows, strict=True)
            ],
            "median_abs_rel_error": statistics.median(abs_err),
            "max_abs_rel_error": max(abs_err),
        }
    return out


def print_report(res: dict[str, Any]) -> None:
    print(
        f"bandwidth roofline, fit={res['method']}, bits/weight={res['bits_per_weight']}, "
        f"context={res['context_tokens']} tokens"
    )
    for name, d in res["devices"].items():
        bw = d["mem_bandwidth_bytes_per_s"] / 1e9
        eff = d["efficiency_all_rows"]
        print(f"\n{name}: peak {bw:.0f} GB/s, efficiency (all 7 rows) = {eff:.3f}")
        head = ("model", "GB/token", "measured", "predicted", "error", "η(-row)")
        print("{:<14} {:>8} {:>9} {:>9} {:>7} {:>8}".format(*head))
        for r in d["loo"]:
            print(
                f"{r['model']:<14} {r['bytes_per_token'] / 1e9:>8.3f} "
                f"{r['measured_tokens_per_s']:>9.2f} {r['predicted_tokens_per_s']:>9.2f} "
                f"{100 * r['rel_error']:>+6.1f}% {r['efficiency_without_row']:>8.3f}"
            )
        print(
            f"LOO |error|: median {100 * d['median_abs_rel_error']:.1f}%, "
            f"max {100 * d['max_abs_rel_error']:.1f}%"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--method", choices=("log_ls", "median"), default="log_ls")
    p.add_argument("--context-tokens", type=int, default=0, help="KV tokens read per step")
    p.add_argument("--bits-per-weight", type=float, default=4.0)
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    a = p.parse_args(argv)
    res = run(a.method, a.context_tokens, a.bits_per_weight)
    print_report(res)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
