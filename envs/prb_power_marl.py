"""``edgetwin/PrbPowerMARL-v0``: the hierarchical PRB + power controller as two cooperating agents.

A PettingZoo :class:`~pettingzoo.AECEnv` over the same episode driver as ``edgetwin/PrbPower-v0``
(:class:`~edgetwin.envs.prb_power.PrbPowerEpisode`: one :func:`~edgetwin.scenarios.builder.build`
simulation with the ``prb`` and ``power`` decision points detached). There is no second copy of
the physics: with the same seed and actions it produces exactly the episode of
``PrbPowerEnv(control="joint")``.

Description
    Two agents act in every slot in which the cell has data (idle slots are skipped by the
    simulator), always in the order ``"prb"`` then ``"power"``:

    1. the **PRB agent** observes the slot's PRB decision and sets per-UE PRB shares, which the
       quota resolver turns into this slot's PRB map;
    2. the episode runs to the power decision of the *same* slot; the **power agent** observes it
       (its ``prb_count`` is this slot's PRB map) and splits the power budget over the UEs;
    3. the slot is transmitted and the episode runs to the next active slot's PRB decision;
       both agents receive the same cooperative reward.

    Why AEC and not a ``ParallelEnv``: the two decisions are a hierarchy within one slot, not
    simultaneous moves. The power agent must see the PRB map the PRB agent just chose (which
    UEs hold how many PRBs), so it has to act *after* the PRB agent, on an observation that
    depends on the PRB action. The agent-environment-cycle model expresses exactly this
    sequential turn order; in a parallel env both agents would have to act on the same
    observation before either action is applied (arXiv 2605.02149's hierarchical controller).

Action Space
    For each agent ``Box(-1, 1, (max_ue,), float32)`` (padding rows ignored), scaled to logits
    ``l = 5·a`` (:mod:`edgetwin.envs.observation`):

    * ``"prb"``: shares ``softmax(l)`` over the UEs with data, resolved to exact PRBs by Hamilton
      apportionment and channel-aware assignment (:mod:`edgetwin.envs.quota`);
    * ``"power"``: per-PRB power ``∝ e^{l_u}`` with the whole budget spent; all zeros is the
      equal-power baseline.

    Finite out-of-range actions are clipped (:func:`env` adds PettingZoo's
    ``ClipOutOfBoundsWrapper``, which warns at every such action; the raw env warns once per
    env). NaN and ±inf actions raise ``ValueError`` naming the agent and the entry.

Observation Space
    The ``Dict`` of float32 arrays of ``edgetwin/PrbPower-v0`` for both agents, padded to
    ``max_ue`` rows with ``ue_mask`` (table in :mod:`edgetwin.envs.observation`). The PRB agent's
    observation has ``prb_count = 0``; the power agent's holds this slot's PRB counts (summing to
    the number of PRBs). Before the power agent's first decision of an episode its observation
    is all zeros. Every :meth:`~PrbPowerAECEnv.observe` call returns fresh arrays.

Rewards
    After the power agent's step (the end of a slot) both agents receive the same reward,
    by default ``(1 − λ)·Σ_u T̄_u / T_ref + λ·J(T̄)`` with ``T̄`` the smoothed throughput after
    the slot, ``J`` Jain's index, λ = ``reward_kwargs["lam"]`` (0.5) and ``T_ref`` the cell's
    peak rate; other rewards by name (:mod:`edgetwin.envs.rewards`). The PRB agent's step gives
    no reward of its own: ``last()`` returns to each agent the reward accumulated since its
    previous turn (PettingZoo's ``_cumulative_rewards``). ``infos`` after a slot hold
    ``cell_throughput_bps`` and ``jain_index`` of ``T̄``; after :meth:`~PrbPowerAECEnv.reset`
    they hold ``episode_seed``.

Episode End
    When the scenario's simulated duration (``duration_s``) is reached, ``truncations`` are True
    for both agents (never ``terminations``); each then steps once with ``None`` and is removed
    (PettingZoo's ``_was_dead_step``), leaving ``agents`` empty. There is no ``max_cycles``: the
    simulated horizon is the only time limit.

Arguments:
    As ``edgetwin/PrbPower-v0`` without ``control``: ``scenario`` (name or YAML path, default
    ``nr_cell``; single-cell scenarios only), ``max_ue`` (default: the scenario's UEs per cell),
    ``reward`` and ``reward_kwargs``, ``t_ref_bps`` (default: peak rate), ``overrides`` (dotted
    scenario overrides, e.g. ``{"duration_s": 0.5}``), ``render_mode`` (only ``None``). Bad
    arguments raise the ``ValueError`` of ``edgetwin/PrbPower-v0`` (``max_ue`` an int in
    ``[UEs per cell, 1024]``, ...). ``reset(options=...)`` understands only ``episode_seed``;
    other keys are ignored with a ``UserWarning`` (not refused as by the Gymnasium env, because
    PettingZoo's ``api_test`` calls ``reset(options={"options": 1})``).

    Create it with :func:`env` (wrapped) or :func:`raw_env` (the bare :class:`PrbPowerAECEnv`),
    or by id through :func:`edgetwin.envs.make_marl`.

Version History
    * v0: initial version.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import AECEnv
from pettingzoo.utils import wrappers

from edgetwin.scenarios.schema import ScenarioConfig

from .observation import action_space, check_action, observation_space, out_of_range
from .prb_power import CLIP_WARNING, CellEnvSetup, PrbPowerEpisode, episode_seed_from

#: The agents, in their order of play within a slot.
AGENTS: tuple[str, ...] = ("prb", "power")

Obs = dict[str, np.ndarray]


class PrbPowerAECEnv(AECEnv[str, Obs, np.ndarray]):
    """PettingZoo AEC env of hierarchical PRB/power control of one cell (see the module docstring).

    Args:
        scenario: Scenario name, YAML path or loaded config (one cell).
        max_ue: Rows of the padded observation and action (default: the scenario's UEs).
        reward: Registered reward name (:data:`edgetwin.envs.rewards.REWARDS`).
        reward_kwargs: Keyword arguments of the reward (e.g. ``{"lam": 0.5}``).
        t_ref_bps: Throughput normalizer of the reward, bit/s (default: the cell's peak rate).
        overrides: Dotted scenario overrides (e.g. ``{"duration_s": 0.5}``).
        render_mode: Only ``None`` (no rendering).

    Raises:
        ValueError: Multi-cell scenario, ``max_ue`` not an int in ``[UEs per cell, 1024]``,
            unknown reward or bad reward arguments, ``t_ref_bps`` not finite > 0, or a render
            mode other than None.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "name": "edgetwin/PrbPowerMARL-v0",
        "is_parallelizable": False,
    }

    def __init__(
        self,
        scenario: str | ScenarioConfig = "nr_cell",
        max_ue: int | None = None,
        reward: str = "throughput_fairness",
        reward_kwargs: Mapping[str, Any] | None = None,
        t_ref_bps: float | None = None,
        overrides: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        setup = CellEnvSetup.from_args(
            scenario, overrides, max_ue, reward, reward_kwargs, t_ref_bps, render_mode
        )
        self.render_mode = render_mode
        self.setup = setup
        self.config = setup.config
        self.n_ue, self.max_ue, self.n_prb = setup.n_ue, setup.max_ue, setup.n_prb
        self.reward_fn = setup.reward_fn
        self.t_ref_bps = setup.t_ref_bps

        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        # One space object per agent (seeded separately), all with the same definition.
        self.observation_spaces: dict[str, spaces.Space[Any]] = {
            a: observation_space(self.max_ue, self.n_prb) for a in self.possible_agents
        }
        self.action_spaces: dict[str, spaces.Space[Any]] = {
            a: action_space(self.max_ue, 1) for a in self.possible_agents
        }
        self._np_random: np.random.Generator | None = None
        self._np_random_seed: int | None = None
        self._episode: PrbPowerEpisode | None = None
        self._obs: dict[str, Obs] = {}
        self.episode_seed: int | None = None
        self._warned_clip = False

    # --- spaces ---------------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Space[Any]:
        """The ``Dict`` observation space of ``agent`` (the same object on every call)."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space[Any]:
        """``Box(-1, 1, (max_ue,), float32)`` of ``agent`` (the same object on every call)."""
        return self.action_spaces[agent]

    @property
    def np_random(self) -> np.random.Generator:
        """The env's generator of episode seeds (seeded by ``reset(seed=...)``)."""
        if self._np_random is None:
            self._np_random, self._np_random_seed = seeding.np_random()
        return self._np_random

    @property
    def episode(self) -> PrbPowerEpisode:
        """The running episode (its simulation is ``episode.sim``, the cell ``episode.cell``)."""
        if self._episode is None:
            raise RuntimeError("call reset() first")
        return self._episode

    # --- AEC API --------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Rebuild the simulation with a seed drawn from the env's generator.

        Args:
            seed: Reseeds the env's generator (as ``gymnasium.Env.reset``); ``None`` continues
                its sequence, so successive episodes differ.
            options: ``{"episode_seed": S}`` runs simulation seed ``S`` (the drop, channels and
                HARQ draws of ``edgetwin run --seed S``) instead of a drawn one; other keys are
                ignored with a ``UserWarning``.

        Raises:
            ValueError: ``options`` not a dict, or an ``episode_seed`` that is not an integer
                in ``0..2**32 − 1``.
        """
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        episode_seed = episode_seed_from(options, self.np_random, strict=False)
        self.episode_seed = episode_seed
        self._episode = PrbPowerEpisode(self.config, episode_seed, AGENTS, self.max_ue)
        if not self._episode.run_to("prb"):
            raise RuntimeError("the scenario reached its horizon before the first decision")
        prb_obs = self._episode.observe()
        self._obs = {
            "prb": prb_obs,
            "power": {k: np.zeros_like(v) for k, v in prb_obs.items()},
        }
        self.agents = list(self.possible_agents)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos: dict[str, dict[str, Any]] = {
            a: {"episode_seed": episode_seed} for a in self.agents
        }
        self.agent_selection = AGENTS[0]
        self._skip_agent_selection = None

    def observe(self, agent: str) -> Obs:
        """The latest observation of ``agent``, as fresh arrays."""
        if agent not in self._obs:
            raise RuntimeError("call reset() before observe()")
        return {k: v.copy() for k, v in self._obs[agent].items()}

    def step(self, action: np.ndarray | None) -> None:
        """Apply the selected agent's action; after the power agent, finish the slot.

        Args:
            action: Logits in [−1, 1], shape [max_ue] (``None`` for a truncated agent).

        Raises:
            ValueError: An action of the wrong shape or with a NaN / ±inf entry, ``None`` for
                a live agent, or not ``None`` for a truncated agent (finite values outside
                ``[-1, 1]`` are clipped, with one warning per env).
            RuntimeError: Before :meth:`reset`, or once every agent has been removed.
        """
        if self._episode is None or not self.agents:
            raise RuntimeError("call reset() before step() (and after an episode has ended)")
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        ep = self._episode
        if action is None:
            raise ValueError(f"agent {agent!r} is alive: its action must not be None")
        a = check_action(action, (self.max_ue,), f"action of agent {agent!r}")
        if not self._warned_clip and out_of_range(a):
            self._warned_clip = True
            warnings.warn(CLIP_WARNING, UserWarning, stacklevel=2)
        self._cumulative_rewards[agent] = 0.0
        if agent == "prb":
            ep.act_prb_and_await_power(a)  # same slot: the power decision of this PRB map
            self._obs["power"] = ep.observe()
            self._clear_rewards()
            self.agent_selection = "power"
        else:
            ep.act_power(a)
            alive = ep.run_to("prb")
            if alive:
                self._obs["prb"] = ep.observe()
            self._end_slot(alive=alive)
        self._accumulate_rewards()

    def _end_slot(self, *, alive: bool) -> None:
        """Give both agents the slot's shared reward; truncate both at the horizon."""
        r, info = self.setup.score(self.episode.avg_rate_bps)  # as PrbPowerEnv's
        for a in self.agents:
            self.rewards[a] = r
            self.infos[a] = dict(info)
            if not alive:
                self.truncations[a] = True
        self.agent_selection = AGENTS[0]

    def render(self) -> None:
        """No rendering (``render_mode`` is always ``None``)."""
        return None

    def close(self) -> None:
        """Drop the running episode."""
        self._episode = None


def raw_env(**kwargs: Any) -> PrbPowerAECEnv:
    """The bare :class:`PrbPowerAECEnv` (keyword arguments as its constructor).

    Raises:
        TypeError: An unknown keyword argument (e.g. ``control``, which only the Gymnasium env
            has), listing the allowed ones; Python's own message would not list them.
    """
    allowed = list(inspect.signature(PrbPowerAECEnv).parameters)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {', '.join(unknown)} for "
            f"{PrbPowerAECEnv.metadata['name']}; allowed: {', '.join(allowed)}"
        )
    return PrbPowerAECEnv(**kwargs)


def env(**kwargs: Any) -> AECEnv[str, Obs, np.ndarray]:
    """:func:`raw_env` wrapped as PettingZoo's continuous-action envs are.

    ``ClipOutOfBoundsWrapper`` clips (and warns about) actions outside ``[-1, 1]`` — pass float32
    arrays, since a float64 array is not an element of the float32 ``Box`` and would be reported
    too — and ``OrderEnforcingWrapper`` refuses ``step``/``observe`` before ``reset``.
    """
    e: AECEnv[str, Obs, np.ndarray] = raw_env(**kwargs)
    e = wrappers.ClipOutOfBoundsWrapper(e)
    e = wrappers.OrderEnforcingWrapper(e)
    return e
