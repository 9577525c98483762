"""Speculative-decoding rounds per wall second with the NR radio in the loop (issue 11, part 6).

One n78 TDD cell (``specdec_jetson``): 20 drafting devices (Jetson Orin Nano Super, SmolLM2-1.7B)
and 10 background UEs with the scenario's Poisson traffic on both links; every round crosses the
NR uplink, the WAN, the cloud's verify batch and the NR downlink. Cases:

* ``busy``: every device always has a request (think time and session gap 0.1 s): the most
  rounds per simulated second the cell gives (the goal's case);
* ``shipped sessions``: the scenario's own chat sessions (5 s think time, 5 s gaps);
* ``busy, no background``: the busy case without the background users' traffic;
* ``busy, ideal radio``: the busy case with the radio hop made instantaneous (no NR slot
  loops: the ceiling of the round machinery itself, for scale).

For each: wall time, rounds, rounds per wall second, simulated seconds per wall second. Then a
``cProfile`` of the busy case grouped by layer (where the time goes). Goal: **>= 2,000 rounds
per wall second** for the busy case with the radio and the background; the verdict line says
``met`` or ``MISSED``.

Usage: ``.venv/bin/python benchmarks/specdec.py [--dur 20] [--quick] [--no-profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections import defaultdict
from typing import Any

from edgetwin.scenarios import build
from edgetwin.scenarios.builder import policy_plan
from edgetwin.scenarios.load import load_scenario

GOAL_ROUNDS_PER_S = 2000.0
BUSY = {"workload.sessions.think_time_mean_s": 0.1, "workload.sessions.session_gap_mean_s": 0.1}
QUIET = {"kind": "poisson", "packet_rate_hz": 1e-9, "packet_bits": 8}
CASES: dict[str, dict[str, Any]] = {
    "busy": BUSY,
    "shipped sessions": {},
    "busy, no background": {**BUSY, "traffic": QUIET, "uplink.traffic": QUIET},
    "busy, ideal radio": {**BUSY, "network.radio": "ideal", "traffic": QUIET,
                          "uplink.traffic": QUIET},
}  # fmt: skip

#: Where wall time goes: the first matching path fragment names the layer.
LAYERS: tuple[tuple[str, str], ...] = (
    ("sim/radio/channel", "channel (fading, path loss)"),
    ("sim/radio/uplink", "NR uplink slots"),
    ("sim/radio/", "NR downlink slots"),
    ("agents/baselines/prb", "PRB schedulers (PF)"),
    ("agents/baselines/draft", "draft policy"),
    ("sim/compute/acceptance", "acceptance draws"),
    ("sim/compute/server", "cloud server (verify batches)"),
    ("sim/compute/", "cost models, devices"),
    ("sim/net/spec_journey", "speculative rounds (journeys)"),
    ("sim/net/", "messages (links, radio hops)"),
    ("sim/workload", "sessions"),
    ("simpy", "SimPy event loop"),
    ("numpy", "numpy internals"),
)


def _build(overrides: dict[str, Any], dur: float, policy: str) -> Any:
    config = load_scenario("specdec_jetson", {"duration_s": dur, **overrides})
    return build(config, {"draft": policy}, seed=0)


def _by_layer(stats: pstats.Stats) -> dict[str, float]:
    """Self time (s) per layer of a profile."""
    out: dict[str, float] = defaultdict(float)
    for (path, _line, _fn), row in stats.stats.items():  # type: ignore[attr-defined]
        layer = next((name for frag, name in LAYERS if frag in path), "other (numpy C, pandas)")
        out[layer] += row[2]
    return dict(out)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 36_000:
        raise argparse.ArgumentTypeError(f"must be in (0, 36000] seconds, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dur", type=_positive, default=20.0, help="simulated seconds per run")
    ap.add_argument("--quick", action="store_true", help="5 simulated seconds, no profile")
    ap.add_argument("--no-profile", action="store_true", help="skip the profiled run")
    ap.add_argument("--policy", default="flexspec", help="draft policy (default flexspec)")
    args = ap.parse_args(argv)
    dur = 5.0 if args.quick else args.dur
    try:  # a bad policy fails here in one line, before any run
        policy_plan(load_scenario("specdec_jetson"), {"draft": args.policy})
    except ValueError as exc:
        ap.error(f"--policy: {exc}")
    print(f"specdec_jetson, {dur:g} s simulated per run, draft/{args.policy}, seed 0")
    print(f"{'case':22s} {'wall s':>8s} {'rounds':>8s} {'rounds / wall s':>16s} "
          f"{'x real time':>12s} {'k mean':>7s}")  # fmt: skip
    rates: dict[str, float] = {}
    for label, over in CASES.items():
        sim = _build(over, dur, args.policy)
        t0 = time.perf_counter()
        sim.run()
        wall = time.perf_counter() - t0
        s = sim.results().summary
        rounds = float(s.get("spec_rounds", 0.0))
        rates[label] = rounds / wall
        print(f"{label:22s} {wall:8.2f} {rounds:8.0f} {rounds / wall:16.0f} {dur / wall:12.2f} "
              f"{s.get('spec_k_mean', 0.0):7.2f}")  # fmt: skip
    main_rate = rates["busy"]
    verdict = "met" if main_rate >= GOAL_ROUNDS_PER_S else "MISSED"
    print(f"goal >= {GOAL_ROUNDS_PER_S:,.0f} rounds per wall second (20 drafting devices, NR "
          f"radio, background traffic): {main_rate:,.0f} -> {verdict}")  # fmt: skip
    if args.quick or args.no_profile:
        return 0
    prof_dur = min(dur, 10.0)
    sim = _build(BUSY, prof_dur, args.policy)
    profiler = cProfile.Profile()
    profiler.enable()
    sim.run()
    profiler.disable()
    layers = _by_layer(pstats.Stats(profiler))
    total = sum(layers.values())
    print(f"where the time goes (cProfile self time, busy case, {prof_dur:g} s):")
    for name, sec in sorted(layers.items(), key=lambda kv: -kv[1]):
        print(f"  {name:40s} {100 * sec / total:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
