"""Choices shared by the trainers and ``edgetwin train`` (no torch import: the CLI reads them).

``CONTROLS`` mirrors :data:`edgetwin.envs.prb_power.CONTROLS` without importing the simulator
(0.6 s) into the command-line parser; a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Curriculum phases of the hierarchical learner, in their default order.
PHASES: tuple[str, ...] = ("prb", "power", "joint")
#: Families a single PPO agent can control (``PrbPowerEnv(control=...)``).
CONTROLS: tuple[str, ...] = ("prb", "power", "joint")
#: The ``--control`` of ``edgetwin train ppo`` that trains the adapter-cache controller.
CACHE_CONTROL = "cache"
#: The env that ``CACHE_CONTROL`` trains on (no scenario: its options are ``--set`` overrides).
CACHE_ENV = "edgetwin/AdapterCache-v0"
#: Controls of ``edgetwin train ppo``: the PRB/power env's, then the cache controller.
PPO_CONTROLS: tuple[str, ...] = (*CONTROLS, CACHE_CONTROL)
#: Networks of ``edgetwin train ppo``, default first.
ARCHS: tuple[str, ...] = ("per_ue", "flat")
#: Bound of the normalized observations (VecNormalize's ``clip_obs``; MAPPO's running stats).
CLIP_OBS = 10.0


def check_phases(phases: Sequence[str]) -> list[str]:
    """The phases as a list, or ``ValueError`` naming the bad ones and the allowed ones."""
    phases = list(phases)
    bad = [p for p in phases if p not in PHASES]
    if bad or not phases:
        what = f"unknown phase(s) {', '.join(map(repr, bad))}" if bad else "no phase given"
        raise ValueError(f"{what}; allowed: {', '.join(PHASES)}")
    return phases
