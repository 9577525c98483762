"""``edgetwin/DraftLengthMARL-v0``: every drafting device of the cell chooses its own draft length.

A PettingZoo :class:`~pettingzoo.AECEnv` over the episode driver of ``edgetwin/DraftLength-v0``
(:class:`~edgetwin.envs.draft_length.DraftEpisode`, one :func:`~edgetwin.scenarios.builder.build`
simulation with the ``draft`` decision point detached and no device delegated to a baseline).

Description
    The agents are the cell's drafting UEs (``c0u0``, ``c0u1``, ...). They compete for the
    uplink's PRBs and for the cloud's batch. The agent selected is the device whose round
    asks for a draft length next in simulated time; two devices asking in the same instant
    are served one after the other (no simulated time passes between them). Devices without a
    request (thinking, between sessions) are not selected.

    Why AEC: rounds of different devices are asynchronous (each starts when the device's
    previous reply arrives), so there is no instant at which all agents move together.

Action Space
    ``Discrete(k_max + 1)`` per agent, as ``edgetwin/DraftLength-v0`` (cut to the round's cap).

Observation Space
    The float32 feature vector of ``edgetwin/DraftLength-v0`` at the agent's latest decision
    (all zeros before its first).

Rewards
    When a device's round ends, that device receives ``(N − λ·E) / T`` (tokens delivered net of
    priced energy per second of the round); ``last()`` returns what an agent gathered since its
    previous turn (PettingZoo's ``_cumulative_rewards``). ``infos[agent]`` holds its latest
    round's ``k``, ``accepted``, ``tokens``, ``round_s``, ``energy_j``.

Episode End
    At the scenario's simulated horizon every agent is truncated (never terminated); each then
    steps once with ``None`` and is removed.

Arguments:
    ``scenario`` (default ``specdec_jetson``), ``energy_price`` (tokens per J, default 0.1),
    ``overrides``, ``render_mode`` (only ``None``). ``reset(options=...)`` understands only
    ``episode_seed``; other keys are ignored with a ``UserWarning`` (PettingZoo's ``api_test``
    passes ``options={"options": 1}``).

Version History
    * v0: initial version.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import AECEnv
from pettingzoo.utils import wrappers

from edgetwin.scenarios.schema import ScenarioConfig

from .draft_length import (
    FEATURE_HIGH,
    DraftEpisode,
    _check_price,
    check_discrete_action,
    drafting_ues,
    feature_names,
    load_specdec_scenario,
)
from .prb_power import episode_seed_from


class DraftLengthAECEnv(AECEnv[str, np.ndarray, Any]):
    """PettingZoo AEC env of every device's draft length (see the module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "name": "edgetwin/DraftLengthMARL-v0",
        "is_parallelizable": False,
    }

    def __init__(
        self,
        scenario: str | ScenarioConfig = "specdec_jetson",
        energy_price: float = 0.1,
        overrides: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        if render_mode is not None:
            raise ValueError(f"render_mode {render_mode!r} is not supported; allowed: None")
        self.config = load_specdec_scenario(scenario, overrides)
        self.energy_price = _check_price(energy_price)
        self.render_mode = render_mode
        assert self.config.speculative is not None
        self.k_max = self.config.speculative.k_max
        self.feature_names = feature_names(self.k_max)
        n = len(self.feature_names)
        self.possible_agents = drafting_ues(self.config)
        self.agents: list[str] = []
        self.observation_spaces: dict[str, spaces.Space[Any]] = {
            a: spaces.Box(0.0, FEATURE_HIGH, (n,), np.float32) for a in self.possible_agents
        }
        self.action_spaces: dict[str, spaces.Space[Any]] = {
            a: spaces.Discrete(self.k_max + 1) for a in self.possible_agents
        }
        self._np_random: np.random.Generator | None = None
        self._episode: DraftEpisode | None = None
        self._obs: dict[str, np.ndarray] = {}
        self.episode_seed: int | None = None

    def observation_space(self, agent: str) -> spaces.Space[Any]:
        """The feature ``Box`` of ``agent`` (the same object on every call)."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space[Any]:
        """``Discrete(k_max + 1)`` of ``agent`` (the same object on every call)."""
        return self.action_spaces[agent]

    @property
    def np_random(self) -> np.random.Generator:
        """The env's generator of episode seeds (seeded by ``reset(seed=...)``)."""
        if self._np_random is None:
            self._np_random, _ = seeding.np_random()
        return self._np_random

    @property
    def episode(self) -> DraftEpisode:
        """The running episode."""
        if self._episode is None:
            raise RuntimeError("call reset() first")
        return self._episode

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Rebuild the simulation and run to the first device's first round.

        Raises:
            ValueError: ``options`` not a dict, or a bad ``episode_seed``.
            RuntimeError: No device drafts before the horizon.
        """
        if seed is not None:
            self._np_random, _ = seeding.np_random(seed)
        episode_seed = episode_seed_from(options, self.np_random, strict=False)
        self.episode_seed = episode_seed
        ep = DraftEpisode(self.config, episode_seed, None, None, self.energy_price)
        self._episode = ep
        if not ep.run_to_decision():
            raise RuntimeError(
                "the scenario reached its horizon before any device drafted (raise duration_s)"
            )
        ep.new_rounds()
        n = len(self.feature_names)
        self._obs = {a: np.zeros(n, np.float32) for a in self.possible_agents}
        self._obs[ep.ue] = ep.features()
        self.agents = list(self.possible_agents)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos: dict[str, dict[str, Any]] = {
            a: {"episode_seed": episode_seed} for a in self.agents
        }
        self.agent_selection = ep.ue
        self._skip_agent_selection = None

    def observe(self, agent: str) -> np.ndarray:
        """The latest observation of ``agent`` (a fresh array)."""
        if agent not in self._obs:
            raise RuntimeError("call reset() before observe()")
        return self._obs[agent].copy()

    def step(self, action: Any) -> None:
        """Apply the selected device's draft length; run to the next device's round.

        Raises:
            ValueError: An action that is not an integer in ``0..k_max`` for a live agent, or
                not ``None`` for a truncated one.
            RuntimeError: Before :meth:`reset`, or once every agent has been removed.
        """
        if self._episode is None or not self.agents:
            raise RuntimeError("call reset() before step() (and after an episode has ended)")
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        ep = self._episode
        k = check_discrete_action(action, self.k_max + 1, f"action of agent {agent!r}")
        self._cumulative_rewards[agent] = 0.0
        self._clear_rewards()
        ep.act(k)
        alive = ep.run_to_decision()
        for who, r, info in ep.new_rounds():
            if who in self.rewards:
                self.rewards[who] += r
                self.infos[who] = info
        if alive:
            self.agent_selection = ep.ue
            self._obs[ep.ue] = ep.features()
        else:
            for a in self.agents:
                self.truncations[a] = True
        self._accumulate_rewards()

    def render(self) -> None:
        """No rendering (``render_mode`` is always ``None``)."""
        return None

    def close(self) -> None:
        """Drop the running episode."""
        self._episode = None


def raw_env(**kwargs: Any) -> DraftLengthAECEnv:
    """The bare :class:`DraftLengthAECEnv`; an unknown keyword raises ``TypeError`` listing all."""
    allowed = list(inspect.signature(DraftLengthAECEnv).parameters)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {', '.join(unknown)} for "
            f"{DraftLengthAECEnv.metadata['name']}; allowed: {', '.join(allowed)}"
        )
    return DraftLengthAECEnv(**kwargs)


def env(**kwargs: Any) -> AECEnv[str, np.ndarray, Any]:
    """:func:`raw_env` wrapped in PettingZoo's ``OrderEnforcingWrapper``."""
    e: AECEnv[str, np.ndarray, Any] = raw_env(**kwargs)
    return wrappers.OrderEnforcingWrapper(e)
