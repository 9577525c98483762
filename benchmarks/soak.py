"""Soak benchmark: does resident memory stay flat over long serving and radio runs? (issue 12).

Two long runs, each driven in chunks of simulated time so that the process's resident set size
(RSS) can be sampled between chunks:

* **serving**: Poisson arrivals and geometric prompt/output lengths through one Llama-3.1-8B
  replica on an A100 (roofline cost model), run by ``edgetwin.scenarios.serve.simulate`` — the
  code path of ``edgetwin serve`` — at a load the replica sustains, so queues stay bounded;
* **radio**: the ``nr_cell`` scenario (1 cell × 20 UEs × 51 PRBs, 0.5 ms slots, PF + equal
  power) for a long simulated time.

The slope is the least-squares slope of RSS over the samples after the first 20 % (warm-up),
in MiB per 100k requests (serving) or per simulated minute (radio). A run is *flat* when
slope × post-warm-up length is below :data:`FLAT_MIB` MiB: the size of the allocator's noise
(arena growth, numpy temporaries) on this machine, so that only a real per-request or per-slot
leak exceeds it.

Usage::

    .venv/bin/python benchmarks/soak.py                 # 1,000,000 requests, 120 s of radio
    .venv/bin/python benchmarks/soak.py --quick         # 20,000 requests, 5 s of radio
    .venv/bin/python benchmarks/soak.py --json results/soak.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from harness import json_header, write_json

#: Threshold of a flat run, MiB of growth over the post-warm-up part.
FLAT_MIB = 20.0
#: Arrival rate of the serving soak, requests/s (a stable load for one Llama-3.1-8B/A100).
RATE_RPS = 20.0
#: Share of the samples treated as warm-up and left out of the slope.
WARMUP_FRACTION = 0.2
_MIB = 2.0**20


def rss_mib() -> float:
    """Resident set size of this process, MiB (``/proc/self/statm``: pages × page size)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / _MIB


def post_warmup_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope dy/dx over the samples after the first :data:`WARMUP_FRACTION`."""
    start = int(len(x) * WARMUP_FRACTION)
    xs, ys = np.asarray(x[start:], float), np.asarray(y[start:], float)
    if len(xs) < 2:
        raise ValueError(f"need >= 2 samples after warm-up, got {len(xs)}")
    return float(np.polyfit(xs, ys, 1)[0])


@dataclass
class Soak:
    """RSS samples of one run and their verdict.

    Attributes:
        name: ``serving`` or ``radio``.
        x: Progress at each sample (requests submitted, or simulated minutes).
        rss_mib: RSS at each sample, MiB.
        wall_s: Wall time of the run, seconds.
        per: The slope's unit of progress (``100k requests`` or ``simulated minute``).
        scale: Progress units per slope unit (1e5 requests, 1 minute).
    """

    name: str
    x: np.ndarray
    rss_mib: np.ndarray
    wall_s: float
    per: str
    scale: float

    def summary(self) -> dict[str, Any]:
        """Slope, growth over the post-warm-up part, verdict, wall time and rate."""
        slope = post_warmup_slope(self.x / self.scale, self.rss_mib)
        start = int(len(self.x) * WARMUP_FRACTION)
        span = (self.x[-1] - self.x[start]) / self.scale
        return {
            "n": float(self.x[-1]),
            "wall_s": self.wall_s,
            "per_wall_s": float(self.x[-1]) / self.wall_s,
            "rss_start_mib": float(self.rss_mib[0]),
            "rss_warm_mib": float(self.rss_mib[start]),
            "rss_end_mib": float(self.rss_mib[-1]),
            "slope_mib": slope,
            "slope_per": self.per,
            "growth_mib": slope * span,
            "flat": bool(slope * span < FLAT_MIB),
            "samples": {"x": self.x.tolist(), "rss_mib": self.rss_mib.tolist()},
        }


def serving_soak(n_requests: int, n_chunks: int = 50, rate_rps: float = RATE_RPS) -> Soak:
    """Serve ``n_requests`` through :func:`edgetwin.scenarios.serve.simulate` (the code path of
    ``edgetwin serve`` / ``edgetwin run``), sampling RSS after each ``1/n_chunks`` of the
    arrival span.

    Poisson arrivals at ``rate_rps`` with geometric prompt (mean 256) and output (mean 64)
    lengths keep one Llama-3.1-8B replica on an A100 (roofline cost model) busy but stable, so
    the queue (and its memory) stays bounded; all requests are generated before the first
    sample, as a trace would be loaded.
    """
    from edgetwin.scenarios.serve import simulate
    from edgetwin.scenarios.serving_schema import validate_serving

    config = validate_serving(
        {
            "name": "soak",
            "serving": {"model": "llama-3.1-8b", "hardware": "a100"},
            "workload": {
                "arrival": {"process": "poisson", "rate_rps": rate_rps, "n_requests": n_requests},
                "prompt_tokens": {"dist": "geometric", "mean": 256},
                "output_tokens": {"dist": "geometric", "mean": 64},
            },
        },
        source="soak",
    )
    xs, rss = [0.0], [rss_mib()]

    def sample(fraction: float) -> None:
        xs.append(round(fraction * n_requests))
        rss.append(rss_mib())

    t0 = time.perf_counter()
    run = simulate(config, progress=sample, n_chunks=n_chunks)
    wall_s = time.perf_counter() - t0
    if run.summary["n_finished"] != n_requests:
        raise RuntimeError(f"soak: {run.summary['n_finished']} of {n_requests} finished")
    return Soak("serving", np.array(xs), np.array(rss), wall_s, "100k req", 1e5)


def radio_soak(duration_s: float, n_chunks: int = 50) -> Soak:
    """Run ``nr_cell`` for ``duration_s`` simulated seconds, sampling RSS per chunk."""
    from edgetwin.scenarios.builder import build
    from edgetwin.scenarios.load import load_scenario

    sim = build(load_scenario("nr_cell", {"duration_s": duration_s}), seed=0)
    xs, rss = [0.0], [rss_mib()]

    def sample(fraction: float) -> None:
        xs.append(fraction * duration_s / 60.0)
        rss.append(rss_mib())

    t0 = time.perf_counter()
    sim.run(progress=sample, n_chunks=n_chunks)
    return Soak("radio", np.array(xs), np.array(rss), time.perf_counter() - t0, "sim min", 1.0)


def main(argv: list[str] | None = None) -> int:
    """Run both soaks, print a table, optionally write JSON; exit 0 (1 if a run grew)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 requests, 5 s of radio")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    n_req, radio_s = (20_000, 5.0) if args.quick else (1_000_000, 120.0)
    runs = [serving_soak(n_req), radio_soak(radio_s)]
    print(
        f"{'run':8s} {'n':>10s} {'wall s':>8s} {'/wall s':>9s} {'RSS0':>7s} {'RSSend':>7s} "
        f"{'slope MiB':>10s} {'per':>9s} {'growth':>7s} flat"
    )
    out = {}
    for r in runs:
        s = r.summary()
        out[r.name] = s
        print(
            f"{r.name:8s} {s['n']:10.0f} {s['wall_s']:8.1f} {s['per_wall_s']:9.0f} "
            f"{s['rss_start_mib']:7.0f} {s['rss_end_mib']:7.0f} {s['slope_mib']:10.3f} "
            f"{r.per:>9s} {s['growth_mib']:7.1f} {'yes' if s['flat'] else 'NO'}"
        )
    if args.json:
        payload = json_header("soak", quick=args.quick, packages=("numpy", "simpy"))
        write_json(Path(args.json), payload | {"flat_mib": FLAT_MIB, "runs": out})
    return 0 if all(s["flat"] for s in out.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
