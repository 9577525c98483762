"""Speed of ``edgetwin/AdapterCache-v0``: env steps/s and routed requests per wall second.

The serving-only setting of issue 10 (no server, no radio): N = 100 adapters, d = 16, K = 10
resident, epochs of 500 requests, paging 50 ms, λ = 1 per second, the Zipf ranking re-permuted
every 5,000 requests, router ``route/cache_aware``. Cases:

1. **standalone loop**: :func:`simulate_adapter_serving` with ``cache/polar`` (the reference:
   the same :class:`AdapterServingLoop` with no Gymnasium in the way);
2. **env, per request** (``route_block=1``, the default): ``gym.make`` (with Gymnasium's
   checker wrappers), one episode of 20 epochs, uniform random actions drawn before timing;
   ``reset()`` (which serves the cold-start epoch) is not timed. Routing and learning per
   request: the exact decisions of the standalone loop;
3. **env, batched routing** (``route_block`` = 64 and 500): ``act_batch`` on blocks, feedback
   folded in per block (``observe_rewards``): a batched bandit with delayed feedback, so *not*
   the same decisions as case 2 (the results differ; the speed is what is measured).

Every case is repeated; the best repeat is the headline (the least disturbed by other processes
on a shared machine), the median is printed too. Goal: at least 50,000 routed requests per wall
second (issue 10); each case prints PASS or MISS.

Usage::

    .venv/bin/python benchmarks/adapter_env.py
    .venv/bin/python benchmarks/adapter_env.py --quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

# One request's linear algebra (100 x 16 x 16) is far too small for BLAS threads (see
# benchmarks/adapter_router.py). Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np

import edgetwin.envs  # noqa: F401  (registers the ids)
from edgetwin.agents import make_policy
from edgetwin.sim.compute.adapter_utility import AdapterUtilityModel, simulate_adapter_serving

GOAL_PER_S = 50_000
ENV_ID = "edgetwin/AdapterCache-v0"
SETTING: dict[str, Any] = {
    "n_adapters": 100,
    "dim": 16,
    "capacity": 10,
    "epoch_requests": 500,
    "load_time_s": 0.05,
    "latency_weight_per_s": 1.0,
    "drift": "permute",
    "drift_period": 5_000,
}


def standalone(n_epochs: int) -> tuple[float, int, int]:
    """(wall seconds, epochs, requests) of the standalone loop with ``cache/polar``."""
    env = gym.make(ENV_ID, n_epochs=n_epochs, **SETTING).unwrapped
    n = (n_epochs + 1) * SETTING["epoch_requests"]
    model = AdapterUtilityModel(env.config, seed=0)  # type: ignore[attr-defined]
    cache, router = make_policy("cache/polar"), make_policy("route/cache_aware")
    t0 = time.perf_counter()
    simulate_adapter_serving(
        model,
        cache=cache,
        router=router,
        n_requests=n,
        capacity=SETTING["capacity"],
        epoch_requests=SETTING["epoch_requests"],
        load_time_s=SETTING["load_time_s"],
    )
    return time.perf_counter() - t0, n_epochs + 1, n


def env_episode(n_epochs: int, route_block: int) -> tuple[float, int, int]:
    """(wall seconds, steps, requests) of one env episode with random actions."""
    env = gym.make(ENV_ID, n_epochs=n_epochs, route_block=route_block, **SETTING)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (n_epochs, SETTING["n_adapters"])).astype(np.float32)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    wall = time.perf_counter() - t0
    return wall, n_epochs, n_epochs * SETTING["epoch_requests"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repeats")
    args = parser.parse_args()
    n_epochs, repeats = (4, 2) if args.quick else (20, 5)
    cases = [
        ("standalone loop, cache/polar (reference)", lambda: standalone(n_epochs)),
        ("env, per request (route_block=1, exact)", lambda: env_episode(n_epochs, 1)),
        ("env, batched (route_block=64)", lambda: env_episode(n_epochs, 64)),
        ("env, batched (route_block=500)", lambda: env_episode(n_epochs, 500)),
    ]
    print(
        f"{ENV_ID}: N = {SETTING['n_adapters']}, d = {SETTING['dim']}, "
        f"K = {SETTING['capacity']}, {SETTING['epoch_requests']} requests/epoch, "
        f"{n_epochs} epochs/repeat, route/cache_aware"
    )
    for name, run in cases:
        runs = [run() for _ in range(repeats)]
        walls = [r[0] for r in runs]
        _, steps, requests = runs[0]
        best, median = min(walls), statistics.median(walls)
        req_s, req_med = requests / best, requests / median
        verdict = "PASS" if req_s >= GOAL_PER_S else "MISS"
        print(
            f"  {name:42s} {steps / best:8,.1f} steps/s {req_s:10,.0f} req/s "
            f"(median {req_med:,.0f})  {verdict} (goal {GOAL_PER_S:,})"
        )


if __name__ == "__main__":
    main()
