"""Analytic baseline policies (numpy only).

Kernels are pure functions on arrays with any leading batch dimensions; the policy classes wrap
them with the per-episode state (averages, pointers) and implement ``reset``/``act``.
"""

from __future__ import annotations

from edgetwin.agents.baselines.power import (
    AlphaFair,
    EqualPower,
    WaterFilling,
    alpha_fair,
    equal_power,
    water_filling,
)
from edgetwin.agents.baselines.prb import (
    MaxRate,
    ProportionalFair,
    RoundRobin,
    max_rate,
    proportional_fair,
    round_robin,
)

__all__ = [
    "AlphaFair",
    "EqualPower",
    "MaxRate",
    "ProportionalFair",
    "RoundRobin",
    "WaterFilling",
    "alpha_fair",
    "equal_power",
    "max_rate",
    "proportional_fair",
    "round_robin",
    "water_filling",
]
