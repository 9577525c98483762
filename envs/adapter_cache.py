"""``edgetwin/AdapterCache-v0``: which LoRA adapters an edge server keeps resident, per epoch.

The POLAR setting (Li & Li, arXiv 2604.16583; issue 10): ``N`` adapters of one base model, ``K``
GPU slots. A router (a registered ``route`` policy, default ``route/cache_aware``: LinUCB minus
λ × paging time) picks the adapter of every request from its context; the agent is the slow
timescale, the cache controller. The env drives the same loop as
:func:`~edgetwin.sim.compute.adapter_utility.simulate_adapter_serving` —
:class:`~edgetwin.sim.compute.adapter_utility.AdapterServingLoop` — so there is one code path:
an action that reproduces a cache policy's choices earns exactly that policy's net utility.

Description
    One step is one cache epoch of ``epoch_requests`` requests. :meth:`AdapterCacheEnv.reset`
    draws a scenario (hidden adapter parameters θ, the popularity ranking and its drift, the
    request stream) from the episode seed and serves one cold-start epoch with an empty cache
    that misses fill (the agent's first decision has an epoch of data to act on; it is what
    ``cache/lru``, ``cache/polar`` and ``cache/polar_plus`` do before their first boundary).
    Each step applies the agent's resident set and serves the next epoch; inside an epoch a
    miss pages the routed adapter in for its request and (``on_miss=None``) takes a free slot
    if there is one, else the set is kept. The request stream depends on the episode seed only,
    never on the actions (common random numbers).

Action Space
    ``Box(-1, 1, (N,), float32)``: a score per adapter. The top-``K`` become resident for the
    epoch (:func:`~edgetwin.sim.compute.adapter_utility.resident_from_scores`, ties to the
    lower index: the rule of the server and of the standalone loop); an adapter scored ``-1``
    (the lower bound; values below are clipped to it) is not loaded, so its slot stays free
    for misses. Loads at the boundary are prefetches: they charge no request.

Observation Space
    ``Dict`` of float32 arrays (named, lossless, as ``edgetwin/PrbPower-v0`` and ARCHITECTURE.md
    §4.3: the dict is what a cache policy reads, through :func:`cache_policy_obs`; SB3 takes it
    with ``MultiInputPolicy`` or after ``FlattenObservation``), all ``[N]`` but ``epoch``:

    ======================  ===========================================================
    ``counts``              requests that named each adapter (their task's own) in the
                            last epoch, / ``epoch_requests`` (the demand), [0, 1]
    ``total_counts``        the same since reset, / requests since reset, [0, 1]
    ``hits`` / ``misses``   requests served by the adapter resident / paged in the last
                            epoch, / ``epoch_requests``, [0, 1]
    ``est_utility``         the router's ``θ̂_aᵀ x̄_a`` on the epoch's mean context of the
                            adapter's requests (``arm_estimates``; 0 if it does not learn),
                            clipped to ±``EST_BOUND`` (10³; utilities are O(1))
    ``uncertainty``         its confidence width ``√(x̄_aᵀ A_a⁻¹ x̄_a)``, [0, 10³]
    ``resident``            1 if resident at the end of the epoch, else 0
    ``load_time_s``         seconds to page each adapter in, [0, 3600]
    ``since_used``          epochs since the adapter last served a request, capped at
                            ``n_epochs + 1`` (never used)
    ``epoch``               [1]: epochs served since reset (cold start included) /
                            (``n_epochs`` + 1), [0, 1]
    ======================  ===========================================================

Rewards
    The epoch's net utility: the mean over its requests of ``θ_servedᵀ x − λ · latency_s``
    (latency: the paging time of a miss, else 0; λ = ``latency_weight_per_s``), the
    ``net_reward`` of :mod:`edgetwin.sim.compute.adapter_utility`. ``info`` also holds the hit
    ratio, the mean utility, latency and oracle regret and the loads of the epoch; ``reset``'s
    info holds those of the cold-start epoch.

Episode End
    ``truncated`` after ``n_epochs`` steps (default 20, or ``ceil(duration_s · rate_rps /
    epoch_requests)`` when ``duration_s`` is given; at least 2); never ``terminated``.
    Registered with ``max_episode_steps=None``: the horizon is the env's own.

Arguments (``gym.make("edgetwin/AdapterCache-v0", **kwargs)``, or the same names in
``overrides={...}``)
    ``n_adapters`` N (20), ``capacity`` K (4, ≤ N), ``dim`` d (8), ``drift`` (``none | rotate |
    permute | smooth``, default ``permute``), ``drift_period`` (5000 requests), ``rotate_step``,
    ``zipf_s`` (1.0), ``noise_std`` (0.1), ``context_spread`` (1.0), ``latency_weight_per_s``
    λ (1.0), ``load_time_s`` (0.05 s, every adapter), ``epoch_requests`` (500), ``n_epochs``
    or ``duration_s`` with ``rate_rps`` (1000 requests/s; used only to turn a simulated
    duration into epochs), ``router`` (a ``route/...`` id, default ``route/cache_aware``, its λ
    set to the env's unless ``router_kwargs`` gives it; ``route/oracle`` is given the
    episode's hidden θ and the env's λ), ``router_kwargs``, ``on_miss`` (None, or
    a ``cache/...`` id asked on every miss inside an epoch, e.g. ``cache/lru``), ``route_block``
    (1: route and learn per request; B > 1: the router's batched API on blocks of B requests,
    faster but with feedback delayed to the block's end, so not the same decisions),
    ``source`` (``loop``, the default, as above; ``server``; ``radio``: see below),
    ``serving`` (``server`` only), ``scenario`` (``radio`` only).

Sources
    ``source="server"``: the requests are a serving workload served by a real ``LLMServer``
    with adapter tiers and per-request routing (:class:`~edgetwin.sim.compute.adapter_route.
    ServerAdapterEpochs`; ``serving``: a serving scenario, dict or YAML path, default
    :data:`DEFAULT_SERVING`; the env's ``n_adapters`` and ``capacity`` override its
    ``serving.lora`` library and slots, its arrival process gives the requests, and the env's
    utility options replace its ``workload.adapters``). ``source="radio"``: the UEs' requests of
    an edge–cloud scenario (``scenario``: a name or YAML path, default ``edge_cloud`` with
    :data:`RADIO_OVERRIDES`) reach its one edge server over the NR uplink. With either, an
    epoch is ``epoch_requests`` arrivals at the server; the action's top K become resident at
    the boundary (idle adapters outside it evicted, the others prefetched through the server's
    serialized loader) and a miss inside the epoch evicts the lowest-scored idle adapter; the
    observation has the same keys (``hits`` / ``misses``: the epoch's arrivals, by whether the
    adapter they were routed to was resident; ``load_time_s`` from the tiers, host or disk);
    the reward is the mean of ``utility − λ · TTFT`` (the server's time to first token) over
    the requests that completed during the epoch, 0 if none did (``info["requests"]``);
    ``load_time_s``, ``rate_rps`` (the serving workload's rate is used), ``on_miss`` and
    ``route_block`` are ``loop`` options. A radio episode also ends at the scenario's horizon.

Bad input
    Every bad argument raises one ``ValueError`` whose one-line message names the argument, its
    allowed values and what was given (an unknown one: ``TypeError`` from ``gym.make``, or
    ``ValueError`` for an unknown key of ``overrides``). ``step`` refuses an action of the
    wrong shape or with a NaN / ±inf entry and clips finite values outside ``[-1, 1]``,
    warning once per env. ``reset(options=...)`` accepts only ``episode_seed``.

Version History
    * v0: initial version; ``source="server"`` / ``"radio"`` added later (the default
      ``"loop"`` is unchanged).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pydantic import ValidationError

from edgetwin.agents.baselines.route import LATENCY_AWARE
from edgetwin.agents.registry import PolicyRegistryError, make_policy, policy_spec
from edgetwin.sim.compute.adapter_route import ServerAdapterEpochs
from edgetwin.sim.compute.adapter_utility import (
    AdapterEpochResult,
    AdapterServingLoop,
    AdapterUtilityConfig,
    AdapterUtilityModel,
)

from .observation import check_action, out_of_range
from .prb_power import CLIP_WARNING, episode_seed_from

__all__ = ["DEFAULTS", "AdapterCacheEnv", "action_from_scores", "cache_policy_obs"]

#: The env's options and their defaults (every one may be given to ``gym.make`` or in
#: ``overrides``).
DEFAULTS: dict[str, Any] = {
    "n_adapters": 20,
    "capacity": 4,
    "dim": 8,
    "drift": "permute",
    "drift_period": 5_000,
    "rotate_step": 1,
    "zipf_s": 1.0,
    "noise_std": 0.1,
    "context_spread": 1.0,
    "latency_weight_per_s": 1.0,
    "load_time_s": 0.05,
    "epoch_requests": 500,
    "n_epochs": None,
    "duration_s": None,
    "rate_rps": 1_000.0,
    "router": "route/cache_aware",
    "router_kwargs": None,
    "on_miss": None,
    "route_block": 1,
    "source": "loop",
    "serving": None,
    "scenario": None,
}
#: Where an episode's requests are served: the standalone loop, or a real LLM server.
SOURCES: tuple[str, ...] = ("loop", "server", "radio")
#: The server and workload of ``source="server"`` when ``serving`` is not given: Qwen2.5-7B on
#: an L40S with rank-64 adapters read at 0.5 GB/s (a 164.7 ms load, as
#: ``examples/adapter_caching.py``), 8 requests/s of geometric prompts (256) and outputs (32).
DEFAULT_SERVING: dict[str, Any] = {
    "name": "adapter_cache_server",
    "serving": {
        "model": "qwen2.5-7b",
        "hardware": "l40s",
        "lora": {
            "n_adapters": 20,
            "max_loras": 4,
            "adapter": {"rank": 64},
            "disk_read_bytes_per_s": 0.5e9,
        },
    },
    "workload": {
        "arrival": {"process": "poisson", "rate_rps": 8.0, "n_requests": 1},
        "prompt_tokens": {"dist": "geometric", "mean": 256},
        "output_tokens": {"dist": "geometric", "mean": 32},
    },
}
#: Fewest epochs (steps) of an episode: one decision would be a one-shot bandit, not a sequential
#: problem (and Gymnasium's ``check_env`` refuses an env that truncates after one step).
MIN_EPOCHS = 2
#: Epochs of an episode when neither ``n_epochs`` nor ``duration_s`` is given.
DEFAULT_EPOCHS = 20
#: (low, high) of the integer options (inclusive); ``capacity`` is also ≤ ``n_adapters``.
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "capacity": (1, 100_000),
    "epoch_requests": (1, 10_000_000),
    "n_epochs": (MIN_EPOCHS, 1_000_000),
    "route_block": (1, 1_000_000),
}
#: (low, high) of the float options; the low end is exclusive where marked ``True``.
FLOAT_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "load_time_s": (0.0, 3600.0, False),
    "duration_s": (0.0, 1e9, True),
    "rate_rps": (0.0, 1e9, True),
}
#: Bound of ``est_utility`` (±) and ``uncertainty`` in the observation, which are clipped to it:
#: utilities of unit contexts are O(1) (‖θ_a‖ ≈ 1) and a LinUCB width is at most
#: ``1/√ridge``, so a finite bound keeps the space finite without ever clipping in practice.
EST_BOUND = 1e3
_CONFIG_FIELDS = tuple(AdapterUtilityConfig.model_fields)
#: Observation keys of the ``[N]`` arrays, in the order of the Dict space.
OBS_KEYS: tuple[str, ...] = (
    "counts",
    "total_counts",
    "hits",
    "misses",
    "est_utility",
    "uncertainty",
    "resident",
    "load_time_s",
    "since_used",
)


#: The edge–cloud run of ``source="radio"`` when ``scenario`` is not given: ``edge_cloud`` cut to
#: one cell of 12 UEs, 10 of them in chat sessions (1 s think time, 60-token prompts, 30-token
#: answers) over the NR uplink and downlink, every request to the site's edge server
#: (Qwen2.5-7B on an L40S, rank-64 adapters read at 0.5 GB/s), for up to an hour of simulated
#: time (the episode ends at its last epoch, or there).
RADIO_OVERRIDES: dict[str, Any] = {
    "duration_s": 3600.0,
    "topology.n_sites": 1,
    "topology.sectors_per_site": 1,
    "topology.ues_per_cell": 12,
    "workload.llm_ues_per_cell": 10,
    "workload.sessions": {
        "turns_mean": 4,
        "think_time_mean_s": 1.0,
        "session_gap_mean_s": 2.0,
        "new_prompt_tokens_mean": 60,
        "output_tokens_mean": 30,
    },
    "nodes": {
        "edge": {
            "model": "qwen2.5-7b",
            "hardware": "l40s",
            "max_num_seqs": 64,
            "lora": {
                "n_adapters": 20,
                "max_loras": 4,
                "adapter": {"rank": 64},
                "disk_read_bytes_per_s": 0.5e9,
            },
        }
    },
    "policies.offload": "edge",
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _resolve(kwargs: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options: defaults, then ``kwargs``, then ``overrides``; each checked (ValueError)."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ValueError(
            f"overrides must be a dict of option names to values or None, got "
            f"{type(overrides).__name__} {overrides!r:.80}"
        )
    unknown = sorted(map(str, set(overrides or {}) - set(DEFAULTS)))
    if unknown:
        raise ValueError(
            f"unknown override(s) {', '.join(unknown)}; allowed: {', '.join(sorted(DEFAULTS))}"
        )
    opt = {**DEFAULTS, **kwargs, **(overrides or {})}
    for name, (lo, hi) in INT_BOUNDS.items():
        v = opt[name]
        if v is None and name == "n_epochs":
            continue
        if not _is_int(v) or not lo <= v <= hi:
            raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v!r:.80}")
    for name, (low, high, open_low) in FLOAT_BOUNDS.items():
        v = opt[name]
        if v is None and name == "duration_s":
            continue
        ok = _is_real(v) and math.isfinite(v) and (v > low if open_low else v >= low) and v <= high
        if not ok:
            side = "(" if open_low else "["
            raise ValueError(f"{name} must be a number in {side}{low:g}, {high:g}], got {v!r:.80}")
    if opt["source"] not in SOURCES:
        raise ValueError(
            f"source must be one of {', '.join(map(repr, SOURCES))}, got {opt['source']!r:.80}"
        )
    if opt["source"] != "server" and opt["serving"] is not None:
        raise ValueError(f"serving is read only with source='server'; got {opt['source']!r}")
    if opt["source"] != "radio" and opt["scenario"] is not None:
        raise ValueError(f"scenario is read only with source='radio'; got {opt['source']!r}")
    if opt["source"] != "loop" and (opt["on_miss"] is not None or opt["route_block"] != 1):
        raise ValueError(
            "on_miss and route_block are options of source='loop'; with a server the "
            f"server's loader picks victims by the action's scores and routes per request, got "
            f"on_miss={opt['on_miss']!r:.40}, route_block={opt['route_block']!r}"
        )
    if opt["n_epochs"] is not None and opt["duration_s"] is not None:
        raise ValueError(
            f"give at most one of n_epochs and duration_s, got n_epochs={opt['n_epochs']} and "
            f"duration_s={opt['duration_s']}"
        )
    return opt


def _utility_config(opt: Mapping[str, Any]) -> AdapterUtilityConfig:
    """The utility model's config from the options; a bad field → one-line ValueError."""
    try:
        return AdapterUtilityConfig(**{k: opt[k] for k in _CONFIG_FIELDS})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(map(str, err["loc"]))
        raise ValueError(f"{field}: {err['msg']}, got {err.get('input')!r:.80}") from None


def _make_family_policy(pid: Any, family: str, kwargs: Any, what: str) -> Any:
    """A registered policy of ``family``; a wrong id or keyword → one-line ValueError."""
    if not isinstance(pid, str) or not pid.startswith(f"{family}/"):
        raise ValueError(f"{what} must be a registered '{family}/...' policy id, got {pid!r:.80}")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ValueError(f"{what}_kwargs must be a dict or None, got {kwargs!r:.80}")
    try:
        policy_spec(pid)
        return make_policy(pid, **dict(kwargs or {}))
    except PolicyRegistryError as exc:
        raise ValueError(f"{what}: {exc}") from None


class _ServerSetup:
    """What ``source="server"`` builds once per env: the serving scenario, its cost model."""

    def __init__(self, serving: Any, n_adapters: int, capacity: int) -> None:
        from edgetwin.scenarios.load import read_yaml_file
        from edgetwin.scenarios.serve import (
            build_cost_model,
            default_kv_blocks,
            lora_server_kwargs,
            server_config,
        )
        from edgetwin.scenarios.serving_schema import validate_serving

        if serving is None:
            raw: Any = DEFAULT_SERVING
        elif isinstance(serving, str):
            from pathlib import Path

            raw = read_yaml_file(Path(serving), "serving scenario")
        elif isinstance(serving, Mapping):
            raw = serving
        else:
            raise ValueError(
                f"serving must be a serving scenario (a dict or a YAML path) or None, got "
                f"{type(serving).__name__}"
            )
        config = validate_serving(raw, source="(the env's serving option)")
        s = config.serving
        if s.lora is None:
            raise ValueError("serving: the scenario's serving.lora (the adapter tiers) is missing")
        if s.replicas != 1:
            raise ValueError(f"serving.replicas must be 1 here (one edge server), got {s.replicas}")
        # the env's N and K are the library and the GPU slots (they override the scenario's)
        lora = s.lora.model_copy(update={"n_adapters": n_adapters, "max_loras": capacity})
        try:
            lora = type(lora).model_validate(lora.model_dump())
        except ValidationError as exc:
            raise ValueError(f"serving.lora: {exc.errors()[0]['msg']}") from None
        kv_blocks = s.kv_blocks or default_kv_blocks(s.model, s.hardware, s.block_size)
        self.spec = s.model_copy(update={"lora": lora, "kv_blocks": kv_blocks})
        self.config = config
        self.cost, _info = build_cost_model(s.model, s.hardware, s.profiles)
        self.server_config = server_config(self.spec)
        self.lora_kwargs = lora_server_kwargs(self.spec)
        arrival = config.workload.arrival
        self.rate_rps = arrival.rate_rps if arrival is not None else None

    def workload(self, n_requests: int) -> Any:
        """The workload section with exactly ``n_requests`` requests and no adapter column."""
        w = self.config.workload
        if w.arrival is not None:
            arrival = w.arrival.model_copy(update={"n_requests": n_requests, "duration_s": None})
            return w.model_copy(update={"arrival": arrival, "adapters": None})
        return w.model_copy(update={"max_requests": n_requests, "adapters": None})

    def build(self, router: Any, model: AdapterUtilityModel, n_requests: int, seed: int) -> Any:
        """A fresh server with routing and its epoch runner over ``n_requests`` arrivals."""
        import simpy

        from edgetwin.scenarios.serve import load_workload
        from edgetwin.sim.compute.adapter_route import AdapterContexts
        from edgetwin.sim.compute.server import LLMServer
        from edgetwin.sim.rng import RandomStreams
        from edgetwin.sim.workload.request_log import RequestLog

        work = load_workload(self.workload(n_requests), RandomStreams(seed))
        if len(work) < n_requests:
            raise ValueError(
                f"serving: the trace holds {len(work)} requests; the episode needs {n_requests}"
            )
        log = RequestLog(work["arrival_s"], work["prompt_tokens"], work["output_tokens"])
        env = simpy.Environment()
        server = LLMServer(
            env,
            self.server_config,
            self.cost,
            name="edge",
            request_log=log,
            route_policy=router,
            adapter_contexts=AdapterContexts(model),
            **self.lora_kwargs,
        )
        return env, server, log


class _RadioSetup:
    """What ``source="radio"`` validates once per env: the edge–cloud scenario.

    The env's utility options become the scenario's ``workload.adapters`` and its N and K the
    edge server's library and GPU slots; the edge server's router is replaced by the env's.
    """

    def __init__(self, scenario: Any, config: AdapterUtilityConfig, capacity: int) -> None:
        from edgetwin.scenarios.load import load_scenario

        if scenario is not None and not isinstance(scenario, str):
            raise ValueError(
                f"scenario must be an edge-cloud scenario name or YAML path, or None, got "
                f"{type(scenario).__name__}"
            )
        overrides: dict[str, Any] = dict(RADIO_OVERRIDES) if scenario is None else {}
        overrides["workload.adapters"] = {**config.model_dump(), "router": "route/fixed"}
        overrides["nodes.edge.lora.n_adapters"] = config.n_adapters
        overrides["nodes.edge.lora.max_loras"] = capacity
        self.config = load_scenario(scenario or "edge_cloud", overrides)
        nodes = self.config.nodes
        assert nodes is not None
        if nodes.edge is None or nodes.edge.replicas != 1 or self.config.topology.n_sites != 1:
            raise ValueError(
                "scenario: source='radio' needs one edge server (nodes.edge with replicas: 1, "
                "topology.n_sites: 1)"
            )

    def build(self, router: Any, seed: int) -> tuple[Any, Any]:
        """The episode's simulation, started; its edge server routing with ``router``."""
        from edgetwin.scenarios.builder import build

        sim = build(self.config, seed=seed)
        systems = [c for c in sim.components.values() if hasattr(c, "servers")]
        server = systems[0].servers["edge"][0]
        server.routing.attach(router)
        return sim, server


def cache_policy_obs(
    obs: Mapping[str, np.ndarray], *, capacity: int, epoch_requests: int, n_epochs: int
) -> dict[str, Any]:
    """The env observation as the ``cache`` family's observation dict at an epoch boundary.

    What lets a registered cache policy (``agents/baselines/cache.py``) act in the env (see
    :meth:`AdapterCacheEnv.cache_policy_obs`): counts are scaled back to requests (exact: the
    env scaled integers), ``last_used`` is minus the age in epochs (only its order matters;
    ``-inf`` if never used), ``requested`` is ``-1`` (a boundary) and ``epoch`` the epochs
    served. ``next_popularity`` (``cache/oracle``) is not observable.

    Args:
        obs: An observation of :class:`AdapterCacheEnv`.
        capacity: The env's K.
        epoch_requests: The env's requests per epoch.
        n_epochs: The env's epochs per episode.
    """

    def scaled(key: str, total: float) -> np.ndarray:
        return np.rint(np.asarray(obs[key], dtype=np.float64) * total).astype(np.int64)

    epoch = round(float(obs["epoch"][0]) * (n_epochs + 1))
    since = np.asarray(obs["since_used"], dtype=np.float64)
    return {
        "resident": np.asarray(obs["resident"]) > 0.5,
        "capacity": int(capacity),
        "requested": -1,
        "epoch": epoch,
        "counts": scaled("counts", epoch_requests),
        "total_counts": scaled("total_counts", epoch * epoch_requests),
        "hits": scaled("hits", epoch_requests),
        "misses": scaled("misses", epoch_requests),
        "last_used": np.where(since >= n_epochs + 1, -np.inf, -since),
        "est_utility": np.asarray(obs["est_utility"], dtype=np.float64),
        "uncertainty": np.asarray(obs["uncertainty"], dtype=np.float64),
        "load_time_s": np.asarray(obs["load_time_s"], dtype=np.float64),
    }


def action_from_scores(scores: Any) -> np.ndarray:
    """An env action whose top-K is the top-K of a cache policy's ``scores`` (float32 [N]).

    Finite scores map by rank (ties to the lower index, as
    :func:`~edgetwin.sim.compute.adapter_utility.resident_from_scores`) into ``(-1, 1)``,
    ``-inf`` to ``-1`` (not loaded). How a baseline's choices are replayed in the env.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    order = np.argsort(-scores, kind="stable")
    action = np.empty(n, dtype=np.float32)
    action[order] = (1.0 - 2.0 * np.arange(1, n + 1) / (n + 1)).astype(np.float32)
    action[scores == -np.inf] = -1.0
    return action


class AdapterCacheEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Gymnasium env of the epoch-level adapter cache (see the module docstring)."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gym.Env's attribute)

    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode {render_mode!r} is not supported; allowed: None")
        unknown = sorted(set(kwargs) - set(DEFAULTS))
        if unknown:
            raise TypeError(
                f"AdapterCacheEnv got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(DEFAULTS))}, overrides, render_mode"
            )
        opt = _resolve(kwargs, overrides)
        self.config = _utility_config(opt)
        n = self.config.n_adapters
        if opt["capacity"] > n:
            raise ValueError(
                f"capacity must be an integer in [1, n_adapters={n}], got {opt['capacity']}"
            )
        self.options = opt
        self.n_adapters, self.capacity = n, int(opt["capacity"])
        self.epoch_requests = int(opt["epoch_requests"])
        self.source = str(opt["source"])
        self._server: _ServerSetup | None = None
        self._radio: _RadioSetup | None = None
        if self.source == "server":
            self._server = _ServerSetup(opt["serving"], n, self.capacity)
        elif self.source == "radio":
            self._radio = _RadioSetup(opt["scenario"], self.config, self.capacity)
        if opt["duration_s"] is not None:
            rate = opt["rate_rps"]
            if self._server is not None and self._server.rate_rps is not None:
                rate = self._server.rate_rps  # the serving workload's own arrival rate
            requests = opt["duration_s"] * rate
            self.n_epochs = max(MIN_EPOCHS, math.ceil(requests / self.epoch_requests))
        else:
            self.n_epochs = int(opt["n_epochs"] or DEFAULT_EPOCHS)
        router_kwargs = dict(opt["router_kwargs"] or {})
        if opt["router"] in LATENCY_AWARE:
            router_kwargs.setdefault("latency_weight_per_s", self.config.latency_weight_per_s)
        self.router = _make_family_policy(opt["router"], "route", router_kwargs, "router")
        self.on_miss = (
            None
            if opt["on_miss"] is None
            else _make_family_policy(opt["on_miss"], "cache", None, "on_miss")
        )
        self.load_time_s = float(opt["load_time_s"])
        self.route_block = int(opt["route_block"])
        vec = spaces.Box(-EST_BOUND, EST_BOUND, (n,), np.float32)
        unit = spaces.Box(0.0, 1.0, (n,), np.float32)
        pos = spaces.Box(0.0, EST_BOUND, (n,), np.float32)
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {
                "counts": unit,
                "total_counts": unit,
                "hits": unit,
                "misses": unit,
                "est_utility": vec,
                "uncertainty": pos,
                "resident": unit,
                "load_time_s": spaces.Box(0.0, FLOAT_BOUNDS["load_time_s"][1], (n,), np.float32),
                "since_used": spaces.Box(0.0, self.n_epochs + 1.0, (n,), np.float32),
                "epoch": spaces.Box(0.0, 1.0, (1,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (n,), np.float32)
        self._loop: AdapterServingLoop | ServerAdapterEpochs | None = None
        self._steps = 0
        self._warned_clip = False

    @property
    def loop(self) -> AdapterServingLoop | ServerAdapterEpochs | None:
        """The running episode's serving loop (its ``cache_obs``), ``None`` before reset.

        With ``source="server"`` the :class:`ServerAdapterEpochs` over the episode's server
        (``loop.server``: its request table, its pool).
        """
        return self._loop

    # --- observation -----------------------------------------------------------------------------
    def _observe(self) -> dict[str, np.ndarray]:
        loop = self._loop
        assert loop is not None
        cobs, e, f32 = loop.cache_obs, float(self.epoch_requests), np.float32
        cap = self.n_epochs + 1.0
        since = np.minimum((loop.position - loop.last_used) / e, cap)  # never used: +inf → cap
        return {
            "counts": (loop.counts / e).astype(f32),
            "total_counts": (loop.total_counts / max(loop.position, 1)).astype(f32),
            "hits": (loop.hits / e).astype(f32),
            "misses": (loop.misses / e).astype(f32),
            "est_utility": np.clip(cobs["est_utility"], -EST_BOUND, EST_BOUND).astype(f32),
            "uncertainty": np.clip(cobs["uncertainty"], 0.0, EST_BOUND).astype(f32),
            "resident": loop.resident.astype(f32),
            "load_time_s": loop.load_s.astype(f32),
            "since_used": since.astype(f32),
            "epoch": np.array([cobs["epoch"] / cap], dtype=f32),
        }

    def cache_policy_obs(self, obs: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """This env's observation as a cache policy's observation (:func:`cache_policy_obs`)."""
        return cache_policy_obs(
            obs,
            capacity=self.capacity,
            epoch_requests=self.epoch_requests,
            n_epochs=self.n_epochs,
        )

    def _info(self, res: AdapterEpochResult) -> dict[str, Any]:
        def mean(x: np.ndarray) -> float:
            return float(x.mean()) if x.size else math.nan

        info = {
            "hit_ratio": mean(res.hit),
            "mean_utility": mean(res.utility),
            "mean_latency_s": mean(res.latency_s),
            "mean_regret": mean(res.best_utility - res.utility),
            "net_utility": res.mean_net_reward,
            "n_loads": res.n_loads,
            "requests": int(res.task.shape[0]),
        }
        loop = self._loop
        if isinstance(loop, ServerAdapterEpochs):  # requests above: those completed in it
            routed = int(loop.hits.sum() + loop.misses.sum())
            info["arrivals"] = int(loop.counts.sum())
            info["route_hit_ratio"] = float(loop.hits.sum()) / routed if routed else math.nan
            info["now_s"] = float(loop.env.now)
        return info

    # --- Gymnasium API ---------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Draw a scenario from the episode seed and serve the cold-start epoch.

        ``options={"episode_seed": S}`` uses scenario seed ``S`` (θ, popularity, requests):
        the requests of ``simulate_adapter_serving(AdapterUtilityModel(config, seed=S), ...)``.

        Raises:
            ValueError: An option other than ``episode_seed``, or an ``episode_seed`` that is
                not an integer in ``0..2**32 − 1``.
        """
        super().reset(seed=seed)
        episode_seed = episode_seed_from(options, self.np_random, strict=True)
        model = AdapterUtilityModel(self.config, seed=episode_seed)
        self.router.reset(seed=episode_seed)
        sim = server = None
        if self._radio is not None:  # the edge server's model is seeded by the simulation
            sim, server = self._radio.build(self.router, episode_seed)
            model = server.routing.model
        if self.options["router"] == "route/oracle":  # the oracle knows the episode's hidden θ
            self.router.theta = model.theta  # type: ignore[attr-defined]
        if self.on_miss is not None:
            self.on_miss.reset(seed=episode_seed)
        if sim is not None:  # UEs' requests over the radio to the edge server
            assert server is not None
            horizon = sim.start()
            self._loop = ServerAdapterEpochs(
                sim.env, server, epoch_requests=self.epoch_requests, until=horizon
            )
        elif self._server is not None:  # the real server, one epoch of arrivals per step
            n_requests = (self.n_epochs + 1) * self.epoch_requests
            env, server, log = self._server.build(self.router, model, n_requests, episode_seed)
            self._loop = ServerAdapterEpochs(env, server, log, epoch_requests=self.epoch_requests)
        else:
            self._loop = AdapterServingLoop(
                model,
                router=self.router,
                capacity=self.capacity,
                epoch_requests=self.epoch_requests,
                load_time_s=self.load_time_s,
                on_miss=self.on_miss,
                route_block=self.route_block,
            )
        self._steps = 0
        res = self._loop.step(np.full(self.n_adapters, -np.inf))  # cold start: misses fill
        info = {"episode_seed": episode_seed, "reward": res.mean_net_reward, **self._info(res)}
        return self._observe(), info

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Make the action's top-K resident, serve one epoch, reward its net utility.

        Raises:
            ValueError: An action of the wrong shape or with a NaN / ±inf entry (finite values
                outside ``[-1, 1]`` are clipped, with one warning per env).
            RuntimeError: Before :meth:`reset` or after the episode was truncated.
        """
        loop = self._loop
        if loop is None or self._steps >= self.n_epochs:
            raise RuntimeError("call reset() before step() (and after an episode is truncated)")
        a = check_action(action, (self.n_adapters,))
        if not self._warned_clip and out_of_range(a):
            self._warned_clip = True
            warnings.warn(CLIP_WARNING, UserWarning, stacklevel=2)
        a = np.clip(np.asarray(a, dtype=np.float64), -1.0, 1.0)
        scores = np.where(a <= -1.0, -np.inf, a)
        res = loop.step(scores)
        self._steps += 1
        if isinstance(loop, ServerAdapterEpochs) and loop.ended:  # the scenario's horizon
            self._steps = self.n_epochs
        return (
            self._observe(),
            res.mean_net_reward,
            False,
            self._steps >= self.n_epochs,
            self._info(res),
        )
