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
