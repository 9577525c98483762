"""Gymnasium and PettingZoo environments (ARCHITECTURE.md §4.5, §4.7).

Only registrations with string entry points live here (no heavy imports). ``import edgetwin.envs``
registers:

* ``edgetwin/PrbPower-v0`` (Gymnasium): per-slot PRB and/or power control of one NR cell,
  ``gym.make("edgetwin/PrbPower-v0", scenario="nr_cell", control="joint")``; B of them stepped
  as one batch: ``gym.make_vec("edgetwin/PrbPower-v0", num_envs=B,
  vectorization_mode="vector_entry_point")``.
* ``edgetwin/DraftLength-v0`` (Gymnasium): the draft length of one device's speculative rounds
  across the radio, one round per step, ``gym.make("edgetwin/DraftLength-v0",
  scenario="specdec_jetson")``.
* ``edgetwin/AdapterCache-v0`` (Gymnasium): which LoRA adapters an edge server keeps resident,
  one cache epoch per step, ``gym.make("edgetwin/AdapterCache-v0", n_adapters=20, capacity=4)``.

and lists in :data:`MARL_ENVS` the PettingZoo envs, created with :func:`make_marl`:

* ``edgetwin/PrbPowerMARL-v0`` (PettingZoo AEC): the same cell with a PRB agent and a power
  agent acting in turn in every slot, ``make_marl("edgetwin/PrbPowerMARL-v0", scenario=...)``.
* ``edgetwin/DraftLengthMARL-v0`` (PettingZoo AEC): every drafting device of the cell is an
  agent choosing its draft length at each of its rounds (they share the PRBs and the cloud batch).

PettingZoo ≥ 1.27 also has an official registry (``pettingzoo.register("aec", id,
entry_point=...)`` and ``pettingzoo.make("aec", id, **kwargs)``); the dict here keeps
``import edgetwin.envs`` free of the PettingZoo import and works with older PettingZoo too.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from gymnasium.envs.registration import register

register(
    id="edgetwin/PrbPower-v0",
    entry_point="edgetwin.envs.prb_power:PrbPowerEnv",
    # gym.make_vec(..., vectorization_mode="vector_entry_point"): B envs as one cell batch
    vector_entry_point="edgetwin.envs.prb_power_vector:PrbPowerVectorEnv",
    kwargs={"scenario": "nr_cell", "control": "joint"},
    max_episode_steps=None,  # the simulated horizon is the only time limit (truncated)
)
register(
    id="edgetwin/DraftLength-v0",
    entry_point="edgetwin.envs.draft_length:DraftLengthEnv",
    kwargs={"scenario": "specdec_jetson"},
    max_episode_steps=None,  # the simulated horizon is the only time limit (truncated)
)
register(
    id="edgetwin/AdapterCache-v0",
    entry_point="edgetwin.envs.adapter_cache:AdapterCacheEnv",
    max_episode_steps=None,  # the env's n_epochs is the only time limit (truncated)
)

#: PettingZoo env id → ``"module:factory"`` of its wrapped AEC env.
MARL_ENVS: dict[str, str] = {
    "edgetwin/PrbPowerMARL-v0": "edgetwin.envs.prb_power_marl:env",
    "edgetwin/DraftLengthMARL-v0": "edgetwin.envs.draft_length_marl:env",
}


def make_marl(env_id: str, **kwargs: Any) -> Any:
    """Create the PettingZoo env registered as ``env_id`` in :data:`MARL_ENVS`.

    Args:
        env_id: A key of :data:`MARL_ENVS`, e.g. ``"edgetwin/PrbPowerMARL-v0"``.
        **kwargs: Keyword arguments of the env's factory (e.g. ``scenario``, ``overrides``).

    Returns:
        The env (a wrapped ``pettingzoo.AECEnv``); call ``reset()`` before use.

    Raises:
        ValueError: For an unknown id, listing the allowed ones (and the closest match), or a
            bad argument value (see the env's docstring).
        TypeError: For an unknown keyword argument, listing the allowed ones (Python's
            exception for a bad keyword, as ``gymnasium.make`` raises).
    """
    if not isinstance(env_id, str) or env_id not in MARL_ENVS:
        close = difflib.get_close_matches(env_id, list(MARL_ENVS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown MARL env id {env_id!r}{hint}; allowed: {', '.join(sorted(MARL_ENVS))}"
        )
    module, _, attr = MARL_ENVS[env_id].partition(":")
    factory = getattr(importlib.import_module(module), attr)
    return factory(**kwargs)
