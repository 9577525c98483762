"""Policies: the protocol, the registry and the baselines (ARCHITECTURE.md §4.3).

Only ``register_policy`` calls with string entry points live here: listing the registry imports
no policy module (and never torch).
"""

from __future__ import annotations

from edgetwin.agents.protocol import Policy
from edgetwin.agents.registry import (
    PolicyRegistryError,
    PolicySpec,
    families,
    make_policy,
    policy_ids,
    policy_spec,
    pprint_policies,
    register_policy,
    resolve_policy_id,
    unregister_policy,
)

__all__ = [
    "Policy",
    "PolicyRegistryError",
    "PolicySpec",
    "families",
    "make_policy",
    "policy_ids",
    "policy_spec",
    "pprint_policies",
    "register_policy",
    "resolve_policy_id",
    "unregister_policy",
]

_PRB = "edgetwin.agents.baselines.prb"
_POWER = "edgetwin.agents.baselines.power"
_SERVE = "edgetwin.agents.baselines.serve"

# --- PRB schedulers ----------------------------------------------------------------------------
register_policy(
    "prb/rr",
    f"{_PRB}:RoundRobin",
    description="Round robin: PRBs dealt cyclically over UEs with data (equal PRB shares).",
)
register_policy(
    "prb/pf",
    f"{_PRB}:ProportionalFair",
    kwargs={"beta": 0.98},
    description="Proportional fair r/T, β-discounted T as Sionna SYS (Jalali et al. 2000).",
)
register_policy(
    "prb/maxrate",
    f"{_PRB}:MaxRate",
    description="Max rate (max C/I): each PRB to the UE with the best achievable rate.",
)

# --- uplink PRB schedulers: the downlink classes on the ``ul_prb`` observation ---------------
register_policy(
    "ul_prb/rr",
    f"{_PRB}:RoundRobin",
    description="Uplink round robin: PRBs dealt cyclically over UEs the gNB can schedule.",
)
register_policy(
    "ul_prb/pf",
    f"{_PRB}:ProportionalFair",
    kwargs={"beta": 0.98},
    description="Uplink proportional fair r/T on the SRS-based rates (Jalali et al. 2000).",
)
register_policy(
    "ul_prb/maxrate",
    f"{_PRB}:MaxRate",
    description="Uplink max rate: each PRB to the schedulable UE with the best estimated rate.",
)

# --- power allocators --------------------------------------------------------------------------
register_policy(
    "power/equal",
    f"{_POWER}:EqualPower",
    description="Maximum power split equally over the used PRBs.",
)
register_policy(
    "power/waterfilling",
    f"{_POWER}:WaterFilling",
    description="Water-filling over the used PRBs (Cover & Thomas §9.4).",
)
register_policy(
    "power/alpha_fair",
    f"{_POWER}:AlphaFair",
    kwargs={"fairness": 1, "guaranteed_power_ratio": 0.5},
    description="α-fair per-UE power of Sionna SYS (f=1: proportional fair), equal per PRB.",
)

# --- LLM server request schedulers ------------------------------------------------------------
register_policy(
    "serve/fcfs",
    f"{_SERVE}:FCFS",
    description="First come, first served (queue order; preempted requests at the head).",
)
register_policy(
    "serve/sjf",
    f"{_SERVE}:SJF",
    description="Shortest prompt first, ties by arrival (non-preemptive SJF).",
)
register_policy(
    "serve/srpt",
    f"{_SERVE}:SRPT",
    description="Oracle: fewest output tokens left first (SRPT, Schrage 1968).",
)

# --- offloading: where a request runs (local / edge / cloud) ------------------------------------
_OFFLOAD = "edgetwin.agents.baselines.offload"
for _tier in ("local", "edge", "cloud"):
    register_policy(
        f"offload/{_tier}",
        f"{_OFFLOAD}:Fixed",
        kwargs={"tier": _tier},
        description=f"Every request runs {'on the UE' if _tier == 'local' else 'at the ' + _tier}.",
    )
register_policy(
    "offload/min_latency",
    f"{_OFFLOAD}:MinLatency",
    description="The tier with the least estimated up + queue + compute + down time.",
)

# --- trained agents (torch; imported only when built) -------------------------------------------
_RL = "edgetwin.agents.rl.torch_policy:TorchPolicy"
register_policy(
    "prb/ppo",
    _RL,
    kwargs={"family": "prb"},
    requires=("torch",),
    description="Trained PRB actor from a checkpoint: --policy prb=ppo:PATH (SB3 PPO or MAPPO).",
)
register_policy(
    "power/ppo",
    _RL,
    kwargs={"family": "power"},
    requires=("torch",),
    description="Trained power actor from a checkpoint: --policy power=ppo:PATH.",
)

# --- draft length of speculative decoding across the radio (issue 11) --------------------------
_DRAFT = "edgetwin.agents.baselines.draft"
register_policy(
    "draft/fixed",
    f"{_DRAFT}:FixedDraft",
    kwargs={"k": 4},
    description="Always draft k tokens (capped at k_max).",
)
register_policy(
    "draft/osd",
    f"{_DRAFT}:OnlineSD",
    description="argmax_k E[N(α,k)]/(c·k+1), c = draft/target cost (Online SD, 2310.07177).",
)
register_policy(
    "draft/specdecpp",
    f"{_DRAFT}:SpecDecPP",
    description="Draft while predicted P(some token rejected) ≤ h (SpecDec++, 2405.19715).",
)
register_policy(
    "draft/flexspec",
    f"{_DRAFT}:FlexSpec",
    description="Max expected tokens/s of the round under an energy budget (FlexSpec, 2601.00644).",
)
register_policy(
    "draft/ppo",
    "edgetwin.agents.rl.draft:DraftPPOPolicy",
    requires=("torch",),
    description="Trained draft-length actor (python -m edgetwin.agents.rl.draft): draft/ppo:PATH.",
)

# --- LoRA adapter cache (slow timescale: on a miss and at epoch boundaries; issue 10) ----------
_CACHE = "edgetwin.agents.baselines.cache"
register_policy(
    "cache/lru",
    f"{_CACHE}:LeastRecentlyUsed",
    description="LRU: keep the K most recently served adapters.",
)
register_policy(
    "cache/lfu",
    f"{_CACHE}:LeastFrequentlyUsed",
    description="Perfect LFU: keep the K adapters requested most often since reset.",
)
register_policy(
    "cache/static",
    f"{_CACHE}:StaticTopK",
    description="Static top-K by prior popularity (or by the first epoch's counts).",
)
register_policy(
    "cache/random",
    f"{_CACHE}:RandomReplacement",
    description="Random replacement: a miss evicts a uniformly chosen resident adapter.",
)
register_policy(
    "cache/oracle",
    f"{_CACHE}:PopularityOracle",
    description="Oracle: the K most popular adapters of the next epoch, at each boundary.",
)
register_policy(
    "cache/polar",
    f"{_CACHE}:Polar",
    kwargs={"alpha": 1.0},
    description="POLAR fixed epochs: top-K by demand x UCB utility (Li & Li, arXiv 2604.16583).",
)
register_policy(
    "cache/polar_plus",
    f"{_CACHE}:PolarPlus",
    kwargs={"alpha": 1.0, "explore_slots": 1},
    description="POLAR+: doubling epochs, forced exploration slots (Li & Li, arXiv 2604.16583).",
)
register_policy(
    "cache/ppo",
    _RL,
    kwargs={"family": "cache"},
    requires=("torch",),
    description="Trained cache actor (edgetwin train ppo --control cache): cache/ppo:PATH.",
)

# --- LoRA adapter routing (fast timescale: per request with a context x; issue 10) -------------
_ROUTE = "edgetwin.agents.baselines.route"
register_policy(
    "route/fixed",
    f"{_ROUTE}:OwnAdapter",
    description="Each request to its own task's adapter.",
)
register_policy(
    "route/linucb",
    f"{_ROUTE}:LinearUCB",
    kwargs={"alpha": 1.0, "latency_weight_per_s": 0.0},
    description="Disjoint LinUCB (Li et al. 2010), residency ignored; Sherman-Morrison A^-1.",
)
register_policy(
    "route/cache_aware",
    f"{_ROUTE}:LinearUCB",
    kwargs={"alpha": 1.0, "latency_weight_per_s": 1.0},
    description="POLAR's router: LinUCB score minus lambda x paging time if not resident.",
)
register_policy(
    "route/greedy",
    f"{_ROUTE}:LinearUCB",
    kwargs={"alpha": 0.0, "latency_weight_per_s": 0.0},
    description="Greedy ridge regression per adapter (LinUCB with alpha = 0).",
)
register_policy(
    "route/oracle",
    f"{_ROUTE}:TrueUtilityOracle",
    description="Oracle: argmax of the true theta^T x - lambda x paging time.",
)
