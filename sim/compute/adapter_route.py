"""Per-request adapter routing inside an LLM server, and the server run one cache epoch at a time.

The fast timescale of the POLAR setting (Li & Li, arXiv 2604.16583) in the real server: every
request that reaches a server with :class:`AdapterRouting` brings a task and a context
``x ∈ R^d`` (the scenario's :class:`~edgetwin.sim.compute.adapter_utility.AdapterUtilityModel`,
handed out in arrival order by :class:`AdapterContexts`); the server asks its ``route``
:class:`~edgetwin.sim.decision.DecisionPoint` which adapter serves it, and the chosen adapter
then goes through the server's normal path (GPU / host / disk tiers, serialized loads, mixed-
adapter batches: :mod:`edgetwin.sim.compute.adapter_pool`). When the request completes, its
utility ``θ_armᵀ x + ε`` is recorded and fed back to the router through the route family's
``observe_reward(arm, x, utility)`` (the API :class:`~edgetwin.sim.compute.adapter_utility.
AdapterServingLoop` uses; ``agents/baselines/route.py``).

Route observation (the keys of ``agents/baselines/route.py`` plus what a server knows; arrays
are the server's own, a policy only reads them): ``x`` float64 [d], ``task`` int, ``resident``
bool [N] (GPU residency now), ``paging_cost_s`` float64 [N] (0 when resident, else the load
time), ``load_time_s`` float64 [N] (host-memory copy or disk read + copy), ``est_utility`` /
``uncertainty`` float64 [N] (the router's ``θ̂_aᵀ x`` and ``√(xᵀ A_a⁻¹ x)`` when it has ``ucb``,
zeros otherwise), ``in_use`` int64 [N], ``now_s``. Action: the adapter index.

Regret is against the oracle router of that moment (``route/oracle``'s rule): ``max_a (θ_aᵀ x −
λ · paging_cost_s_a) − (θ_armᵀ x − λ · paging_cost_s_arm)``, λ the model's
``latency_weight_per_s``; so ``route/oracle`` (given θ and λ) has regret exactly 0. Net utility of
a finished request is ``utility − λ · ttft_s`` (its measured time to first token: queueing, the
wait for its adapter, prefill).

:class:`ServerAdapterEpochs` runs such a server one cache epoch (``epoch_requests`` arrivals) at
a time with the attribute interface of ``AdapterServingLoop``, so the ``AdapterCache-v0``
environment can drive either.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import simpy

from edgetwin.sim.compute.adapter_utility import (
    AdapterEpochResult,
    AdapterRequests,
    AdapterUtilityModel,
    epoch_estimates,
    resident_from_scores,
)
from edgetwin.sim.decision import DecisionPoint
from edgetwin.sim.types import FloatArray

if TYPE_CHECKING:
    from edgetwin.agents.protocol import Policy
    from edgetwin.sim.compute.adapter_pool import AdapterPool
    from edgetwin.sim.compute.server import LLMServer
    from edgetwin.sim.workload.request import Request

__all__ = [
    "ROUTE_COLUMNS",
    "ROUTE_FAMILY",
    "AdapterContexts",
    "AdapterRouting",
    "ServerAdapterEpochs",
    "route_summary",
]

#: Decision family of the per-request adapter router.
ROUTE_FAMILY = "route"

#: Columns a server with routing adds to its per-request table.
ROUTE_COLUMNS: tuple[str, ...] = (
    "task",
    "adapter",
    "route_hit",
    "routed_s",
    "utility",
    "regret",
    "net_utility",
)


class AdapterContexts:
    """The scenario's requests (task, context, noise), one per arriving request, in order.

    Shared by the replicas of a run, so that the k-th request to reach any of them gets the
    k-th draw of ``model.source()`` whatever the routing (common random numbers). In a serving
    replay the k-th arrival is request k, whose task is the workload's ``adapter`` column.

    Args:
        model: The scenario (θ, popularity, contexts, noise).
        block: Requests drawn at a time (the draws do not depend on it).
    """

    def __init__(self, model: AdapterUtilityModel, block: int = 1024) -> None:
        self.model = model
        self.source = model.source()
        self.block = int(block)
        self._buf: AdapterRequests | None = None
        self._i = 0
        self.n_taken = 0

    def next(self) -> tuple[int, FloatArray, float]:
        """``(task, x [d], noise)`` of the next arriving request."""
        buf = self._buf
        if buf is None or self._i >= buf.task.shape[0]:
            buf = self._buf = self.source.take(self.block)
            self._i = 0
        i = self._i
        self._i += 1
        self.n_taken += 1
        return int(buf.task[i]), buf.x[i], float(buf.noise[i])


class AdapterRouting:
    """The ``route`` decision of one server and the record of its routed requests.

    Args:
        env: The SimPy environment.
        pool: The server's adapters (residency, load times).
        contexts: Where each arriving request's task and context come from.
        policy: Inline ``route`` policy.
        name: For error messages.
    """

    def __init__(
        self,
        env: simpy.Environment,
        pool: AdapterPool,
        contexts: AdapterContexts,
        policy: Policy[Any, Any],
        name: str = "server",
    ) -> None:
        model = contexts.model
        n = model.config.n_adapters
        if n != pool.config.n_adapters:
            raise ValueError(
                f"{name}: the contexts' utility model has {n} adapters, the server's library "
                f"{pool.config.n_adapters}; they must name the same library"
            )
        self.env, self.pool, self.contexts, self.name = env, pool, contexts, name
        self.model = model
        self.lam = float(model.config.latency_weight_per_s)
        self.dp: DecisionPoint[dict[str, Any], Any] = DecisionPoint(env, ROUTE_FAMILY, policy)
        self._observe = getattr(policy, "observe_reward", None)
        self._ucb = getattr(policy, "ucb", None)
        self.est = np.zeros(n)
        self.width = np.zeros(n)
        self.obs: dict[str, Any] = {
            "x": None,
            "task": -1,
            "resident": pool.resident_mask,
            "paging_cost_s": np.zeros(n),
            "load_time_s": np.zeros(n),
            "est_utility": self.est,
            "uncertainty": self.width,
            "in_use": pool.in_use,
            "now_s": 0.0,
        }
        # one row per request that reached the server, in arrival order
        self.ids: list[int] = []
        self.task: list[int] = []
        self.adapter: list[int] = []
        self.hit: list[bool] = []
        self.routed_s: list[float] = []
        self.regret: list[float] = []
        self.expected: list[float] = []  # θ_armᵀ x (no noise)
        self.best: list[float] = []  # max_a θ_aᵀ x (no noise, no paging)
        self.utility: list[float] = []  # observed θ_armᵀ x + ε; nan until it completes
        self.ttft_s: list[float] = []  # nan until it completes
        self.net: list[float] = []  # utility − λ · ttft_s; nan until it completes
        self.completed: list[int] = []  # rows in completion order
        self._pending: dict[int, tuple[int, FloatArray, float]] = {}  # id -> (row, x, noise)
        self.last_x: FloatArray | None = None
        #: Called after each arrival's row is written (routed or skipped): an epoch counter.
        self.on_route: Callable[[], None] | None = None

    def attach(self, policy: Policy[Any, Any]) -> None:
        """Route with ``policy`` from now on (its feedback and estimates too)."""
        self.dp.attach(policy)
        self._observe = getattr(policy, "observe_reward", None)
        self._ucb = getattr(policy, "ucb", None)

    def route(self, req: Request) -> None:
        """Draw ``req``'s task and context, ask the router, set ``req.adapter``."""
        t, x, noise = self.contexts.next()
        pool, obs = self.pool, self.obs
        load = pool.load_times_s()
        cost = np.where(pool.resident_mask, 0.0, load)
        obs["x"], obs["task"], obs["now_s"] = x, t, float(self.env.now)
        obs["paging_cost_s"], obs["load_time_s"] = cost, load
        ucb = self._ucb
        if ucb is not None and getattr(self.dp.policy, "theta_hat", None) is not None:
            self.est[:], self.width[:] = ucb(x)
        arm = self.dp.decide(obs)
        n = pool.config.n_adapters
        if not (isinstance(arm, int | np.integer) and 0 <= arm < n):
            raise ValueError(
                f"{self.name}: route policy {type(self.dp.policy).__name__} returned {arm!r}; "
                f"expected an adapter index in 0..{n - 1}"
            )
        arm = int(arm)
        u_all = self.model.theta @ x  # [N]
        value = u_all - self.lam * cost  # [N]: the oracle router's net values (route/oracle's)
        row = len(self.ids)
        self.ids.append(req.id)
        self.task.append(t)
        self.adapter.append(arm)
        self.hit.append(bool(pool.resident_mask[arm]))
        self.routed_s.append(float(self.env.now))
        self.regret.append(float(value.max() - value[arm]))
        self.expected.append(float(u_all[arm]))
        self.best.append(float(u_all.max()))
        self.utility.append(math.nan)
        self.ttft_s.append(math.nan)
        self.net.append(math.nan)
        self._pending[req.id] = (row, x, noise)
        self.last_x = x
        req.adapter = arm
        if self.on_route is not None:
            self.on_route()

    def skip(self, req: Request) -> None:
        """A rejected request: its draw is used up (the next arrival gets the next one)."""
        t, x, _noise = self.contexts.next()
        self.ids.append(req.id)
        self.task.append(t)
        self.adapter.append(-1)
        self.hit.append(False)
        self.routed_s.append(float(self.env.now))
        for col in (self.regret, self.expected, self.best, self.utility, self.ttft_s, self.net):
            col.append(math.nan)
        self.last_x = x
        if self.on_route is not None:
            self.on_route()

    def complete(self, req: Request) -> None:
        """``req`` finished: record its utility and net utility, feed the router back."""
        row, x, noise = self._pending.pop(req.id)
        arm = req.adapter
        u = self.model.observed_utility(arm, x, noise)
        ttft = req.first_token_s - req.arrival_s
        self.utility[row] = u
        self.ttft_s[row] = ttft
        self.net[row] = u - self.lam * ttft
        self.completed.append(row)
        if self._observe is not None:
            self._observe(arm, x, u)

    # ------------------------------------------------------------------ results
    def table(self) -> pd.DataFrame:
        """One row per request that reached the server: ``id`` and :data:`ROUTE_COLUMNS`."""
        return pd.DataFrame(
            {
                "id": np.asarray(self.ids, dtype=np.int64),
                "task": np.asarray(self.task, dtype=np.int64),
                "adapter": np.asarray(self.adapter, dtype=np.int64),
                "route_hit": np.asarray(self.hit, dtype=bool),
                "routed_s": np.asarray(self.routed_s, dtype=np.float64),
                "utility": np.asarray(self.utility, dtype=np.float64),
                "regret": np.asarray(self.regret, dtype=np.float64),
                "net_utility": np.asarray(self.net, dtype=np.float64),
            }
        )

    def summary(self) -> dict[str, float]:
        """Routing headline metrics of this server (:func:`route_summary` of its table)."""
        return route_summary(self.table())


def route_summary(table: pd.DataFrame) -> dict[str, float]:
    """Routing metrics of a table with :data:`ROUTE_COLUMNS`.

    ``route_decisions`` (requests routed), ``route_hit_ratio`` (routed to a resident adapter),
    ``regret_mean`` / ``regret_total`` (over routed requests, against the oracle router),
    ``utility_mean`` and ``net_utility_mean`` (utility − λ · ttft_s) over finished ones.
    """
    routed = table["adapter"].to_numpy() >= 0
    hit = table["route_hit"].to_numpy(dtype=bool)[routed]
    regret = table["regret"].to_numpy(dtype=np.float64)[routed]
    util = table["utility"].to_numpy(dtype=np.float64)
    done = ~np.isnan(util)
    net = table["net_utility"].to_numpy(dtype=np.float64)[done]
    nan = math.nan
    return {
        "route_decisions": int(routed.sum()),
        "route_hit_ratio": float(hit.mean()) if hit.size else nan,
        "regret_mean": float(regret.mean()) if regret.size else nan,
        "regret_total": float(regret.sum()),
        "utility_mean": float(util[done].mean()) if done.any() else nan,
        "net_utility_mean": float(net.mean()) if net.size else nan,
    }


class _EpochScores:
    """The in-epoch victim rule: the epoch's scores, ties (and no scores) least recently used.

    What the server's ``cache`` point is asked when a load needs room inside an epoch of
    :class:`ServerAdapterEpochs`: the adapter with the lowest score goes, and among equal
    scores (all of them before the first action) the least recently used.
    """

    def __init__(self, n: int) -> None:
        self.scores = np.full(n, -np.inf)

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless between episodes (the runner sets the scores)."""

    def act(self, obs: dict[str, Any]) -> FloatArray:
        """Ranks of ``(score, last_used)``, lowest first."""
        order = np.lexsort((obs["last_used"], self.scores))
        rank = np.empty(self.scores.shape[0])
        rank[order] = np.arange(self.scores.shape[0], dtype=np.float64)
        return rank


class ServerAdapterEpochs:
    """An LLM server with adapter routing, run one cache epoch at a time.

    The attribute interface of :class:`~edgetwin.sim.compute.adapter_utility.
    AdapterServingLoop` (``step``, ``cache_obs``, ``counts``, ``total_counts``, ``hits``,
    ``misses``, ``resident``, ``load_s``, ``last_used``, ``position``), over the real server:

    * an epoch is ``epoch_requests`` consecutive arrivals; :meth:`step` applies the action's
      resident set at the boundary (the top-K by score, :func:`resident_from_scores`: resident
      adapters outside it that no running request uses are evicted, the others are prefetched
      through the server's serialized loader, highest score first) and runs the simulation
      until the epoch's last request has arrived; time does not pass during the decision;
    * inside the epoch a miss loads the routed adapter (the request waits for it); the victim
      is the evictable resident adapter of lowest score, least recently used among ties;
    * ``counts`` are the tasks of the epoch's arrivals, ``hits`` / ``misses`` the adapters they
      were routed to, resident or not when routed (the ``route_hit`` column of the server's
      table); ``last_used`` counts arrivals;
    * the epoch's result holds the requests that *completed* during it (whenever they arrived):
      ``utility`` (θᵀx, no noise), ``best_utility``, ``latency_s`` = their TTFT, ``net_reward``.

    Args:
        env: The SimPy environment of the server.
        server: An ``LLMServer`` with adapters and routing.
        requests: The workload in arrival order (e.g. a ``RequestLog``), submitted to the
            server by a source of this runner, which starts both; its length must cover the
            epochs to be run. ``None``: the requests reach the server some other way (UEs over
            the radio), and whoever built it starts it.
        epoch_requests: Arrivals per epoch.
        until: An event that ends the run early (a simulation's horizon), or ``None``.
    """

    def __init__(
        self,
        env: simpy.Environment,
        server: LLMServer,
        requests: Any = None,
        *,
        epoch_requests: int,
        until: simpy.Event | None = None,
    ) -> None:
        pool, routing = server.adapters, server.routing
        if pool is None or routing is None:
            raise ValueError("ServerAdapterEpochs needs a server with adapters and routing")
        if epoch_requests < 1:
            raise ValueError(f"epoch_requests must be >= 1, got {epoch_requests}")
        from edgetwin.sim.workload.source import WorkloadSource

        self.env, self.server, self.pool, self.routing = env, server, pool, routing
        self.model = routing.model
        self.epoch_requests = int(epoch_requests)
        self.capacity = pool.config.max_loras
        n, d = self.model.config.n_adapters, self.model.config.dim
        self._victims = _EpochScores(n)
        pool.dp = DecisionPoint(env, "cache", self._victims)
        self.n_requests = len(requests) if requests is not None else None
        self.position = 0
        self.counts = np.zeros(n, dtype=np.int64)
        self.total_counts = np.zeros(n, dtype=np.int64)
        self.hits = np.zeros(n, dtype=np.int64)
        self.misses = np.zeros(n, dtype=np.int64)
        self.last_used = np.full(n, -np.inf)
        self.ctx_sum = np.zeros((n, d))
        self._estimates = getattr(routing.dp.policy, "arm_estimates", None)
        self.cache_obs: dict[str, Any] = {
            "est_utility": np.zeros(n),
            "uncertainty": np.zeros(n),
            "epoch": 0,
            "requested": -1,
        }
        self._boundary: simpy.Event = env.event()
        self._until = until
        self.ended = False  # the run reached ``until`` before an epoch's last arrival
        self._done_rows = 0
        routing.on_route = self._routed
        if requests is not None:
            source = WorkloadSource(env, requests, self._submit, name="adapter_epochs")
            server.start()
            source.start()

    @property
    def resident(self) -> np.ndarray:
        """GPU residency now, bool [N]."""
        return self.pool.resident_mask

    @property
    def load_s(self) -> FloatArray:
        """Seconds to load each adapter now (host copy or disk read), [N]."""
        return self.pool.load_times_s()

    def _submit(self, req: Request) -> None:
        self.server.submit(req)  # a rejected request is counted too (routing.skip)

    def _routed(self) -> None:
        """An arrival's routing row was written: count it in the epoch."""
        routing = self.routing
        t, arm = routing.task[-1], routing.adapter[-1]
        self.counts[t] += 1
        self.total_counts[t] += 1
        if routing.last_x is not None:
            self.ctx_sum[t] += routing.last_x
        if arm >= 0:
            self.last_used[arm] = self.position
            if routing.hit[-1]:
                self.hits[arm] += 1
            else:
                self.misses[arm] += 1
        self.position += 1
        if self.position % self.epoch_requests == 0 and not self._boundary.triggered:
            self._boundary.succeed()

    def apply(self, scores: Any) -> None:
        """Make the top-``capacity`` adapters by ``scores`` resident (evict, then prefetch)."""
        s = np.asarray(scores, dtype=np.float64)
        self._victims.scores = s
        want = resident_from_scores(s, self.capacity)
        order = np.argsort(-s, kind="stable")
        self.pool.set_resident(want, [int(a) for a in order if want[a]])

    def step(self, scores: Any, n_requests: int | None = None) -> AdapterEpochResult:
        """Apply the epoch's cache action, then run the server through the epoch's arrivals.

        Args:
            scores: A score per adapter, [N].
            n_requests: Must be ``None`` or ``epoch_requests`` (epochs are whole here).
        """
        e = self.epoch_requests
        if n_requests not in (None, e):
            raise ValueError(f"n_requests must be None or {e} here, got {n_requests}")
        if self.n_requests is not None and self.position + e > self.n_requests:
            raise ValueError(
                f"the workload holds {self.n_requests} requests; epoch {self.position // e} "
                f"needs {self.position + e}"
            )
        loads0 = self.pool.n_loads
        self.apply(scores)
        for arr in (self.counts, self.hits, self.misses):
            arr[:] = 0
        self.ctx_sum[:] = 0.0
        start = self.position
        self._boundary = self.env.event()
        stop = self._boundary if self._until is None else self._boundary | self._until
        self.env.run(until=stop)
        self.ended = not self._boundary.triggered
        routing = self.routing
        rows = routing.completed[self._done_rows :]  # completed in this epoch, in order
        self._done_rows = len(routing.completed)

        def col(values: list[Any], dtype: Any) -> Any:
            return np.fromiter((values[r] for r in rows), dtype=dtype, count=len(rows))

        utility = col(routing.expected, np.float64)
        latency = col(routing.ttft_s, np.float64)
        self._boundary_obs()
        return AdapterEpochResult(
            start=start,
            complete=not self.ended,
            task=col(routing.task, np.int64),
            served=col(routing.adapter, np.int64),
            hit=col(routing.hit, bool),
            utility=utility,
            best_utility=col(routing.best, np.float64),
            latency_s=latency,
            net_reward=self.model.net_reward(utility, latency),
            n_loads=self.pool.n_loads - loads0,
        )

    def _boundary_obs(self) -> None:
        cobs = self.cache_obs
        if self._estimates is not None:
            cobs["est_utility"], cobs["uncertainty"] = epoch_estimates(
                self._estimates, self.ctx_sum, self.counts
            )
        cobs["epoch"] += 1
