"""Adapter cache policies (decision family ``"cache"``): which LoRA adapters stay resident.

The slow timescale of the POLAR setting (Li & Li, arXiv 2604.16583): a server with ``N``
adapters and ``K`` resident slots asks its ``cache`` DecisionPoint on a miss and at epoch
boundaries.

Observation (a dict of named arrays; the caller owns them, a policy only reads):

* ``resident`` bool [N]: adapters in fast memory now.
* ``capacity`` int: slots K.
* ``requested`` int: the adapter being paged in for the request that missed; ``-1`` when asked at
  an epoch boundary (and once at the start, before any request).
* ``epoch`` int: epochs completed (0 before the first boundary).
* ``counts`` int64 [N]: requests that named adapter a (their task's own adapter) since the epoch
  began — the demand, independent of routing; ``total_counts`` int64 [N]: the same since reset.
* ``hits`` / ``misses`` int64 [N]: requests *served* by a since the epoch began, resident / paged.
* ``last_used`` float64 [N]: clock of a's last service (request index in the standalone loop,
  seconds in the server; only the order matters), ``-inf`` if never.
* ``est_utility`` / ``uncertainty`` float64 [N]: the router's estimate of a's utility on the
  epoch's contexts ``θ̂_aᵀ x̄_a`` and its confidence width ``√(x̄_aᵀ A_a⁻¹ x̄_a)`` (zeros when the
  router does not learn), ``x̄_a`` the mean context of the requests naming a (of all requests
  if none did).
* ``load_time_s`` float64 [N]: seconds to page each adapter in.
* ``next_popularity`` float64 [N] (only ``cache/oracle`` reads it): the task popularity averaged
  over the next epoch; ``prior_popularity`` float64 [N] (optional, ``cache/static``).

Action: a score per adapter, float64 [N]. The top-K finite scores become resident, ties to the
lower index, ``-inf`` never (``edgetwin.sim.compute.adapter_utility.resident_from_scores``; the
server evicting "the lowest-scored evictable resident adapter" is the same rule one eviction at a
time). A request that missed is paged in and served whether or not its adapter is kept.

Not every caller fills every key: each policy reads only the keys named in its docstring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LeastFrequentlyUsed",
    "LeastRecentlyUsed",
    "Polar",
    "PolarPlus",
    "PopularityOracle",
    "RandomReplacement",
    "StaticTopK",
    "keep_resident",
]

FloatArray = NDArray[np.float64]
DEMANDS = ("requested", "served")  # what Polar's demand estimate counts


def _need(obs: Mapping[str, Any], key: str, who: str) -> Any:
    """``obs[key]``, or an error naming the policy and the key it reads."""
    try:
        return obs[key]
    except KeyError:
        raise KeyError(
            f"{who} reads the cache observation key {key!r}; the observation has {sorted(obs)}"
        ) from None


def keep_resident(obs: Mapping[str, Any]) -> FloatArray:
    """Scores that keep the resident set, admitting a missed adapter only into a free slot.

    Args:
        obs: Cache observation (``resident``, ``capacity``, ``requested``).

    Returns:
        float64 [N]: 1 on resident adapters, 0.5 on the requested one if a slot is free,
        ``-inf`` elsewhere.
    """
    resident = np.asarray(obs["resident"], dtype=bool)
    scores = np.where(resident, 1.0, -np.inf)
    requested = int(obs["requested"])
    if requested >= 0 and np.count_nonzero(resident) < int(obs["capacity"]):
        scores[requested] = 0.5
    return scores


class LeastRecentlyUsed:
    """LRU: keep the K most recently served adapters (``cache/lru``).

    Reads ``last_used``. Scores are the last-use clocks, so a miss evicts the least recently
    used resident adapter; at an epoch boundary the set does not change.
    """

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: recency lives in the observation."""

    def act(self, obs: Mapping[str, Any]) -> FloatArray:
        """Scores = ``last_used`` (never used: ``-inf``, never made resident)."""
        return np.array(_need(obs, "last_used", "cache/lru"), dtype=np.float64)


class LeastFrequentlyUsed:
    """Perfect LFU: keep the K adapters requested most often since reset (``cache/lfu``).

    Reads ``total_counts`` and ``resident``. Counts cover every adapter, resident or not
    ("perfect" LFU), so under the independent reference model the cache converges to the K most
    popular adapters; ties keep the resident adapter.
    """

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: counts live in the observation."""

    def act(self, obs: Mapping[str, Any]) -> FloatArray:
        """Scores = total counts (+0.5 if resident; ``-inf`` for never-requested, non-resident)."""
        counts = np.asarray(_need(obs, "total_counts", "cache/lfu"), dtype=np.float64)
        resident = np.asarray(obs["resident"], dtype=bool)
        scores = counts + 0.5 * resident
        scores[(counts == 0) & ~resident] = -np.inf
        return scores


class RandomReplacement:
    """Random replacement: a miss evicts a uniformly chosen resident adapter (``cache/random``).

    Args:
        seed: Seed of the eviction draws (``reset(seed=...)`` overrides it).
    """

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self.reset(seed=seed)

    def reset(self, *, seed: int | None = None) -> None:
        """Restart the eviction draws."""
        self._rng = np.random.default_rng(self._seed if seed is None else seed)

    def act(self, obs: Mapping[str, Any]) -> FloatArray:
        """On a miss: the requested adapter in, a random resident one out (if full)."""
        resident = np.asarray(obs["resident"], dtype=bool)
        requested = int(obs["requested"])
        if requested < 0:
            return np.where(resident, 1.0, -np.inf)
        scores = np.where(resident, 1.0 + self._rng.random(resident.shape[0]), -np.inf)
        scores[requested] = 3.0
        return scores


class StaticTopK:
    """The K adapters of highest prior popularity, fixed for the run (``cache/static``).

    The prior comes from ``prior`` if given, else from the observation's ``prior_popularity``,
    else from the request counts of the first epoch (a warm-up during which misses fill free
    slots), frozen at the first epoch boundary.

    Args:
        prior: Prior popularity per adapter, [N] (any positive scale), or None.
    """

    def __init__(self, prior: Sequence[float] | None = None) -> None:
        self._given = None if prior is None else np.asarray(prior, dtype=np.float64)
        self.reset()

    def reset(self, *, seed: int | None = None) -> None:
        """Forget a prior learned from the warm-up epoch."""
        self._prior = self._given

    def act(self, obs: Mapping[str, Any]) -> FloatArray:
        """Scores = the prior popularity (the same top-K at every decision)."""
        if self._prior is None:
            if "prior_popularity" in obs:
                self._prior = np.asarray(obs["prior_popularity"], dtype=np.float64)
            elif int(obs["requested"]) < 0 and int(obs["epoch"]) > 0:
                self._prior = np.asarray(_need(obs, "total_counts", "cache/static"), float)
            else:
                return keep_resident(obs)
        return np.array(self._prior, dtype=np.float64)


class PopularityOracle:
    """At each epoch boundary, the K adapters most popular in the *next* epoch (``cache/oracle``).

    Reads ``next_popularity`` (the true task popularity averaged over the coming epoch: an
    oracle's knowledge). Between boundaries the set is fixed (misses fill free slots only).
    """

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless."""

    def act(self, obs: Mapping[str, Any]) -> FloatArray:
        """Scores = next epoch's popularity at a boundary; keep the set on a miss."""
        if int(obs["requested"]) >= 0:
            return keep_resident(obs)
        return np.array(_need(obs, "next_popularity", "cache/oracle"), dtype=np.float64)


def polar_value(
    demand: FloatArray,
    est_utility: FloatArray,
    uncertainty: FloatArray,
    *,
    alpha: float,
    floor: float,
) -> FloatArray:
    """Estimated value of keeping each adapter resident next epoch.

    ``value_a = n̂_a · max(û_a + α β_a, floor)``: the expected number of requests for a (its
    demand in the epoch just ended) times its optimistic (UCB) utility — the rule implemented
    for POLAR's epoch controller (arXiv 2604.16583; its exact scoring could not be checked, see
    :class:`Polar`). The floor keeps the order by demand when the router reports no estimates.

    Args:
        demand: Requests per adapter n̂, [N].
        est_utility: û, [N].
        uncertainty: Confidence widths β, [N].
        alpha: Optimism α on the width.
        floor: Least utility factor (> 0).
    """
    return demand * np.maximum(est_utility + alpha * uncertainty, floor)  # type: ignore[no-any-return]


class Polar:
    """POLAR's fixed-epoch cache controller (``cache/polar``).

    At each epoch boundary keep the K adapters of highest :func:`polar_value` — the epoch's
    demand ``counts`` (plus ``discount`` × the previous epochs' demand) times the router's
    optimistic utility ``est_utility + alpha · uncertainty``; between boundaries the set is fixed
    (a miss is paged for its request; it fills a slot only if one is free). Adapters with no
    demand are not loaded; ties keep resident adapters.

    Reference: Li & Li, "POLAR: Online Learning for LoRA Adapter Caching and Routing in Edge LLM
    Serving", arXiv 2604.16583 (2026) — only the abstract was available when this was written
    ("an epoch-based cache controller" paired with a cache-aware LinUCB router); the value rule
    above is this module's choice, not a transcription of the paper's algorithm.

    **EdgeTwin extension** ``demand="served"``: the demand is the epoch's requests *served* by
    each adapter (``hits + misses``: the router's choices) instead of the requests that named it
    (``counts``, the default ``"requested"``). With ``route/fixed`` the two are the same; with a
    router that picks adapters by context they are not, and the adapters worth keeping are
    those the router sends requests to (``examples/adapter_caching.py`` measures the gap:
    under drift, with the cache-aware router, ``"requested"`` ties LRU on net utility and
    ``"served"`` beats it).

    Args:
        alpha: Optimism on the router's uncertainty.
        discount: Weight of older epochs' demand (0: the last epoch only).
        floor: Least utility factor of the value.
        demand: ``"requested"`` (``counts``) or ``"served"`` (``hits + misses``).
    """

    def __init__(
        self,
        alpha: float = 1.0,
        discount: float = 0.0,
        floor: float = 1e-3,
        demand: str = "requested",
    ) -> None:
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if not 0 <= discount < 1:
            raise ValueError(f"discount must be in [0, 1), got {discount}")
        if floor <= 0:
            raise ValueError(f"floor must be > 0, got {floor}")
        if demand not in DEMANDS:
            raise ValueError(f"demand must be one of {', '.join(DEMANDS)}; got {demand!r}")
        self.alpha, self.discount, self.floor, self.demand = alpha, discount, floor, demand
        self.reset()

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the demand estimate."""
        self._demand: FloatArray | None = None

    def _value(self, obs: Mapping[str, Any], demand: FloatArray) -> FloatArray:
        n = demand.shape[0]
        est = np.asarray(obs.get("est_utility", np.zeros(n)), dtype=np.float64)
        unc = np.asarray(obs.get("uncertainty", np.zeros(n)), dtype=np.float64)
        return polar_value(demand, est, unc, alpha=self.alpha, floor=self.floor)

    def _scores(self, obs: Mapping[str, Any], value: FloatArray, demand: FloatArray) -> FloatArray:
        resident = np.asarray(obs["resident"], dtype=bool)
        # ties keep a resident adapter: a relative nudge far below one request's value
        scores = value * (1.0 + 1e-9 * resident)
        scores[(demand <= 0) & ~resident] = -np.inf
        return scores

    def _counts(self, obs: Mapping[str, Any], who: str) -> FloatArray:
        """The epoch's demand per adapter: ``counts``, or ``hits + misses`` when served."""
        if self.demand == "served":
            hits = np.asarray(_need(obs, "hits", who), dtype=np.float64)
            misses = np.asarray(_need(obs, "misses", who), dtype=np.float64)
            return hits + misses
        return np.asarray(_need(obs, "counts", who), dtype=np.float64)

    def act(self, obs: Mapping[str, Any]) -> FloatArray:
        """Keep the set on a miss; re-rank by estimated value at an epoch boundary."""
        if int(obs["requested"]) >= 0 or int(obs["epoch"]) == 0:
            return keep_resident(obs)
        counts = self._counts(obs, "cache/polar")
        prev = self._demand
        demand = counts if prev is None else counts + self.discount * prev
        self._demand = demand
        return self._scores(obs, self._value(obs, demand), demand)


class PolarPlus(Polar):
    """POLAR+: doubling epochs, forced exploration of non-resident ones (``cache/polar_plus``).

    The caller's epochs are the base unit: phase p lasts ``2^p`` of them (1, 2, 4, ...), so the
    set is re-chosen when ``epoch + 1`` is a power of two, from the demand summed over the
    phase. Of the K slots, ``explore_slots`` go to the adapters of largest ``uncertainty`` among
    those not chosen by value (forced exploration: the router can then try them without paging),
    the rest by :func:`polar_value`. Per the abstract of arXiv 2604.16583 (epoch doubling +
    forced exploration); the slot split is this module's choice.

    **EdgeTwin extension** (not in the paper): ``max_phase_epochs`` caps the doubling, so phases
    last ``min(2^p, max_phase_epochs)`` epochs and the demand estimate is the last (capped)
    phase's — a sliding window over the recent epochs, as sliding-window UCB for piecewise
    stationary bandits (Garivier & Moulines, ALT 2011). The doubling trick is made for a
    stationary world of unknown horizon; under drifting popularity an uncapped phase
    outgrows the drift period and the set chosen from it is stale for the whole next phase.
    ``None`` (the default) is the uncapped POLAR+ above.

    Args:
        alpha: Optimism on the router's uncertainty.
        explore_slots: Slots reserved for exploration (at most K − 1 are used).
        floor: Least utility factor of the value.
        max_phase_epochs: Longest phase, in epochs (≥ 1), or None for unbounded doubling.
        demand: ``"requested"`` or ``"served"`` (see :class:`Polar`).
    """

    def __init__(
        self,
        alpha: float = 1.0,
        explore_slots: int = 1,
        floor: float = 1e-3,
        max_phase_epochs: int | None = None,
        demand: str = "requested",
    ) -> None:
        if explore_slots < 0:
            raise ValueError(f"explore_slots must be >= 0, got {explore_slots}")
        if max_phase_epochs is not None and max_phase_epochs < 1:
            raise ValueError(f"max_phase_epochs must be >= 1 or None, got {max_phase_epochs}")
        super().__init__(alpha=alpha, discount=0.0, floor=floor, demand=demand)
        self.explore_slots = explore_slots
        self.max_phase_epochs = max_phase_epochs

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the phase's demand."""
        super().reset(seed=seed)
        self._phase_demand: FloatArray | None = None
        self._phase_end = 1  # epoch at which the current phase ends (the set is re-chosen)
        self._phase_len = 1

    def act(self, obs: Mapping[str, Any]) -> FloatArray:
        """Accumulate demand each epoch; re-choose at the end of a doubling phase."""
        epoch = int(obs["epoch"])
        if int(obs["requested"]) >= 0 or epoch == 0:
            return keep_resident(obs)
        counts = self._counts(obs, "cache/polar_plus")
        acc = self._phase_demand
        demand = counts.copy() if acc is None else acc + counts
        if self.max_phase_epochs is None:
            phase_ends = not (epoch + 1) & epoch  # epoch + 1 a power of two
        else:  # lengths 1, 2, 4, ... capped: the same ends as above until the cap is reached
            phase_ends = epoch >= self._phase_end
            if phase_ends:
                self._phase_len = min(2 * self._phase_len, self.max_phase_epochs)
                self._phase_end = epoch + self._phase_len
        if not phase_ends:  # the phase goes on
            self._phase_demand = demand
            return keep_resident(obs)
        self._phase_demand = None
        capacity = int(obs["capacity"])
        scores = self._scores(obs, self._value(obs, demand), demand)
        m = min(self.explore_slots, capacity - 1)
        if m > 0:
            chosen = np.argsort(-scores, kind="stable")[: capacity - m]
            chosen = chosen[scores[chosen] > -np.inf]
            unc = np.asarray(obs.get("uncertainty", np.zeros(demand.shape[0])), dtype=np.float64)
            rest = np.setdiff1d(np.arange(demand.shape[0]), chosen)
            explore = rest[np.argsort(-unc[rest], kind="stable")[:m]]
            scores = np.full(demand.shape[0], -np.inf)
            scores[chosen] = 2.0 + np.arange(chosen.shape[0], 0, -1)  # value order kept
            scores[explore] = 1.0
        return scores
