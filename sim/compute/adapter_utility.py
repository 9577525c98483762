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

:class:`AdapterServingLoop` serves one cache epoch at a time and
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
    "AdapterEpochResult",
    "AdapterLoopResult",
    "AdapterRequestSource",
    "AdapterRequests",
    "AdapterServingLoop",
    "AdapterUtilityConfig",
    "AdapterUtilityModel",
    "che_hit_ratio",
    "epoch_estimates",
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

    def observed_utility(self, arm: int, x: FloatArray, noise: float) -> float:
        """The utility a router observes serving context ``x`` [d] with ``arm``: ``θ_armᵀ x + ε``.

        The feedback of the route family's ``observe_reward(arm, x, utility)`` in the
        standalone loop and in the server (``adapter_route.py``) alike.
        """
        return float(self.theta[arm] @ x) + float(noise)

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


@dataclass(kw_only=True)
class ServedRequests:
    """Requests served by the standalone loop, in order (one row per request).

    Attributes:
        task: Task of each request, int64 [n].
        served: Adapter that served each request, int64 [n] (exactly one per request).
        hit: Whether it was resident when the request came, bool [n].
        utility: Expected utility ``θ_servedᵀ x`` (no noise), float64 [n].
        best_utility: ``max_a θ_aᵀ x`` (the oracle's, ignoring paging), float64 [n].
        latency_s: Paging latency of each request (load time on a miss, else 0), float64 [n].
        net_reward: ``utility − λ · latency_s``, float64 [n].
        n_loads: Adapters made resident (on misses and at epoch boundaries).
    """

    task: IntArray
    served: IntArray
    hit: BoolArray
    utility: FloatArray
    best_utility: FloatArray
    latency_s: FloatArray
    net_reward: FloatArray
    n_loads: int

    @property
    def hit_ratio(self) -> float:
        """Fraction of the requests served by a resident adapter."""
        return float(self.hit.mean())


@dataclass(kw_only=True)
class AdapterLoopResult(ServedRequests):
    """What :func:`simulate_adapter_serving` measured: every request, and in total.

    Attributes:
        epoch_hit_ratio: Hit ratio of each epoch, float64 [n_epoch].
        max_resident: Most adapters resident at once.
    """

    epoch_hit_ratio: FloatArray
    max_resident: int

    @property
    def regret(self) -> FloatArray:
        """Cumulative utility regret against the oracle router, float64 [n]."""
        return np.cumsum(self.best_utility - self.utility)  # type: ignore[no-any-return]


@dataclass(kw_only=True)
class AdapterEpochResult(ServedRequests):
    """One epoch of :class:`AdapterServingLoop` (``n_loads``: its boundary decision included).

    Attributes:
        start: Index of the epoch's first request.
        complete: Whether the epoch ran its full ``epoch_requests`` (then the cache observation
            was advanced to the boundary: ``epoch`` + 1, the router's estimates, the next
            popularity).
    """

    start: int
    complete: bool

    @property
    def mean_net_reward(self) -> float:
        """The epoch's net utility: mean of ``utility − λ · latency_s`` over its requests.

        0 for an epoch without requests (a server epoch in which none completed).
        """
        return float(self.net_reward.mean()) if self.net_reward.size else 0.0


class AdapterServingLoop:
    """The standalone serving loop, one cache epoch at a time (no server).

    :meth:`step` takes the epoch's cache action (a score per adapter, made resident by
    :func:`resident_from_scores`) and serves the next ``epoch_requests`` requests: per request
    the router picks the adapter (``None``: the request's own adapter); a resident adapter
    serves at no cost (a hit), a non-resident one is paged in for ``load_time_s`` and, inside
    the epoch, ``on_miss`` is asked (``requested`` = that adapter; ``None``: the paged adapter
    takes a free slot if there is one, else the set is kept — ``keep_resident`` of
    ``agents/baselines/cache.py``); the router then sees the utility through
    ``observe_reward(arm, x, utility)`` if it has that method (the known paging cost is not part
    of what it learns). After a complete epoch :attr:`cache_obs` holds the cache observation of
    the boundary (``requested = -1``; the epoch's counts, the router's estimates on the
    epoch's mean contexts, the next epoch's popularity): what the next :meth:`step`'s scores are
    computed from. Loads at epoch boundaries (prefetches) are counted in ``n_loads`` but charge
    no request: they happen off the request path.

    :func:`simulate_adapter_serving` and the ``edgetwin/AdapterCache-v0`` environment both run
    this loop (one code path).

    Args:
        model: The scenario (θ, popularity); requests come from ``model.source()``.
        router: A ``route`` policy, or ``None`` for each request's own adapter.
        capacity: Resident slots K.
        epoch_requests: Requests per cache epoch.
        load_time_s: Paging time per adapter, seconds (scalar or [N]).
        on_miss: The ``cache`` policy asked on a miss inside an epoch, or ``None`` (see above).
        route_block: Requests routed at a time. 1 (default): ``act`` and ``observe_reward``
            per request. B > 1, with a router that has ``act_batch`` and ``observe_rewards``:
            each block of B requests is routed with the statistics and the paging costs frozen
            at its start and its feedback folded in at its end (a batched bandit with delayed
            feedback: faster, not the same decisions); hits, misses and ``on_miss`` stay per
            request.
        block: Requests drawn at a time (draws do not depend on it).
    """

    def __init__(
        self,
        model: AdapterUtilityModel,
        *,
        router: Policy[Any, Any] | None = None,
        capacity: int,
        epoch_requests: int = 1000,
        load_time_s: float | FloatArray = 0.05,
        on_miss: Policy[Any, Any] | None = None,
        route_block: int = 1,
        block: int = 4096,
    ) -> None:
        n = model.config.n_adapters
        if not 0 < capacity <= n:
            raise ValueError(f"capacity must be in [1, {n}], got {capacity}")
        if epoch_requests < 1 or route_block < 1 or block < 1:
            raise ValueError(
                f"epoch_requests, route_block and block must be >= 1, got {epoch_requests}, "
                f"{route_block}, {block}"
            )
        self.model, self.router, self.on_miss = model, router, on_miss
        self.capacity, self.epoch_requests, self.block = capacity, epoch_requests, block
        self.load_s: FloatArray = np.broadcast_to(
            np.asarray(load_time_s, dtype=np.float64), (n,)
        ).copy()
        self._estimates = getattr(router, "arm_estimates", None)
        self._observe = getattr(router, "observe_reward", None)
        batched = route_block > 1 and all(
            hasattr(router, m) for m in ("act_batch", "observe_rewards")
        )
        self.route_block = route_block if batched else 1
        self.reset()

    def reset(self) -> None:
        """Rewind to the first request, with nothing resident and every statistic cleared.

        The policies are not reset: that is the caller's (``policy.reset(seed=...)``).
        """
        model, n = self.model, self.model.config.n_adapters
        self.source = model.source()
        self.position = 0
        self.n_loads = self.max_resident = 0
        # state and the live observations (arrays shared with the policies for reading)
        self.resident = np.zeros(n, dtype=bool)
        self.paging_cost_s = self.load_s.copy()
        self.counts = np.zeros(n, dtype=np.int64)
        self.total_counts = np.zeros(n, dtype=np.int64)
        self.hits = np.zeros(n, dtype=np.int64)
        self.misses = np.zeros(n, dtype=np.int64)
        self.last_used = np.full(n, -np.inf)
        self.ctx_sum = np.zeros((n, model.config.dim))
        self.cache_obs: dict[str, Any] = {
            "resident": self.resident,
            "capacity": self.capacity,
            "counts": self.counts,
            "total_counts": self.total_counts,
            "hits": self.hits,
            "misses": self.misses,
            "last_used": self.last_used,
            "est_utility": np.zeros(n),
            "uncertainty": np.zeros(n),
            "load_time_s": self.load_s,
            "requested": -1,
            "epoch": 0,
            "next_popularity": model.mean_popularity(0, self.epoch_requests),
        }
        self._route_obs: dict[str, Any] = {
            "x": None,
            "resident": self.resident,
            "paging_cost_s": self.paging_cost_s,
        }

    # --- residency -------------------------------------------------------------------------------
    def apply(self, scores: Any) -> None:
        """Make the top-``capacity`` adapters by ``scores`` resident (resident_from_scores)."""
        new = resident_from_scores(np.asarray(scores, dtype=np.float64), self.capacity)
        self.n_loads += int(np.count_nonzero(new & ~self.resident))
        self.resident[:] = new
        np.copyto(self.paging_cost_s, np.where(new, 0.0, self.load_s))
        self.max_resident = max(self.max_resident, int(np.count_nonzero(new)))

    def _miss(self, arm: int) -> None:
        if self.on_miss is not None:
            self.cache_obs["requested"] = arm
            self.apply(self.on_miss.act(self.cache_obs))
        elif np.count_nonzero(self.resident) < self.capacity:  # keep_resident: a free slot
            self.resident[arm] = True
            self.paging_cost_s[arm] = 0.0
            self.n_loads += 1
            self.max_resident = max(self.max_resident, int(np.count_nonzero(self.resident)))

    # --- one epoch -------------------------------------------------------------------------------
    def step(self, scores: Any, n_requests: int | None = None) -> AdapterEpochResult:
        """Apply the epoch's cache action, then serve its requests.

        Args:
            scores: A score per adapter, [N] (see :func:`resident_from_scores`).
            n_requests: Requests to serve (default ``epoch_requests``; fewer: a partial last
                epoch, after which the cache observation is not advanced).
        """
        e = self.epoch_requests
        m = e if n_requests is None else int(n_requests)
        if not 0 < m <= e:
            raise ValueError(f"n_requests must be in [1, {e}], got {n_requests}")
        loads0 = self.n_loads
        self.apply(scores)
        self.counts[:] = 0
        self.hits[:] = 0
        self.misses[:] = 0
        self.ctx_sum[:] = 0.0
        start = self.position
        task = np.empty(m, dtype=np.int64)
        served = np.empty(m, dtype=np.int64)
        hit = np.empty(m, dtype=bool)
        utility = np.empty(m)
        best = np.empty(m)
        done = 0
        while done < m:
            reqs = self.source.take(min(self.block, m - done))
            k = reqs.task.shape[0]
            sl = slice(done, done + k)
            self._serve(reqs, served[sl], hit[sl])
            task[sl] = reqs.task
            u_all = self.model.true_utility(reqs.x)  # [k, N]
            utility[sl] = u_all[np.arange(k), served[sl]]
            best[sl] = u_all.max(axis=1)
            done += k
        self.position = start + m
        latency = np.where(hit, 0.0, self.load_s[served])
        if m == e:
            self._boundary()
        return AdapterEpochResult(
            start=start,
            complete=m == e,
            task=task,
            served=served,
            hit=hit,
            utility=utility,
            best_utility=best,
            latency_s=latency,
            net_reward=self.model.net_reward(utility, latency),
            n_loads=self.n_loads - loads0,
        )

    def _boundary(self) -> None:
        """Advance the cache observation to the end of a complete epoch."""
        cobs = self.cache_obs
        if self._estimates is not None:
            cobs["est_utility"], cobs["uncertainty"] = epoch_estimates(
                self._estimates, self.ctx_sum, self.counts
            )
        cobs["requested"] = -1
        cobs["epoch"] += 1
        start = self.position
        cobs["next_popularity"] = self.model.mean_popularity(start, start + self.epoch_requests)

    def _serve(self, reqs: AdapterRequests, served: IntArray, hit: BoolArray) -> None:
        """Route and serve a block of requests, filling ``served`` and ``hit`` [k]."""
        if self.route_block > 1:
            b = self.route_block
            for s in range(0, reqs.task.shape[0], b):
                sub = AdapterRequests(
                    reqs.index[s : s + b], reqs.task[s : s + b], reqs.x[s : s + b],
                    reqs.noise[s : s + b],
                )  # fmt: skip
                self._serve_batched(sub, served[s : s + b], hit[s : s + b])
            return
        n = self.model.config.n_adapters
        router, observe, observed = self.router, self._observe, self.model.observed_utility
        resident, counts, total_counts = self.resident, self.counts, self.total_counts
        hits, misses, last_used, ctx_sum = self.hits, self.misses, self.last_used, self.ctx_sum
        robs, track_ctx = self._route_obs, self._estimates is not None
        xs, noise, i0 = reqs.x, reqs.noise, int(reqs.index[0])
        for j, t in enumerate(reqs.task.tolist()):
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
            if track_ctx:
                ctx_sum[t] += x
            h = bool(resident[arm])
            last_used[arm] = i0 + j
            if h:
                hits[arm] += 1
            else:
                misses[arm] += 1
                self._miss(arm)
            served[j] = arm
            hit[j] = h
            if observe is not None:
                observe(arm, x, observed(arm, x, noise[j]))

    def _serve_batched(self, reqs: AdapterRequests, served: IntArray, hit: BoolArray) -> None:
        """One routing block: route with frozen statistics, serve per request, learn at the end."""
        n = self.model.config.n_adapters
        router: Any = self.router
        xs, tasks, k = reqs.x, reqs.task, reqs.task.shape[0]
        arms = np.asarray(router.act_batch(xs, self.resident, self.paging_cost_s), dtype=np.int64)
        if arms.shape != (k,) or (k and not (arms.min() >= 0 and arms.max() < n)):
            raise ValueError(f"route policy returned adapters outside 0..{n - 1}")
        served[:] = arms
        self.counts += np.bincount(tasks, minlength=n)
        self.total_counts += np.bincount(tasks, minlength=n)
        if self._estimates is not None:
            np.add.at(self.ctx_sum, tasks, xs)
        full = np.count_nonzero(self.resident) >= self.capacity
        if self.on_miss is None and full:  # the set cannot change inside the block: vectorized
            hit[:] = self.resident[arms]
            self.hits += np.bincount(arms[hit], minlength=n)
            self.misses += np.bincount(arms[~hit], minlength=n)
            np.maximum.at(self.last_used, arms, reqs.index.astype(np.float64))
        else:
            for j, arm in enumerate(arms.tolist()):
                h = bool(self.resident[arm])
                self.last_used[arm] = int(reqs.index[j])
                if h:
                    self.hits[arm] += 1
                else:
                    self.misses[arm] += 1
                    self._miss(arm)
                hit[j] = h
        rewards = np.einsum("nd,nd->n", self.model.theta[arms], xs) + reqs.noise
        router.observe_rewards(arms, xs, rewards)


def epoch_estimates(
    arm_estimates: Any, ctx_sum: FloatArray, counts: IntArray
) -> tuple[FloatArray, FloatArray]:
    """The cache observation's ``est_utility`` / ``uncertainty`` at an epoch boundary.

    The router's ``arm_estimates`` at each adapter's mean context over the epoch's requests
    that named it (the mean of all the epoch's contexts for an adapter no request named).

    Args:
        arm_estimates: The router's ``arm_estimates(x_ref [N, d]) -> ([N], [N])``.
        ctx_sum: Sum of the epoch's contexts per task, [N, d].
        counts: The epoch's requests per task, int [N].
    """
    seen = counts > 0
    x_ref = np.where(
        seen[:, None],
        ctx_sum / np.maximum(counts, 1)[:, None],
        ctx_sum.sum(axis=0) / max(int(counts.sum()), 1),
    )
    est, width = arm_estimates(x_ref)
    return est, width


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

    The loop is :class:`AdapterServingLoop` with ``cache`` asked at the start, on every miss
    (``requested`` = the paged adapter) and at every epoch boundary (``requested = -1``, also
    after the last complete epoch). See the class for what a hit, a miss and a load cost.

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
    loop = AdapterServingLoop(
        model,
        router=router,
        capacity=capacity,
        epoch_requests=epoch_requests,
        load_time_s=load_time_s,
        on_miss=cache,
        block=block,
    )
    scores = cache.act(loop.cache_obs)
    epochs: list[AdapterEpochResult] = []
    while loop.position < n_requests:
        res = loop.step(scores, min(epoch_requests, n_requests - loop.position))
        epochs.append(res)
        if res.complete:  # the boundary decision (after the last epoch too: it may load)
            scores = cache.act(loop.cache_obs)
    if epochs and epochs[-1].complete:
        loop.apply(scores)

    def cat(name: str) -> Any:
        parts = [getattr(e, name) for e in epochs]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)

    return AdapterLoopResult(
        task=cat("task"),
        served=cat("served"),
        hit=cat("hit"),
        utility=cat("utility"),
        best_utility=cat("best_utility"),
        latency_s=cat("latency_s"),
        net_reward=cat("net_reward"),
        epoch_hit_ratio=np.asarray([e.hit_ratio for e in epochs]),
        max_resident=loop.max_resident,
        n_loads=loop.n_loads,
    )
