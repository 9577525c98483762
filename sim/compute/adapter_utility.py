"""Utility of LoRA adapters over request contexts, adapter popularity, and a standalone loop.

The POLAR setting (Li & Li, arXiv 2604.16583): an edge server holds ``N`` adapters of one base
model, ``K`` of them resident. Each request carries a *task* (which names its own adapter) and a
context ``x ∈ R^d`` (unit norm); serving it with adapter ``a`` yields the utility

.. math::  r = θ_aᵀ x + ε,  ε ~ N(0, σ²),

and the net reward ``r − λ · latency_s`` (the latency here: the paging of a non-resident
adapter). This module draws the hidden ``θ_a`` from a seeded generator, the task popularity
(stationary Zipf, or drifting), the contexts and the noise — all from streams of their own, so
that two policies run on the same seed see the same requests and the same noise (common random
numbers: no draw depends on a policy's choice).

Contexts: task ``t`` has the centroid ``c_t = θ_t / ‖θ_t‖`` and ``x = normalize(c_t +
spread · g / √d)``, ``g ~ N(0, I_d)``: a request is usually served best by its own adapter, but
not always (``context_spread`` sets how often it is not; ``0``: always).

Popularity: the rank of a request's task is Zipf(s) over ``N`` ranks, ``p_r ∝ r^{-s}``; the
ranking (which task holds which rank) is

* ``none``: one seeded permutation for the whole run;
* ``rotate``: shifted by ``rotate_step`` positions every ``drift_period`` requests;
* ``permute``: redrawn (a fresh seeded permutation) every ``drift_period`` requests;
* ``smooth``: within the ``k``-th period a mixture ``(1 − w) p_k + w p_{k+1}`` of the ``k``-th
  and the next permutation, ``w`` growing linearly from 0 to 1 over the period.

:func:`simulate_adapter_serving` runs a ``cache`` and a ``route`` policy (the decision families of
``agents/baselines/cache.py`` and ``route.py``; their observations are documented there and
built here) over a request stream, with no server: a hit costs nothing, a miss pages the routed
adapter in for ``load_time_s``. :func:`resident_from_scores` is the one rule turning a cache
action (a score per adapter) into the resident set; the server and the environment use it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.rng import RandomStreams, stream_key
from edgetwin.sim.types import BoolArray, FloatArray, IntArray

if TYPE_CHECKING:  # sim never imports agents at runtime (layering, ARCHITECTURE.md §4.1)
    from edgetwin.agents.protocol import Policy

__all__ = [
    "AdapterLoopResult",
    "AdapterRequestSource",
    "AdapterRequests",
    "AdapterUtilityConfig",
    "AdapterUtilityModel",
    "che_hit_ratio",
    "resident_from_scores",
    "simulate_adapter_serving",
    "zipf_pmf",
]

Drift = Literal["none", "rotate", "permute", "smooth"]


class AdapterUtilityConfig(StrictConfig):
    """The utility and popularity model of a library of adapters.

    Attributes:
        n_adapters: Adapters (and tasks) N.
        dim: Context dimension d.
        noise_std: σ of the utility noise ε.
        context_spread: Spread of a task's contexts around its centroid (0: all on it).
        zipf_s: Zipf exponent s of the popularity over ranks (0: uniform).
        drift: How the ranking moves: ``none``, ``rotate``, ``permute`` or ``smooth``.
        drift_period: Requests between ranking changes (the period D of the drift).
        rotate_step: Positions the ranking shifts per period (``rotate`` only).
        latency_weight_per_s: λ of the net reward ``utility − λ · latency_s``, utility per second.
    """

    n_adapters: int = Field(20, ge=1, le=100_000)
    dim: int = Field(8, ge=1, le=4096)
    noise_std: float = Field(0.1, ge=0.0, le=1e3)
    context_spread: float = Field(1.0, ge=0.0, le=1e3)
    zipf_s: float = Field(1.0, ge=0.0, le=10.0)
    drift: Drift = "none"
    drift_period: int = Field(10_000, ge=1, le=10**12)
    rotate_step: int = Field(1, ge=0, le=100_000)
    latency_weight_per_s: float = Field(1.0, ge=0.0, le=1e6)


def zipf_pmf(n: int, s: float) -> FloatArray:
    """Zipf probabilities over ranks 1..n, ``p_r = r^{-s} / H_{n,s}``, shape [n]."""
    p = np.arange(1, n + 1, dtype=np.float64) ** -float(s)
    return p / p.sum()  # type: ignore[no-any-return]


def che_hit_ratio(p: FloatArray, capacity: int) -> float:
    """LRU hit ratio under the independent reference model by Che's approximation.

    Reference: Che, Tung, Wang, IEEE JSAC 20(7), 2002 — the characteristic time ``T_C`` solves
    ``Σ_i (1 − e^{−p_i T_C}) = K``; the hit ratio is ``Σ_i p_i (1 − e^{−p_i T_C})``.

    Args:
        p: Request probability per object, shape [N], summing to 1.
        capacity: Cache size K (objects), ``0 < K < N``.
    """
    p = np.asarray(p, dtype=np.float64)
    if not 0 < capacity < p.size:
        raise ValueError(f"capacity must be in (0, {p.size}), got {capacity}")
    lo, hi = 0.0, 1.0
    while np.sum(1.0 - np.exp(-p * hi)) < capacity:
        hi *= 2.0
    for _ in range(200):  # bisection: the left side is increasing in T_C
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.sum(1.0 - np.exp(-p * mid)) < capacity else (lo, mid)
    t_c = 0.5 * (lo + hi)
    return float(np.sum(p * (1.0 - np.exp(-p * t_c))))


def resident_from_scores(scores: FloatArray, capacity: int) -> BoolArray:
    """The resident set a ``cache`` action asks for: the top-``capacity`` adapters by score.

    Adapters scored ``-inf`` are never made resident (so a policy can leave slots empty); among
    the rest the ``min(capacity, #finite)`` highest scores win, ties to the lower index.

    Args:
        scores: One score per adapter, shape [N] (higher: keep).
        capacity: Slots K.

    Returns:
        Residency mask, bool [N], with at most ``capacity`` True.
    """
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[:capacity]
    out = np.zeros(scores.shape[0], dtype=bool)
    out[order[scores[order] > -np.inf]] = True
    return out


@dataclass(frozen=True)
class AdapterRequests:
    """A block of consecutive requests.

    Attributes:
        index: Sequence numbers of the requests, int64 [n].
        task: Task of each request (= the index of its own adapter), int64 [n].
        x: Contexts, unit norm, float64 [n, d].
        noise: Utility noise ε of each request, float64 [n] (the same whatever adapter serves).
    """

    index: IntArray
    task: IntArray
    x: FloatArray
    noise: FloatArray


class AdapterUtilityModel:
    """Hidden adapter parameters θ and the popularity process of one seeded scenario.

    Args:
        config: The model's parameters.
        seed: Scenario seed (θ, rankings and the requests of :meth:`source` derive from it).
    """

    def __init__(self, config: AdapterUtilityConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = int(seed)
        streams = RandomStreams(self.seed)
        n, d = config.n_adapters, config.dim
        # [N, d]: ‖θ_a‖ ≈ 1, so utilities θᵀx of unit contexts are O(1)
        self.theta: FloatArray = streams.get("adapter_theta").standard_normal((n, d)) / math.sqrt(d)
        norms = np.linalg.norm(self.theta, axis=1, keepdims=True)
        self.centroids: FloatArray = self.theta / np.maximum(norms, 1e-12)
        self.rank_pmf: FloatArray = zipf_pmf(n, config.zipf_s)
        self.rank_cdf: FloatArray = np.cumsum(self.rank_pmf)
        self.rank_cdf[-1] = 1.0
        self._order0: IntArray = streams.get("adapter_rank").permutation(n).astype(np.int64)
        self._orders: dict[int, IntArray] = {0: self._order0}

    # --- popularity ----------------------------------------------------------------------------
    def order(self, period: int) -> IntArray:
        """Ranking of the ``period``-th drift period: ``order[r]`` is the task of rank r, [N]."""
        cfg = self.config
        if cfg.drift == "none" or period == 0:
            return self._order0
        if cfg.drift == "rotate":
            return np.roll(self._order0, period * cfg.rotate_step)
        got = self._orders.get(period)
        if got is None:  # random access: period k's permutation depends on (seed, k) only
            seq = np.random.SeedSequence(self.seed, spawn_key=(stream_key("adapter_drift"), period))
            got = np.random.Generator(np.random.PCG64(seq)).permutation(cfg.n_adapters)
            got = got.astype(np.int64)
            self._orders[period] = got
        return got

    def _pmf_of(self, period: int) -> FloatArray:
        p = np.empty(self.config.n_adapters)
        p[self.order(period)] = self.rank_pmf
        return p

    def popularity(self, index: int) -> FloatArray:
        """Task probabilities of request ``index``, shape [N]."""
        return self.mean_popularity(index, index + 1)

    def mean_popularity(self, start: int, stop: int) -> FloatArray:
        """Task probabilities averaged over requests ``start .. stop − 1``, shape [N]."""
        cfg = self.config
        if stop <= start:
            raise ValueError(f"mean_popularity needs start < stop, got {start}, {stop}")
        if cfg.drift == "none":
            return self._pmf_of(0)
        period_len = cfg.drift_period
        out = np.zeros(cfg.n_adapters)
        for k in range(start // period_len, (stop - 1) // period_len + 1):
            a, b = max(start, k * period_len), min(stop, (k + 1) * period_len)
            if cfg.drift == "smooth":
                w = ((a + b - 1) / 2.0 - k * period_len) / period_len  # mean w over [a, b)
                out += (b - a) * ((1.0 - w) * self._pmf_of(k) + w * self._pmf_of(k + 1))
            else:
                out += (b - a) * self._pmf_of(k)
        return out / (stop - start)  # type: ignore[no-any-return]

    # --- utility -------------------------------------------------------------------------------
    def utility(self, arm: IntArray | int, x: FloatArray) -> FloatArray:
        """Expected utility ``θ_armᵀ x`` (no noise): arms [n] (or one), contexts [n, d] → [n]."""
        d = self.config.dim
        theta = self.theta[np.atleast_1d(arm)]  # [n, d]
        return np.einsum("nd,nd->n", theta, np.reshape(x, (-1, d)))  # type: ignore[no-any-return]

    def true_utility(self, x: FloatArray) -> FloatArray:
        """Expected utility of every adapter: contexts [n, d] → [n, N]."""
        return x @ self.theta.T  # type: ignore[no-any-return]

    def net_reward(self, utility: FloatArray, latency_s: FloatArray) -> FloatArray:
        """``utility − λ · latency_s`` (element-wise)."""
        return utility - self.config.latency_weight_per_s * latency_s  # type: ignore[no-any-return]

    def source(self) -> AdapterRequestSource:
        """A request source positioned at the first request of this scenario."""
        return AdapterRequestSource(self)


class AdapterRequestSource:
    """The scenario's requests in order; the same for every policy (common random numbers).

    Draws come from three named streams (task uniforms, context normals, noise normals), so the
    sequence is the same whatever the block sizes asked for: ``take(3); take(5)`` equals
    ``take(8)``.

    Args:
        model: The scenario.
    """

    def __init__(self, model: AdapterUtilityModel) -> None:
        self.model = model
        self.reset()

    def reset(self) -> None:
        """Rewind to the first request."""
        streams = RandomStreams(self.model.seed)
        self._task_rng = streams.get("adapter_task")
        self._context_rng = streams.get("adapter_context")
        self._noise_rng = streams.get("adapter_noise")
        self.position = 0

    def take(self, n: int) -> AdapterRequests:
        """The next ``n`` requests."""
        model, cfg = self.model, self.model.config
        d = cfg.dim
        index = np.arange(self.position, self.position + n, dtype=np.int64)
        self.position += n
        u = self._task_rng.random((n, 2))
        g = self._context_rng.standard_normal((n, d))
        noise = cfg.noise_std * self._noise_rng.standard_normal(n)
        rank = np.minimum(
            np.searchsorted(model.rank_cdf, u[:, 0], side="right"), cfg.n_adapters - 1
        )
        period = index // cfg.drift_period if cfg.drift != "none" else np.zeros(n, dtype=np.int64)
        if cfg.drift == "smooth":  # the next period's ranking with probability w
            w = (index - period * cfg.drift_period) / cfg.drift_period
            period = period + (u[:, 1] < w)
        task = np.empty(n, dtype=np.int64)
        for k in np.unique(period):
            sel = period == k
            task[sel] = model.order(int(k))[rank[sel]]
        # [n, d]: centroid of the task plus isotropic spread, projected on the unit sphere
        x = model.centroids[task] + cfg.context_spread * g / math.sqrt(d)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return AdapterRequests(index=index, task=task, x=x, noise=noise)


@dataclass
class AdapterLoopResult:
    """What :func:`simulate_adapter_serving` measured, per request and in total.

    Attributes:
        task: Task of each request, int64 [n].
        served: Adapter that served each request, int64 [n] (exactly one per request).
        hit: Whether it was resident when the request came, bool [n].
        utility: Expected utility ``θ_servedᵀ x`` (no noise), float64 [n].
        best_utility: ``max_a θ_aᵀ x`` (the oracle's, ignoring paging), float64 [n].
        latency_s: Paging latency of each request (load time on a miss, else 0), float64 [n].
        net_reward: ``utility − λ · latency_s``, float64 [n].
        epoch_hit_ratio: Hit ratio of each epoch, float64 [n_epoch].
        max_resident: Most adapters resident at once.
        n_loads: Adapters made resident (on misses and at epoch boundaries).
    """

    task: IntArray
    served: IntArray
    hit: BoolArray
    utility: FloatArray
    best_utility: FloatArray
    latency_s: FloatArray
    net_reward: FloatArray
    epoch_hit_ratio: FloatArray
    max_resident: int
    n_loads: int

    @property
    def hit_ratio(self) -> float:
        """Fraction of requests served by a resident adapter."""
        return float(self.hit.mean())

    @property
    def regret(self) -> FloatArray:
        """Cumulative utility regret against the oracle router, float64 [n]."""
        return np.cumsum(self.best_utility - self.utility)  # type: ignore[no-any-return]


def simulate_adapter_serving(
    model: AdapterUtilityModel,
    *,
    cache: Policy[Any, Any],
    router: Policy[Any, Any] | None = None,
    n_requests: int,
    capacity: int,
    epoch_requests: int = 1000,
    load_time_s: float | FloatArray = 0.05,
    block: int = 4096,
) -> AdapterLoopResult:
    """Run a cache policy and a router over the model's requests, with no server.

    Per request: the router picks the adapter (``None``: the request's own adapter); a resident
    adapter serves at no cost (a hit), a non-resident one is paged in for ``load_time_s`` and
    the cache is asked (``requested`` = that adapter); the router then sees the utility through
    ``observe_reward(arm, x, utility)`` if it has that method (the known paging cost is not part
    of what it learns). Every ``epoch_requests`` requests the cache is asked with
    ``requested = -1`` (and once at the start). The cache's scores become the resident set by
    :func:`resident_from_scores`. Loads at epoch boundaries (prefetches) are counted in
    ``n_loads`` but charge no request: they happen off the request path.

    Args:
        model: The scenario (θ, popularity); requests come from a fresh ``model.source()``.
        cache: A ``cache`` policy (see ``agents/baselines/cache.py`` for its observation).
        router: A ``route`` policy, or ``None`` for each request's own adapter.
        n_requests: Requests to simulate.
        capacity: Resident slots K.
        epoch_requests: Requests per cache epoch.
        load_time_s: Paging time per adapter, seconds (scalar or [N]).
        block: Requests drawn at a time.
    """
    cfg = model.config
    n, lam = cfg.n_adapters, cfg.latency_weight_per_s
    if not 0 < capacity <= n:
        raise ValueError(f"capacity must be in [1, {n}], got {capacity}")
    load_s = np.broadcast_to(np.asarray(load_time_s, dtype=np.float64), (n,)).copy()
    estimates = getattr(router, "arm_estimates", None)
    observe = getattr(router, "observe_reward", None)
    source = model.source()

    # --- state and the live observations (arrays shared with the policies for reading) --------
    resident = np.zeros(n, dtype=bool)
    paging_cost_s = load_s.copy()
    counts = np.zeros(n, dtype=np.int64)
    total_counts = np.zeros(n, dtype=np.int64)
    hits = np.zeros(n, dtype=np.int64)
    misses = np.zeros(n, dtype=np.int64)
    last_used = np.full(n, -np.inf)
    ctx_sum = np.zeros((n, cfg.dim))
    cobs: dict[str, Any] = {
        "resident": resident,
        "capacity": capacity,
        "counts": counts,
        "total_counts": total_counts,
        "hits": hits,
        "misses": misses,
        "last_used": last_used,
        "est_utility": np.zeros(n),
        "uncertainty": np.zeros(n),
        "load_time_s": load_s,
        "requested": -1,
        "epoch": 0,
        "next_popularity": model.mean_popularity(0, epoch_requests),
    }
    robs: dict[str, Any] = {"x": None, "resident": resident, "paging_cost_s": paging_cost_s}
    n_loads = max_resident = 0

    def apply(scores: Any) -> None:
        nonlocal n_loads, max_resident
        new = resident_from_scores(np.asarray(scores, dtype=np.float64), capacity)
        n_loads += int(np.count_nonzero(new & ~resident))
        resident[:] = new
        np.copyto(paging_cost_s, np.where(new, 0.0, load_s))
        max_resident = max(max_resident, int(np.count_nonzero(new)))

    apply(cache.act(cobs))

    served = np.empty(n_requests, dtype=np.int64)
    task_all = np.empty(n_requests, dtype=np.int64)
    hit_all = np.empty(n_requests, dtype=bool)
    utility = np.empty(n_requests)
    best = np.empty(n_requests)
    epoch_hits: list[float] = []
    epoch_hit_count = epoch_count = 0
    i = 0
    while i < n_requests:
        reqs = source.take(min(block, n_requests - i))
        tasks = reqs.task.tolist()
        xs, noise = reqs.x, reqs.noise
        for j, t in enumerate(tasks):
            x = xs[j]
            if router is None:
                arm = t
            else:
                robs["x"] = x
                robs["task"] = t
                arm = int(router.act(robs))
                if not 0 <= arm < n:
                    raise ValueError(f"route policy returned adapter {arm}; expected 0..{n - 1}")
            counts[t] += 1
            total_counts[t] += 1
            if estimates is not None:
                ctx_sum[t] += x
            hit = bool(resident[arm])
            last_used[arm] = i + j
            if hit:
                hits[arm] += 1
            else:
                misses[arm] += 1
                cobs["requested"] = arm
                apply(cache.act(cobs))
            served[i + j] = arm
            hit_all[i + j] = hit
            epoch_hit_count += hit
            epoch_count += 1
            if observe is not None:
                observe(arm, x, float(model.theta[arm] @ x) + float(noise[j]))
            if (i + j + 1) % epoch_requests == 0:
                # --- epoch boundary: statistics of the epoch that ends, then the cache decides
                epoch_hits.append(epoch_hit_count / epoch_count)
                epoch_hit_count = epoch_count = 0
                if estimates is not None:
                    seen = counts > 0
                    x_ref = np.where(
                        seen[:, None],
                        ctx_sum / np.maximum(counts, 1)[:, None],
                        ctx_sum.sum(axis=0) / max(int(counts.sum()), 1),
                    )
                    est, width = estimates(x_ref)
                    cobs["est_utility"], cobs["uncertainty"] = est, width
                start = i + j + 1
                cobs["requested"] = -1
                cobs["epoch"] += 1
                cobs["next_popularity"] = model.mean_popularity(start, start + epoch_requests)
                apply(cache.act(cobs))
                counts[:] = 0
                hits[:] = 0
                misses[:] = 0
                ctx_sum[:] = 0.0
        task_all[i : i + len(tasks)] = reqs.task
        u_all = model.true_utility(xs)  # [block, N]
        utility[i : i + len(tasks)] = u_all[np.arange(len(tasks)), served[i : i + len(tasks)]]
        best[i : i + len(tasks)] = u_all.max(axis=1)
        i += len(tasks)
    if epoch_count:
        epoch_hits.append(epoch_hit_count / epoch_count)
    latency = np.where(hit_all, 0.0, load_s[served])
    return AdapterLoopResult(
        task=task_all,
        served=served,
        hit=hit_all,
        utility=utility,
        best_utility=best,
        latency_s=latency,
        net_reward=utility - lam * latency,
        epoch_hit_ratio=np.asarray(epoch_hits),
        max_resident=max_resident,
        n_loads=n_loads,
    )
