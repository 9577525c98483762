"""Which LoRA adapters stay resident, and which serves a request: every cache × route pair.

Run: ``python examples/adapter_caching.py [--quick] [--seeds 5] [--requests 20000] [--out DIR]``
(``EDGETWIN_FAST=1``, as the test suite sets, implies ``--quick`` and writes nothing unless
``--out`` is given). The POLAR setting (Li & Li, arXiv 2604.16583): N = 50 adapters of one base
model, K = 5 resident, Zipf(1) task popularity — **stationary**, and **drifting** (the ranking
re-drawn every ``--drift-period`` requests) — and a context per request whose utility
``θ_aᵀx + ε`` depends on the adapter that serves it. Every cache policy (``cache/lru``,
``cache/lfu``, ``cache/static``, ``cache/random``, ``cache/oracle``, ``cache/polar``,
``cache/polar_plus``, and ``cache/polar_plus`` with ``max_phase_epochs=2``, the EdgeTwin
extension that caps its doubling epochs) runs with every router (``route/fixed``,
``route/linucb``, ``route/cache_aware``, ``route/greedy``, ``route/oracle``) on the **same
seeds**: the same θ, requests, contexts, utility noise and arrival times (common random
numbers), so per-seed differences are caused by the policies alone.

Measured per pair and seed (``simulate_adapter_serving``: a miss pages the routed adapter in):

* **regret** against the oracle router: per request, ``max_a (θ_aᵀx − λ·paging_a) −
  (θ_servedᵀx − λ·latency)`` with the residency of that moment (so ``route/oracle``'s is 0),
  summed over requests (log–log curves);
* **hit ratio** per cache epoch (over time) and in total; **net utility** ``utility − λ·latency``
  per request (λ = 1 per second);
* **TTFT with paging**: requests arrive as a Poisson process (``--rate``); each miss queues one
  adapter load on the server's single loader (loads serialized, as S-LoRA and vLLM do), a request
  waits until its adapter is in, then its prefill runs; **without paging** (the reference:
  every adapter resident, K = N, no load) TTFT is the prefill alone, and the same router runs
  without paging costs. The load time is that of a rank-64 q,k,v,o adapter of Qwen2.5-7B
  (exact bytes) read from a 0.5 GB/s network volume and copied over 25 GB/s PCIe; the prefill,
  that of a 512-token prompt by the roofline of an A100. Batching and prefill queueing are not
  modelled here (the serving scenarios of ``04_adapter_caching.ipynb`` do that).

Tables (``pairs``, ``epochs``, ``regret``, ``paired`` as CSV and parquet), plots and
``summary.json`` are assembled in a temporary folder and moved into ``--out`` at the end.
Paired differences (per seed, then mean ± Student-t 95 % CI) compare each cache with LRU and with
the oracle cache under the same router, and each POLAR variant with LRU, LFU and static.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgetwin.agents import make_policy
from edgetwin.scenarios.argtypes import OneLineParser, int_at_least, positive_float_up_to
from edgetwin.scenarios.run import atomic_dir, mean_ci
from edgetwin.sim.compute.adapter_utility import (
    AdapterUtilityConfig,
    AdapterUtilityModel,
    che_hit_ratio,
    simulate_adapter_serving,
)

FAST = os.environ.get("EDGETWIN_FAST") == "1"
PROG = "adapter_caching.py"
# the registry's cache policies, then POLAR with the EdgeTwin extensions (agents/baselines/cache.py)
POLAR_SERVED = "cache/polar(demand=served)"
POLAR_CAPPED = "cache/polar_plus(max_phase_epochs=2)"
POLAR_CAPPED_SERVED = "cache/polar_plus(max_phase_epochs=2,demand=served)"
CACHES: dict[str, tuple[str, dict[str, Any]]] = {
    "cache/lru": ("cache/lru", {}),
    "cache/lfu": ("cache/lfu", {}),
    "cache/static": ("cache/static", {}),
    "cache/random": ("cache/random", {}),
    "cache/oracle": ("cache/oracle", {}),
    "cache/polar": ("cache/polar", {}),
    "cache/polar_plus": ("cache/polar_plus", {}),
    POLAR_SERVED: ("cache/polar", {"demand": "served"}),
    POLAR_CAPPED: ("cache/polar_plus", {"max_phase_epochs": 2}),
    POLAR_CAPPED_SERVED: ("cache/polar_plus", {"max_phase_epochs": 2, "demand": "served"}),
}
ROUTES = ("route/fixed", "route/linucb", "route/cache_aware", "route/greedy", "route/oracle")
SCENARIOS = ("stationary", "drifting")
POLARS = ("cache/polar", "cache/polar_plus", POLAR_SERVED, POLAR_CAPPED, POLAR_CAPPED_SERVED)
RIVALS = ("cache/lru", "cache/lfu", "cache/static")
METRICS = ("net_reward", "hit_ratio", "ttft_mean_s", "regret_per_request")
N_ADAPTERS, CAPACITY, DIM, ZIPF_S, LAMBDA_PER_S = 50, 5, 8, 1.0, 1.0
DISK_BYTES_PER_S, PCIE_BYTES_PER_S, PROMPT_TOKENS = 0.5e9, 25e9, 512


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The options; ``--quick`` (or ``EDGETWIN_FAST=1``) changes the defaults only."""
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run (as the tests do)")
    parser.add_argument("--seeds", type=int_at_least(2), help="matched seeds 0..N-1 (>= 2)")
    parser.add_argument("--requests", type=int_at_least(10), help="requests per run")
    parser.add_argument("--epoch", type=int_at_least(1), help="requests per cache epoch")
    parser.add_argument("--drift-period", type=int_at_least(1), help="requests per ranking")
    parser.add_argument(
        "--rate", type=positive_float_up_to(), default=4.0, help="arrivals per second"
    )
    parser.add_argument("--out", help="result folder (default results/adapter_caching)")
    args = parser.parse_args(argv)
    quick = args.quick or FAST
    args.quick = quick
    defaults = {"seeds": 3, "requests": 4_000, "epoch": 200, "drift_period": 2_000}
    if not quick:
        defaults = {"seeds": 5, "requests": 20_000, "epoch": 500, "drift_period": 5_000}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.epoch > args.requests:
        parser.error(f"--epoch {args.epoch} is longer than the run (--requests {args.requests})")
    if args.out is None and not FAST:
        args.out = "results/adapter_caching"
    parser.check_out(args.out)  # before the work, in one line
    return args


# ----------------------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------------------
def adapter_load_s() -> float:
    """Seconds to page in a rank-64 q,k,v,o adapter of Qwen2.5-7B (disk read + PCIe copy)."""
    from edgetwin.sim.compute.adapters import AdapterSpec, load_time_s
    from edgetwin.sim.compute.importers import model_dims

    n_bytes = AdapterSpec(rank=64).n_bytes(model_dims("qwen2.5-7b"))
    return load_time_s(
        n_bytes, read_s=n_bytes / DISK_BYTES_PER_S, host_link_bytes_per_s=PCIE_BYTES_PER_S
    )


def prefill_s() -> float:
    """Seconds of a 512-token prefill of Qwen2.5-7B on an A100 (roofline)."""
    from edgetwin.sim.compute.cost_model import RooflineCostModel
    from edgetwin.sim.compute.importers import model_dims
    from edgetwin.sim.compute.table_cost import VIDUR_ROOFLINE

    cost = RooflineCostModel(model_dims("qwen2.5-7b"), *VIDUR_ROOFLINE["a100"])
    none = np.zeros(0, dtype=np.int64)
    return cost.iteration_time_s(np.array([PROMPT_TOKENS]), np.array([0]), none)


class RegretMeter:
    """A router wrapper that records, per request, the oracle router's net value.

    ``max_a θ_aᵀx − λ · paging_cost_s_a`` with the paging costs of that moment (what
    ``route/oracle`` maximizes); everything else is the wrapped router's.
    """

    def __init__(self, router: Any, theta: np.ndarray, latency_weight_per_s: float) -> None:
        self.router, self.theta, self.lam = router, theta, latency_weight_per_s
        self.best: list[float] = []

    def reset(self, *, seed: int | None = None) -> None:
        self.router.reset(seed=seed)
        self.best = []

    def act(self, obs: Mapping[str, Any]) -> int:
        value = self.theta @ obs["x"] - self.lam * obs["paging_cost_s"]
        self.best.append(float(value.max()))
        return int(self.router.act(obs))

    def __getattr__(self, name: str) -> Any:  # observe_reward, arm_estimates, ...
        return getattr(self.router, name)


def make_router(route_id: str, model: AdapterUtilityModel, seed: int) -> Any:
    """A fresh route policy (the oracle is given θ and λ), reset on the seed."""
    if route_id == "route/oracle":
        policy = make_policy(route_id, theta=model.theta, latency_weight_per_s=LAMBDA_PER_S)
    else:
        policy = make_policy(route_id)
    policy.reset(seed=seed)
    return policy


def ttft_with_paging(
    arrival_s: np.ndarray, served: np.ndarray, hit: np.ndarray, load_s: float, prefill: float
) -> np.ndarray:
    """Per request: wait for its adapter (one FIFO loader per server), then prefill.

    A miss queues a load of its adapter behind the loads already queued; a hit on an adapter
    whose load has not finished yet waits for it too.
    """
    ready = np.full(int(served.max()) + 1, -np.inf)
    loader_free = 0.0
    wait = np.empty(arrival_s.shape[0])
    rows = zip(arrival_s.tolist(), served.tolist(), hit.tolist(), strict=True)
    for j, (t, a, h) in enumerate(rows):
        if not h:
            loader_free = max(loader_free, t) + load_s
            ready[a] = loader_free
        wait[j] = max(ready[a] - t, 0.0)
    return wait + prefill  # type: ignore[no-any-return]


def run_pair(
    scenario: str,
    cache_label: str,
    route_id: str,
    seed: int,
    model: AdapterUtilityModel,
    arrival_s: np.ndarray,
    args: argparse.Namespace,
    load_s: float,
    prefill: float,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """One cache × route pair on one seed: its row, its epochs and its regret curve."""
    cache_id, kwargs = CACHES[cache_label]
    cache = make_policy(cache_id, **kwargs)
    cache.reset(seed=seed)
    meter = RegretMeter(make_router(route_id, model, seed), model.theta, LAMBDA_PER_S)
    res = simulate_adapter_serving(
        model,
        cache=cache,
        router=meter,
        n_requests=args.requests,
        capacity=CAPACITY,
        epoch_requests=args.epoch,
        load_time_s=load_s,
    )
    regret = np.cumsum(np.asarray(meter.best) - res.net_reward)
    ttft = ttft_with_paging(arrival_s, res.served, res.hit, load_s, prefill)
    warm = args.epoch  # the first epoch fills the cache
    row = {
        "scenario": scenario,
        "cache": cache_label,
        "route": route_id,
        "seed": seed,
        "requests": args.requests,
        "hit_ratio": res.hit_ratio,
        "hit_ratio_after_warmup": float(res.hit[warm:].mean()),
        "net_reward": float(res.net_reward.mean()),
        "utility": float(res.utility.mean()),
        "regret": float(regret[-1]),
        "regret_per_request": float(regret[-1] / args.requests),
        "n_loads": res.n_loads,
        "max_resident": res.max_resident,
        "ttft_mean_s": float(ttft.mean()),
        "ttft_p50_s": float(np.percentile(ttft, 50)),
        "ttft_p90_s": float(np.percentile(ttft, 90)),
        "ttft_p99_s": float(np.percentile(ttft, 99)),
    }
    n_epoch = res.epoch_hit_ratio.shape[0]
    net_by_epoch = [
        float(res.net_reward[i * args.epoch : (i + 1) * args.epoch].mean()) for i in range(n_epoch)
    ]
    key = {"scenario": scenario, "cache": cache_label, "route": route_id, "seed": seed}
    epochs = pd.DataFrame(
        {
            **key,
            "epoch": np.arange(n_epoch),
            "start": np.arange(n_epoch) * args.epoch,
            "hit_ratio": res.epoch_hit_ratio,
            "net_reward": net_by_epoch,
        }
    )
    t = np.unique(np.geomspace(1, args.requests, 60).astype(np.int64))
    curve = pd.DataFrame({**key, "t": t, "regret": regret[t - 1]})
    return row, epochs, curve


def run_reference(
    route_id: str, seed: int, model: AdapterUtilityModel, args: argparse.Namespace
) -> dict[str, float]:
    """The no-paging reference of a router: every adapter resident (K = N), no load time."""
    res = simulate_adapter_serving(
        model,
        cache=make_policy("cache/lru"),
        router=make_router(route_id, model, seed),
        n_requests=args.requests,
        capacity=model.config.n_adapters,
        epoch_requests=args.epoch,
        load_time_s=0.0,
    )
    return {"net_reward_nopaging": float(res.net_reward.mean())}


# ----------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------
def paired(
    pairs: pd.DataFrame, candidates: Sequence[str], baselines: Sequence[str]
) -> pd.DataFrame:
    """Per scenario, route and metric: candidate − baseline cache on the same seed, mean ± CI."""
    rows = []

    def pick(scenario: str, route: str, cache: str) -> pd.DataFrame:
        m = (pairs.scenario == scenario) & (pairs.route == route) & (pairs.cache == cache)
        return pairs[m].set_index("seed")

    groups = pairs[["scenario", "route"]].drop_duplicates()
    for scenario, route in zip(groups.scenario.tolist(), groups.route.tolist(), strict=True):
        for base in baselines:
            b = pick(scenario, route, base)
            for cand in candidates:
                if cand == base:
                    continue
                c = pick(scenario, route, cand)
                for metric in METRICS:
                    diff = (c[metric] - b[metric]).dropna()
                    n, mean, _, half = mean_ci(diff.to_numpy())
                    verdict = "tie"
                    if n > 1 and mean - half > 0:
                        verdict = "higher"
                    elif n > 1 and mean + half < 0:
                        verdict = "lower"
                    rows.append(
                        {
                            "scenario": scenario,
                            "route": route,
                            "cache": cand,
                            "baseline": base,
                            "metric": metric,
                            "n": n,
                            "mean_diff": mean,
                            "ci95_half_width": half,
                            "verdict": verdict,
                            "mean_baseline": float(b[metric].mean()),
                        }
                    )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------
# Plots
# ----------------------------------------------------------------------------------------
def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _short(label: str) -> str:
    short = label.removeprefix("cache/").removeprefix("route/")
    return short.replace("max_phase_epochs=2", "cap2").replace("demand=", "")


def plot_regret(curves: pd.DataFrame, path: Path) -> None:
    """Mean cumulative regret over seeds, log–log; one panel per scenario × learning router."""
    routes = [r for r in ROUTES if r != "route/oracle"]  # its regret is 0: no log scale
    fig = _figure(3.2 * len(routes), 5.6)
    axes = fig.subplots(len(SCENARIOS), len(routes), sharex=True, sharey=True, squeeze=False)
    mean = curves.groupby(["scenario", "route", "cache", "t"], sort=False)["regret"].mean()
    for i, scenario in enumerate(SCENARIOS):
        for j, route in enumerate(routes):
            ax = axes[i][j]
            for k, cache in enumerate(CACHES):
                c = mean.loc[(scenario, route, cache)]
                c = c[c > 0]
                ax.loglog(c.index, c.to_numpy(), color=f"C{k}", lw=1.1, label=_short(cache))
            ax.set_title(f"{scenario} · {_short(route)}", fontsize="small")
            ax.grid(True, which="both", alpha=0.3)
            if i == len(SCENARIOS) - 1:
                ax.set_xlabel("requests t")
            if j == 0:
                ax.set_ylabel("cumulative regret vs oracle router")
    axes[0][0].legend(fontsize="x-small")
    fig.savefig(path, dpi=110)


def plot_hit_ratio(epochs: pd.DataFrame, args: argparse.Namespace, path: Path) -> None:
    """Hit ratio per epoch (mean over seeds) for every cache; one panel per scenario × router."""
    fig = _figure(3.2 * len(ROUTES), 5.6)
    axes = fig.subplots(len(SCENARIOS), len(ROUTES), sharex=True, sharey=True, squeeze=False)
    mean = epochs.groupby(["scenario", "route", "cache", "start"], sort=False)["hit_ratio"].mean()
    for i, scenario in enumerate(SCENARIOS):
        for j, route in enumerate(ROUTES):
            ax = axes[i][j]
            for k, cache in enumerate(CACHES):
                c = mean.loc[(scenario, route, cache)]
                style = "--" if cache == "cache/oracle" else "-"
                ax.plot(c.index + args.epoch, c.to_numpy(), style, color=f"C{k}", lw=1.0,
                        label=_short(cache))  # fmt: skip
            if scenario == "drifting":
                for b in range(args.drift_period, args.requests, args.drift_period):
                    ax.axvline(b, color="grey", ls=":", lw=0.8)
            ax.set_title(f"{scenario} · {_short(route)}", fontsize="small")
            ax.grid(True, alpha=0.3)
            if i == len(SCENARIOS) - 1:
                ax.set_xlabel("requests")
            if j == 0:
                ax.set_ylabel("hit ratio per epoch")
    axes[0][0].legend(fontsize="x-small", ncol=2)
    fig.savefig(path, dpi=110)


def plot_ttft(pairs: pd.DataFrame, prefill: float, path: Path) -> None:
    """Mean TTFT with paging per cache × router (mean over seeds); the no-paging line."""
    fig = _figure(11, 4.2)
    axes = fig.subplots(1, len(SCENARIOS), sharey=True, squeeze=False)[0]
    mean = pairs.groupby(["scenario", "cache", "route"], sort=False)["ttft_mean_s"].mean()
    width = 0.8 / len(ROUTES)
    for ax, scenario in zip(axes, SCENARIOS, strict=True):
        x = np.arange(len(CACHES))
        for k, route in enumerate(ROUTES):
            v = [mean.loc[(scenario, cache, route)] * 1e3 for cache in CACHES]
            ax.bar(x + (k - 2) * width, v, width, color=f"C{k}", label=_short(route))
        ax.axhline(prefill * 1e3, color="k", ls="--", lw=1, label="no paging (prefill only)")
        ax.set_xticks(x, [_short(c) for c in CACHES], rotation=30, fontsize="small")
        ax.set_title(f"{scenario}: mean TTFT with paging", fontsize="small")
        ax.set_ylabel("TTFT [ms]")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize="x-small")
    fig.savefig(path, dpi=110)


def plot_net_utility(table: pd.DataFrame, path: Path) -> None:
    """Paired net-utility difference to LRU (same router, same seed), mean ± 95 % CI."""
    sub = table[(table.metric == "net_reward") & (table.baseline == "cache/lru")]
    fig = _figure(11, 4.2)
    axes = fig.subplots(1, len(SCENARIOS), sharey=True, squeeze=False)[0]
    caches = [c for c in CACHES if c != "cache/lru"]
    width = 0.8 / len(ROUTES)
    for ax, scenario in zip(axes, SCENARIOS, strict=True):
        s = sub[sub.scenario == scenario].set_index(["cache", "route"])
        x = np.arange(len(caches))
        for k, route in enumerate(ROUTES):
            m = [s.loc[(c, route), "mean_diff"] for c in caches]
            h = [s.loc[(c, route), "ci95_half_width"] for c in caches]
            ax.errorbar(x + (k - 2) * width, m, yerr=h, fmt="o", ms=3, color=f"C{k}",
                        capsize=2, label=_short(route))  # fmt: skip
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xticks(x, [_short(c) for c in caches], rotation=30, fontsize="small")
        ax.set_title(f"{scenario}: net utility − LRU's (paired by seed)", fontsize="small")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("Δ net utility per request")
    axes[0].legend(fontsize="x-small")
    fig.savefig(path, dpi=110)


# ----------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------
def _pm(mean: float, half: float, sign: bool = True) -> str:
    fmt = "+.4f" if sign else ".4f"
    return f"{mean:{fmt}} ± {half:.4f}" if np.isfinite(half) else f"{mean:{fmt}}"


def run(args: argparse.Namespace) -> dict[str, pd.DataFrame]:
    """Every scenario × seed × cache × route, and the no-paging references."""
    load_s, prefill = adapter_load_s(), prefill_s()
    rows, epoch_parts, curve_parts, refs = [], [], [], []
    for scenario in SCENARIOS:
        drift = "permute" if scenario == "drifting" else "none"
        cfg = AdapterUtilityConfig(
            n_adapters=N_ADAPTERS,
            dim=DIM,
            zipf_s=ZIPF_S,
            drift=drift,
            drift_period=args.drift_period,
            latency_weight_per_s=LAMBDA_PER_S,
        )
        for seed in range(args.seeds):
            model = AdapterUtilityModel(cfg, seed=seed)
            # arrival times: one stream per seed, the same for every pair (CRN)
            gen = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xA7,)))
            arrival_s = np.cumsum(gen.exponential(1.0 / args.rate, args.requests))
            for route in ROUTES:
                refs.append(
                    {"scenario": scenario, "route": route, "seed": seed}
                    | run_reference(route, seed, model, args)
                )
                for cache in CACHES:
                    row, ep, cu = run_pair(
                        scenario, cache, route, seed, model, arrival_s, args, load_s, prefill
                    )
                    rows.append(row)
                    epoch_parts.append(ep)
                    curve_parts.append(cu)
    pairs = pd.DataFrame(rows).merge(pd.DataFrame(refs), on=["scenario", "route", "seed"])
    pairs["ttft_nopaging_s"] = prefill
    pairs["load_time_s"] = load_s
    pairs["paging_cost_net_reward"] = pairs["net_reward_nopaging"] - pairs["net_reward"]
    table = pd.concat(
        [
            paired(pairs, list(CACHES), ["cache/lru", "cache/oracle"]),
            paired(pairs, list(POLARS), ["cache/lfu", "cache/static"]),
        ],
        ignore_index=True,
    )
    return {
        "pairs": pairs,
        "epochs": pd.concat(epoch_parts, ignore_index=True),
        "regret": pd.concat(curve_parts, ignore_index=True),
        "paired": table,
    }


def drift_verdict(table: pd.DataFrame) -> pd.DataFrame:
    """Under drift: each POLAR variant against LRU, LFU, static and the oracle cache."""
    sub = table[
        (table.scenario == "drifting")
        & table.cache.isin(POLARS)
        & table.baseline.isin([*RIVALS, "cache/oracle"])
        & table.metric.isin(["net_reward", "hit_ratio"])
    ]
    cells = [
        f"{_pm(m, h)} {v}"
        for m, h, v in zip(sub.mean_diff, sub.ci95_half_width, sub.verdict, strict=True)
    ]
    out = sub.assign(cell=cells).pivot_table(
        index=["route", "cache"], columns=["metric", "baseline"], values="cell", aggfunc="first"
    )
    return out.reindex([(r, c) for r in ROUTES for c in POLARS])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every pair on matched seeds, print the comparisons and write tables and plots."""
    args = parse_args(argv)
    t0 = time.perf_counter()
    tables = run(args)
    wall_s = time.perf_counter() - t0
    pairs, table = tables["pairs"], tables["paired"]

    print(
        f"N = {N_ADAPTERS} adapters, K = {CAPACITY}, Zipf({ZIPF_S:g}), {args.requests} requests, "
        f"epochs of {args.epoch}, drift period {args.drift_period}, seeds 0..{args.seeds - 1}, "
        f"load {pairs.load_time_s.iloc[0] * 1e3:.1f} ms, prefill "
        f"{pairs.ttft_nopaging_s.iloc[0] * 1e3:.1f} ms, {args.rate:g} req/s"
    )
    for metric, digits in (("net_reward", 4), ("hit_ratio", 3)):
        for scenario in SCENARIOS:
            s = pairs[pairs.scenario == scenario]
            wide = s.pivot_table(index="cache", columns="route", values=metric, aggfunc="mean")
            print(f"\n{scenario}: mean {metric} over seeds")
            print(wide.loc[list(CACHES), list(ROUTES)].round(digits).to_string())
    ttft = pairs.groupby(["scenario", "route"])[["ttft_mean_s", "ttft_p90_s"]].mean() * 1e3
    print(f"\nTTFT with paging [ms], mean over caches and seeds (no paging: "
          f"{pairs.ttft_nopaging_s.iloc[0] * 1e3:.1f} ms)")  # fmt: skip
    print(ttft.round(1).unstack("scenario").to_string())

    # the checks the test suite asserts
    oracle_regret = float(pairs.loc[pairs.route == "route/oracle", "regret"].abs().max())
    stationary = pairs[pairs.scenario == "stationary"]
    lru = stationary[(stationary.cache == "cache/lru") & (stationary.route == "route/fixed")]
    che = che_hit_ratio(
        AdapterUtilityModel(AdapterUtilityConfig(n_adapters=N_ADAPTERS, zipf_s=ZIPF_S)).rank_pmf,
        CAPACITY,
    )
    lru_hit = float(lru.hit_ratio_after_warmup.mean())
    print(f"\nlargest |regret| of route/oracle: {oracle_regret:.2e} (0 by construction)")
    print(f"stationary LRU + route/fixed hit ratio after warm-up {lru_hit:.4f}, Che {che:.4f}")
    print("\ndrifting popularity: POLAR variants − rival cache, same router and seed "
          "(mean ± 95 % CI; higher/lower: the CI excludes 0)")  # fmt: skip
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(drift_verdict(table).to_string())
    print(f"\n{len(pairs)} runs in {wall_s:.1f} s wall")

    summary = {
        "config": {
            "n_adapters": N_ADAPTERS,
            "capacity": CAPACITY,
            "dim": DIM,
            "zipf_s": ZIPF_S,
            "latency_weight_per_s": LAMBDA_PER_S,
            "requests": args.requests,
            "epoch_requests": args.epoch,
            "drift": "permute",
            "drift_period": args.drift_period,
            "seeds": args.seeds,
            "arrival_rate_per_s": args.rate,
            "load_time_s": float(pairs.load_time_s.iloc[0]),
            "prefill_s": float(pairs.ttft_nopaging_s.iloc[0]),
            "quick": args.quick,
        },
        "caches": list(CACHES),
        "routes": list(ROUTES),
        "wall_s": wall_s,
        "oracle_router_max_abs_regret": oracle_regret,
        "lru_stationary_hit_ratio": lru_hit,
        "che_hit_ratio": che,
    }
    if args.out is not None:
        with atomic_dir(args.out, on_replaced=print) as tmp:
            for name, df in tables.items():
                df.to_csv(tmp / f"{name}.csv", index=False)
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            plot_regret(tables["regret"], tmp / "regret_loglog.png")
            plot_hit_ratio(tables["epochs"], args, tmp / "hit_ratio_over_time.png")
            plot_ttft(pairs, float(pairs.ttft_nopaging_s.iloc[0]), tmp / "ttft_paging.png")
            plot_net_utility(table, tmp / "net_utility_paired_ci.png")
            (tmp / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(f"tables (csv, parquet), plots and summary.json in {args.out}/")
    return {**tables, "summary": summary}


if __name__ == "__main__":
    main()
