"""``edgetwin/PrbPower-v0``: per-slot PRB and/or power control of one NR downlink cell.

The env drives the same :class:`~edgetwin.sim.engine.Simulation` a scenario run builds
(:func:`edgetwin.scenarios.builder.build`), with the controlled families' decision points
detached (ARCHITECTURE.md §4.5); the family it does not control is driven by the scenario's
policy (PF / equal power in ``nr_cell``). There is no second copy of the physics.

Description
    One step is one slot in which the cell has data (idle slots are skipped by the simulator).
    The agent sees the cell's channel-state reports and per-UE state and sets PRB shares and/or
    power shares (arXiv 2605.02149's hierarchical controller as one agent).

Action Space
    ``Box(-1, 1, (max_ue,), float32)`` for ``control="prb"`` or ``"power"``; ``(2·max_ue,)`` for
    ``"joint"`` (PRB actions first, then power actions). Actions scale to logits
    ``l = 5·a``; PRB logits become shares ``softmax(l)`` over UEs with data, resolved to exact
    PRBs by Hamilton apportionment and channel-aware assignment; power logits set per-PRB power
    ``∝ e^{l_u}`` with the whole budget spent (all-zero = equal power). See
    :mod:`edgetwin.envs.observation`.

Observation Space
    ``Dict`` of float32 arrays padded to ``max_ue`` rows with ``ue_mask`` (table in
    :mod:`edgetwin.envs.observation`). With ``control="power"`` the observation is taken at the
    power decision, so ``prb_count`` holds this slot's PRB map; otherwise it is 0.

Rewards
    ``(1 − λ)·Σ_u T̄_u / T_ref + λ·J(T̄)`` with ``T̄`` the smoothed throughput after the slot,
    ``J`` Jain's index, λ = ``reward_kwargs["lam"]`` (0.5) and ``T_ref`` the peak cell rate;
    other rewards by name (:mod:`edgetwin.envs.rewards`).

Episode End
    ``truncated`` when the scenario's simulated duration (``duration_s``) is reached; never
    ``terminated``. The env is registered with ``max_episode_steps=None``: the simulated horizon
    is the only time limit.

Arguments:
    ``scenario`` (name or YAML path, default ``nr_cell``), ``control`` (``"prb" | "power" |
    "joint"``), ``max_ue`` (an int in ``[UEs per cell, 1024]``, default: the scenario's UEs per
    cell), ``reward`` and ``reward_kwargs``, ``t_ref_bps`` (finite > 0, default peak rate),
    ``overrides`` (dotted scenario overrides, e.g. ``{"duration_s": 0.5}``).

Bad input
    Every bad argument raises one ``ValueError`` (``ScenarioError``, a subclass, for the
    scenario) whose one-line message names the argument and its allowed values. ``step`` refuses
    an action of the wrong shape or with a NaN / ±inf entry (``ValueError``) and clips finite
    values outside ``[-1, 1]``, warning once per env. ``reset(options=...)`` accepts only
    ``episode_seed`` (an int in ``0..2**32 − 1``, the range of ``edgetwin run --seed``).

Version History
    * v0: initial version.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from edgetwin.scenarios.builder import build
from edgetwin.scenarios.load import load_scenario, with_overrides
from edgetwin.scenarios.schema import ScenarioConfig
from edgetwin.sim.decision import DecisionRequest
from edgetwin.sim.radio.cell import CellGroup
from edgetwin.sim.rng import MAX_SEED

from .observation import (
    ObservationBuilder,
    action_space,
    check_action,
    observation_space,
    out_of_range,
    power_action_to_watts,
    prb_action_to_alloc,
)
from .reduce import row_sum
from .rewards import jain_rows, make_reward

Control = Literal["prb", "power", "joint"]
CONTROLS: tuple[str, ...] = ("prb", "power", "joint")
_DETACH: dict[str, tuple[str, ...]] = {
    "prb": ("prb",),
    "power": ("power",),
    "joint": ("prb", "power"),
}
#: Largest ``max_ue``. Each observation holds a float32 ``[max_ue, n_prb]`` SINR map and each
#: step costs O(max_ue · n_prb): at 1024 rows and 273 PRBs (100 MHz at 30 kHz) that is 1.1 MB
#: per observation, while ``max_ue=10**7`` would ask for ~11 GB. 1024 is also well above the
#: UEs one NR cell schedules in a slot-level study (tens to a few hundred).
MAX_UE_LIMIT = 1024
#: The ``reset(options=...)`` keys the envs understand.
RESET_OPTIONS: tuple[str, ...] = ("episode_seed",)
#: Largest ``episode_seed``: the range of ``edgetwin run --seed``, so that every env episode
#: can be replayed by a scenario run.
MAX_EPISODE_SEED = MAX_SEED
#: Warned once per env at the first action with an entry outside the action space.
CLIP_WARNING = (
    "action has entries outside the action space [-1, 1]: they are clipped to it (warned once "
    "per env)"
)


def load_cell_scenario(
    scenario: str | Path | ScenarioConfig,
    overrides: Mapping[str, Any] | None = None,
    envs: str = "the PRB/power envs control",
) -> ScenarioConfig:
    """Load a single-cell scenario for an env (the PRB/power envs, the draft-length envs).

    Args:
        scenario: A scenario name, a YAML path or a config.
        overrides: Dotted scenario overrides.
        envs: How the multi-cell error names the envs (``"<envs> one cell; ..."``).

    Raises:
        ScenarioError: Unknown scenario or invalid field.
        ValueError: Not a name, path or config, overrides that are not a dict, or the scenario
            has more than one cell.
    """
    if not isinstance(scenario, str | Path | ScenarioConfig):
        raise ValueError(
            f"scenario must be a scenario name, a YAML path or a ScenarioConfig, got "
            f"{type(scenario).__name__} {scenario!r:.80}"
        )
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ValueError(
            f"overrides must be a dict of dotted scenario fields or None, got "
            f"{type(overrides).__name__} {overrides!r:.80}"
        )
    if isinstance(scenario, ScenarioConfig):
        config = with_overrides(scenario, overrides)
    else:
        config = load_scenario(scenario, overrides)
    if config.topology.kind != "single":
        raise ValueError(
            f"{envs} one cell; scenario {config.name!r} has topology.kind="
            f"{config.topology.kind!r} (allowed: 'single')"
        )
    return config


class PrbPowerEpisode:
    """One episode: a freshly built simulation advanced decision by decision.

    Shared by :class:`PrbPowerEnv` and the PettingZoo env, so both drive the simulator the same
    way.

    Args:
        config: Single-cell scenario.
        seed: Seed of the simulation (channels, arrivals, HARQ draws).
        detach: Families whose decision points the caller answers.
        max_ue: Rows of the padded observation.
    """

    def __init__(
        self, config: ScenarioConfig, seed: int, detach: tuple[str, ...], max_ue: int
    ) -> None:
        self.sim = build(config, seed=seed, detach=detach)
        cell = self.sim.components["radio"]
        assert isinstance(cell, CellGroup)
        self.cell = cell
        self.builder = ObservationBuilder(max_ue, cell.n_prb)
        self.request: DecisionRequest[Any, Any] | None = None

    def run_to(self, family: str) -> bool:
        """Run until ``family`` asks for a decision; False once the horizon is reached."""
        self.request = self.sim.run_until_decision(family)
        return self.request is not None

    def observe(self) -> dict[str, np.ndarray]:
        """The env observation of the pending decision (fresh arrays)."""
        assert self.request is not None
        return self.builder(self.request.obs)

    def act_prb(self, logits: np.ndarray) -> None:
        """Answer the pending PRB decision with PRB logits [≥ n_ue]."""
        assert self.request is not None
        assert self.request.family == "prb"
        self.request.reply.succeed(prb_action_to_alloc(logits, self.request.obs)[None, :])

    def act_prb_and_await_power(self, logits: np.ndarray) -> None:
        """Answer the PRB decision, then run to the power decision of the same slot.

        The quota resolver gives every PRB to a UE with data, so a power decision always
        follows; anything else is a bug, not an episode end.
        """
        self.act_prb(logits)
        if not self.run_to("power"):
            raise RuntimeError("the PRB decision was not followed by a power decision")

    def act_power(self, logits: np.ndarray) -> None:
        """Answer the pending power decision with power logits [≥ n_ue]."""
        assert self.request is not None
        assert self.request.family == "power"
        self.request.reply.succeed(power_action_to_watts(logits, self.request.obs)[None, :])

    @property
    def avg_rate_bps(self) -> np.ndarray:
        """Smoothed per-UE throughput of the cell now, [n_ue] bit/s."""
        return self.cell.avg_rate_bps[0]


def _check_options(options: Any, *, strict: bool) -> Mapping[str, Any]:
    """``options`` as a mapping; unknown keys raise (``strict``) or warn.

    Why two modes: a Gymnasium user's misspelt key (``episode_sed``) would silently run a drawn
    seed, so the Gymnasium env refuses it; PettingZoo's ``api_test`` however calls
    ``reset(options={"options": 1})`` to check that ``options`` is accepted, so the PettingZoo
    env warns instead.
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError(
            f"reset options must be a dict or None, got {type(options).__name__} "
            f"{options!r:.80}; allowed keys: {', '.join(RESET_OPTIONS)}"
        )
    unknown = sorted(map(str, set(options) - set(RESET_OPTIONS)))
    if unknown:
        msg = f"unknown reset option(s) {', '.join(unknown)}; allowed: {', '.join(RESET_OPTIONS)}"
        if strict:
            raise ValueError(msg)
        warnings.warn(msg + " (ignored)", UserWarning, stacklevel=4)  # the caller of reset
    return options


def episode_seed_from(
    options: Mapping[str, Any] | None, rng: np.random.Generator, *, strict: bool
) -> int:
    """The simulation seed of a new episode: ``options["episode_seed"]`` or a draw from ``rng``.

    Giving the seed lets an env episode replay exactly the drop, channels and HARQ draws of
    ``edgetwin run --seed S`` (common random numbers with a scenario run).

    Args:
        options: ``reset``'s options: only ``episode_seed`` is understood.
        rng: The env's generator, for a drawn seed.
        strict: Refuse unknown option keys (Gymnasium env) rather than warn (PettingZoo env).

    Raises:
        ValueError: Options that are not a mapping, an unknown key (``strict``), or an
            ``episode_seed`` that is not an integer in ``0..2**32 − 1``.
    """
    opts = _check_options(options, strict=strict)
    if "episode_seed" not in opts:
        return int(rng.integers(2**31))
    seed = opts["episode_seed"]
    if not _is_int(seed) or not 0 <= seed <= MAX_EPISODE_SEED:
        raise ValueError(
            f"episode_seed must be a non-negative integer in 0..{MAX_EPISODE_SEED}, got "
            f"{seed!r:.80}"
        )
    return int(seed)


def _is_int(value: Any) -> bool:
    """An integer (Python or numpy), and not a ``bool`` (which Python counts as one)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_max_ue(max_ue: Any, n_ue: int) -> int:
    """``max_ue`` as an int in ``[n_ue, MAX_UE_LIMIT]`` (``None`` → ``n_ue``)."""
    if max_ue is None:
        return n_ue
    if not _is_int(max_ue):
        raise ValueError(
            f"max_ue must be an integer in [{n_ue}, {MAX_UE_LIMIT}] or None, got "
            f"{type(max_ue).__name__} {max_ue!r:.80}"
        )
    if max_ue < n_ue:
        raise ValueError(
            f"max_ue={max_ue} is below the scenario's {n_ue} UEs per cell; "
            f"allowed: an integer in [{n_ue}, {MAX_UE_LIMIT}]"
        )
    if max_ue > MAX_UE_LIMIT:
        raise ValueError(
            f"max_ue={max_ue} is above {MAX_UE_LIMIT} (observations are float32 [max_ue, n_prb]"
            f"); allowed: an integer in [{n_ue}, {MAX_UE_LIMIT}]"
        )
    return int(max_ue)


def _check_t_ref(t_ref_bps: Any, default_bps: float) -> float:
    """``t_ref_bps`` as a finite float > 0 (``None`` → ``default_bps``, the peak rate)."""
    if t_ref_bps is None:
        return default_bps
    ok = isinstance(t_ref_bps, int | float | np.integer | np.floating) and not isinstance(
        t_ref_bps, bool
    )
    if not ok or not (np.isfinite(t_ref_bps) and t_ref_bps > 0):
        raise ValueError(
            f"t_ref_bps must be a finite number > 0 (bit/s) or None (the cell's peak rate), "
            f"got {t_ref_bps!r:.80}"
        )
    return float(t_ref_bps)


@dataclass(frozen=True)
class CellEnvSetup:
    """What the PRB/power envs derive from their arguments once, before any episode."""

    config: ScenarioConfig
    """The single-cell scenario."""
    n_ue: int
    """UEs of the cell."""
    max_ue: int
    """Rows of the padded observation."""
    n_prb: int
    """PRBs of the carrier."""
    t_ref_bps: float
    """Reward normalizer, bit/s."""
    reward_fn: Callable[[np.ndarray, float], Any]
    """The bound reward function."""

    def score(self, avg_rate_bps: np.ndarray) -> tuple[float, dict[str, float]]:
        """Reward and info of the smoothed per-UE rates after a slot ([n_ue] bit/s)."""
        info = {
            "cell_throughput_bps": float(row_sum(avg_rate_bps)),
            "jain_index": float(jain_rows(avg_rate_bps)),
        }
        return float(self.reward_fn(avg_rate_bps, self.t_ref_bps)), info

    @classmethod
    def from_args(
        cls,
        scenario: str | ScenarioConfig,
        overrides: Mapping[str, Any] | None,
        max_ue: int | None,
        reward: str,
        reward_kwargs: Mapping[str, Any] | None,
        t_ref_bps: float | None,
        render_mode: str | None,
    ) -> CellEnvSetup:
        """Validate the env arguments (one clear ``ValueError``/``ScenarioError`` each)."""
        if render_mode is not None:
            raise ValueError(f"render_mode {render_mode!r} is not supported; allowed: None")
        config = load_cell_scenario(scenario, overrides)
        n_ue = config.topology.ues_per_cell
        rows = _check_max_ue(max_ue, n_ue)
        if reward_kwargs is not None and not isinstance(reward_kwargs, Mapping):
            raise ValueError(
                f"reward_kwargs must be a dict of keyword arguments of reward {reward!r} or "
                f"None, got {type(reward_kwargs).__name__} {reward_kwargs!r:.80}"
            )
        reward_fn = make_reward(reward, **dict(reward_kwargs or {}))
        probe = PrbPowerEpisode(config, 0, (), rows)  # the carrier's PRBs and peak rate
        t_ref = _check_t_ref(t_ref_bps, probe.cell.peak_rate_bps)
        return cls(config, n_ue, rows, probe.cell.n_prb, t_ref, reward_fn)


class PrbPowerEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Gymnasium env of PRB/power control of one cell (see the module docstring)."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gym.Env's attribute)

    def __init__(
        self,
        scenario: str | ScenarioConfig = "nr_cell",
        control: Control = "joint",
        max_ue: int | None = None,
        reward: str = "throughput_fairness",
        reward_kwargs: Mapping[str, Any] | None = None,
        t_ref_bps: float | None = None,
        overrides: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if control not in CONTROLS:
            raise ValueError(f"unknown control {control!r}; allowed: {', '.join(CONTROLS)}")
        setup = CellEnvSetup.from_args(
            scenario, overrides, max_ue, reward, reward_kwargs, t_ref_bps, render_mode
        )
        self.control: Control = control
        self.setup = setup
        self.config = setup.config
        self.n_ue, self.max_ue, self.n_prb = setup.n_ue, setup.max_ue, setup.n_prb
        self.reward_fn = setup.reward_fn
        self.t_ref_bps = setup.t_ref_bps
        self.observation_space = observation_space(self.max_ue, self.n_prb)  # type: ignore[assignment]
        self.action_space = action_space(self.max_ue, 2 if control == "joint" else 1)
        self._episode: PrbPowerEpisode | None = None
        self._last_obs: dict[str, np.ndarray] | None = None
        self._warned_clip = False

    @property
    def episode(self) -> PrbPowerEpisode | None:
        """The running episode (its simulation and cell), ``None`` before :meth:`reset`."""
        return self._episode

    def _first_family(self) -> str:
        return "power" if self.control == "power" else "prb"

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Rebuild the simulation with a seed drawn from the env's generator.

        ``options={"episode_seed": S}`` uses simulation seed ``S`` instead, the same drop,
        channels and HARQ draws as ``edgetwin run --seed S``.

        Raises:
            ValueError: An option other than ``episode_seed``, or an ``episode_seed`` that is
                not an integer in ``0..2**32 − 1``.
        """
        super().reset(seed=seed)
        episode_seed = episode_seed_from(options, self.np_random, strict=True)
        self._episode = PrbPowerEpisode(
            self.config, episode_seed, _DETACH[self.control], self.max_ue
        )
        if not self._episode.run_to(self._first_family()):
            raise RuntimeError("the scenario reached its horizon before the first decision")
        obs = self._episode.observe()
        self._last_obs = obs
        return obs, {"episode_seed": episode_seed}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply the logits to this slot, run to the next decision, reward the smoothed rates.

        Raises:
            ValueError: An action of the wrong shape or with a NaN / ±inf entry (finite values
                outside ``[-1, 1]`` are clipped, with one warning per env).
            RuntimeError: Before :meth:`reset` or after the episode was truncated.
        """
        ep = self._episode
        if ep is None or ep.request is None:
            raise RuntimeError("call reset() before step() (and after an episode is truncated)")
        a = check_action(action, self.action_space.shape or (0,))
        if not self._warned_clip and out_of_range(a):
            self._warned_clip = True
            warnings.warn(CLIP_WARNING, UserWarning, stacklevel=2)
        M = self.max_ue
        if self.control == "prb":
            ep.act_prb(a)
        elif self.control == "power":
            ep.act_power(a)
        else:
            ep.act_prb_and_await_power(a[:M])
            ep.act_power(a[M:])
        alive = ep.run_to(self._first_family())
        reward, info = self.setup.score(ep.avg_rate_bps)
        if alive:
            obs = ep.observe()
            self._last_obs = obs
        else:
            assert self._last_obs is not None
            obs = {k: v.copy() for k, v in self._last_obs.items()}
        return obs, reward, False, not alive, info
