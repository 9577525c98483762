"""Real-time factor of the ``edge_cloud`` scenario: simulated seconds per wall second.

Issue 9, part 7: ``edge_cloud`` (one 3-sector n78 TDD site, 60 chat UEs and 30 background UEs,
NR uplink and downlink, an edge L40S, four cloud H100s, ``offload/min_latency``) run for
``--dur`` simulated seconds (default 600 = 10 minutes) with three kinds of background traffic
on the background UEs: none (neither link), Poisson at ~30 % of the capacity on both links (the
scenario's own), and a full-buffer downlink (uplink Poisson). For each: wall time, the
real-time factor, LLM requests per wall second, and where the wall time goes (a ``cProfile`` of
the same run, grouped by layer). Goal: >= 10x real time
with the Poisson background. Peers for scale (their papers' figures, not measured here):
ns-3 mmWave ~0.1x real time, LLMServingSim ~0.4x (serving only).

Usage: ``.venv/bin/python benchmarks/edge_cloud.py [--dur 600] [--quick] [--no-profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections import defaultdict
from typing import Any

from edgetwin.scenarios import build
from edgetwin.scenarios.load import load_scenario

GOAL_RTF = 10.0

BACKGROUNDS: dict[str, dict[str, Any]] = {
    # no other users: the LLM UEs' messages alone on both links
    "none": {
        "traffic": {"kind": "poisson", "packet_rate_hz": 1e-9, "packet_bits": 8},
        "uplink.traffic": None,
    },
    "poisson ~30 %": {},  # the scenario's own: ~30 % of the capacity on both links
    # full-buffer downlink background (the uplink keeps its Poisson background)
    "full buffer": {"traffic": {"kind": "full_buffer"}},
}

#: Where wall time goes: the first matching path fragment names the layer.
LAYERS: tuple[tuple[str, str], ...] = (
    ("sim/radio/channel", "channel (fading, path loss)"),
    ("sim/radio/uplink", "NR uplink slots"),
    ("sim/radio/", "NR downlink slots"),
    ("agents/baselines/prb", "PRB schedulers (PF)"),
    ("agents/baselines/power", "power allocation"),
    ("sim/compute/", "serving (servers, devices, offload)"),
    ("sim/net/", "messages (journeys, links, radio hops)"),
    ("sim/workload", "sessions"),
    ("simpy", "SimPy event loop"),
    ("numpy", "numpy internals"),
)


def _run(overrides: dict[str, Any], dur: float) -> tuple[float, Any]:
    config = load_scenario("edge_cloud", {"duration_s": dur, **overrides})
    sim = build(config)
    t0 = time.perf_counter()
    sim.run()
    return time.perf_counter() - t0, sim


def _by_layer(stats: pstats.Stats) -> dict[str, float]:
    """Self time (s) per layer of a profile."""
    out: dict[str, float] = defaultdict(float)
    for (path, _line, _fn), row in stats.stats.items():  # type: ignore[attr-defined]
        self_s = row[2]
        layer = next((name for frag, name in LAYERS if frag in path), "other (numpy C, pandas)")
        out[layer] += self_s
    return dict(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dur", type=float, default=600.0, help="simulated seconds per run")
    ap.add_argument("--quick", action="store_true", help="30 simulated seconds, no profile")
    ap.add_argument("--no-profile", action="store_true", help="skip the profiled runs")
    args = ap.parse_args(argv)
    dur = 30.0 if args.quick else args.dur
    print(f"edge_cloud, {dur:g} s simulated per run (policy offload/min_latency)")
    print(f"{'background':16s} {'wall s':>8s} {'x real time':>12s} {'requests':>9s} "
          f"{'req / wall s':>13s} {'DL slots':>9s} {'UL slots':>9s}")  # fmt: skip
    rtf: dict[str, float] = {}
    for label, over in BACKGROUNDS.items():
        wall, sim = _run(over, dur)
        s = sim.results().summary
        rtf[label] = dur / wall
        print(
            f"{label:16s} {wall:8.1f} {dur / wall:12.2f} {s['requests']:9d} "
            f"{s['requests'] / wall:13.1f} {sim.components['radio'].n_active_slots:9d} "
            f"{sim.components['uplink'].n_active_slots:9d}"
        )
    main_rtf = rtf["poisson ~30 %"]
    verdict = "PASS" if main_rtf >= GOAL_RTF else "MISS"
    print(f"goal >= {GOAL_RTF:g}x real time with the Poisson background: {main_rtf:.2f}x {verdict}")
    if args.quick or args.no_profile:
        return 0
    prof_dur = min(dur, 60.0)
    profiler = cProfile.Profile()
    config = load_scenario("edge_cloud", {"duration_s": prof_dur})
    sim = build(config)
    profiler.enable()
    sim.run()
    profiler.disable()
    layers = _by_layer(pstats.Stats(profiler))
    total = sum(layers.values())
    print(f"where the time goes (cProfile self time, Poisson background, {prof_dur:g} s):")
    for name, sec in sorted(layers.items(), key=lambda kv: -kv[1]):
        print(f"  {name:40s} {100 * sec / total:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
