"""``gym.make_vec("edgetwin/PrbPower-v0", num_envs=B, vectorization_mode="vector_entry_point")``.

A Gymnasium :class:`~gymnasium.vector.VectorEnv` of B ``PrbPower-v0`` envs backed by one
:class:`~edgetwin.sim.radio.cell_batch.CellBatch`: the B cells of a step are one call of each
compiled slot kernel, the observation, action mapping and reward one pass of array operations
over the member axis. A ``SyncVectorEnv`` of ``PrbPowerEnv`` steps B SimPy simulations one after
another instead.

Member ``i`` behaves as ``gym.make("edgetwin/PrbPower-v0")`` reset with ``seed + i`` (Gymnasium's
``SyncVectorEnv`` convention) and given the same actions: the same episode seeds, observations,
rewards and truncations, bit for bit (``tests/envs/test_prb_power_vector.py``). Spaces are the
single env's, batched; the arguments are the single env's plus ``num_envs``.

Autoreset follows Gymnasium 1.x's default ``AutoresetMode.NEXT_STEP``: the step after a member's
episode is truncated resets it (its action is ignored; reward 0, not terminated, not truncated).
``autoreset_mode="SameStep"`` restarts it in the step that ends it instead, with the last
observation in ``info["final_obs"]`` (what SB3's ``VecEnv`` does; ``agents/rl`` uses it).
``reset(options={"episode_seed": [s_0, …, s_{B−1}]})`` replays given simulation seeds (as
``edgetwin run --seed s_i``).

Infos are Gymnasium vector infos: ``cell_throughput_bps`` and ``jain_index`` after a step,
``episode_seed`` after a (re)set, each an array over members with its ``_key`` mask.

Speed: ``control="joint"`` and ``"prb"``/``"power"`` with stateless scenario policies run
vectorized; a stateful scenario policy of the other family (e.g. PF for ``control="power"``)
is asked member by member, as in the single env.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from edgetwin.scenarios.builder import build
from edgetwin.scenarios.schema import ScenarioConfig
from edgetwin.sim.radio.cell import CellGroup
from edgetwin.sim.radio.cell_batch import CellBatch
from edgetwin.sim.rng import MAX_SEED

from .observation import (
    BatchObservationBuilder,
    action_space,
    observation_space,
    power_actions_to_watts,
    prb_actions_to_alloc,
)
from .prb_power import (
    _DETACH,
    CLIP_WARNING,
    CONTROLS,
    RESET_OPTIONS,
    CellEnvSetup,
    Control,
    _check_options,
    _is_int,
)
from .reduce import row_sum
from .rewards import jain_rows

#: Largest ``num_envs``: each member holds its channel batch ([batch_slots, n_ue, n_prb]
#: float64, ~0.8 MB for ``nr_cell``); 4,096 members are ~3.5 GB.
MAX_NUM_ENVS = 4096


def _check_num_envs(num_envs: Any) -> int:
    if not _is_int(num_envs) or not 1 <= num_envs <= MAX_NUM_ENVS:
        raise ValueError(
            f"num_envs must be an integer in [1, {MAX_NUM_ENVS}], got {num_envs!r:.80}"
        )
    return int(num_envs)


#: Autoreset modes the env implements (Gymnasium 1.x; DISABLED would need partial resets).
AUTORESET_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)


def _check_autoreset_mode(mode: Any) -> AutoresetMode:
    try:
        value = AutoresetMode(mode.value if isinstance(mode, AutoresetMode) else mode)
    except ValueError:
        value = None
    if value not in AUTORESET_MODES:
        allowed = ", ".join(m.value for m in AUTORESET_MODES)
        raise ValueError(f"autoreset_mode must be one of {allowed}, got {mode!r:.80}")
    assert value is not None
    return value


def _member_obs(obs: dict[str, Any], b: int) -> dict[str, Any]:
    """Member ``b``'s slice of a batch observation, as its own ``CellGroup`` would give it."""
    return {k: (int(v[b]) if k == "slot" else v[b : b + 1]) for k, v in obs.items()}


class PrbPowerVectorEnv(VectorEnv[dict[str, np.ndarray], np.ndarray, np.ndarray]):
    """B PrbPower-v0 envs stepped as one cell batch (see the module docstring)."""

    metadata: dict[str, Any] = {  # noqa: RUF012 (VectorEnv's attribute)
        "render_modes": [],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str | ScenarioConfig = "nr_cell",
        control: Control = "joint",
        max_ue: int | None = None,
        reward: str = "throughput_fairness",
        reward_kwargs: Mapping[str, Any] | None = None,
        t_ref_bps: float | None = None,
        overrides: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ) -> None:
        self.num_envs = _check_num_envs(num_envs)
        self.autoreset_mode = _check_autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        if control not in CONTROLS:
            raise ValueError(f"unknown control {control!r}; allowed: {', '.join(CONTROLS)}")
        self.setup = CellEnvSetup.from_args(
            scenario, overrides, max_ue, reward, reward_kwargs, t_ref_bps, render_mode
        )
        self.control: Control = control
        self.render_mode = None
        s = self.setup
        self.max_ue, self.n_prb = s.max_ue, s.n_prb
        self.single_observation_space = observation_space(s.max_ue, s.n_prb)
        self.single_action_space = action_space(s.max_ue, 2 if control == "joint" else 1)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._batch: CellBatch | None = None
        self._builder = BatchObservationBuilder(self.num_envs, s.max_ue, s.n_prb)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._alloc = np.full((self.num_envs, s.n_prb), -1, dtype=np.int64)
        self._pending_alloc: np.ndarray | None = None  # joint: set by observe_power
        self._obs: dict[str, np.ndarray] | None = None
        self._warned_clip = False

    @property
    def batch(self) -> CellBatch | None:
        """The cell batch (``None`` before :meth:`reset`)."""
        return self._batch

    # ------------------------------------------------------------------------------------
    def _member_rng(self, i: int) -> np.random.Generator:
        rng = self._rngs[i]
        if rng is None:
            rng, _ = seeding.np_random(None)
            self._rngs[i] = rng
        return rng

    def _new_member(self, episode_seed: int) -> CellGroup:
        """A fresh member: the scenario built with ``episode_seed``, agent families detached."""
        sim = build(self.setup.config, seed=episode_seed, detach=_DETACH[self.control])
        cell = sim.components["radio"]
        assert isinstance(cell, CellGroup)
        return cell

    def _episode_seeds(self, options: Any) -> list[int] | None:
        opts = _check_options(options, strict=True)
        if "episode_seed" not in opts:
            return None
        seeds = opts["episode_seed"]
        ok = (
            isinstance(seeds, Sequence | np.ndarray)
            and not isinstance(seeds, str)
            and len(seeds) == self.num_envs
            and all(_is_int(x) and 0 <= x <= MAX_SEED for x in seeds)
        )
        if not ok:
            raise ValueError(
                f"episode_seed must be a sequence of {self.num_envs} integers in 0..{MAX_SEED} "
                f"(one per member), got {seeds!r:.80}"
            )
        return [int(x) for x in seeds]

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start a new episode in every member.

        Args:
            seed: ``None``, an int (member ``i`` gets ``seed + i``) or one seed (or ``None``)
                per member, as ``SyncVectorEnv``.
            options: Only ``episode_seed``: one simulation seed per member.

        Raises:
            ValueError: A bad seed list or option (one line naming the allowed values).
        """
        B = self.num_envs
        if seed is None:
            seeds: list[int | None] = [None] * B
        elif _is_int(seed):
            seeds = [int(seed) + i for i in range(B)]  # type: ignore[arg-type]
        elif isinstance(seed, Sequence) and len(seed) == B:
            seeds = list(seed)
        else:
            raise ValueError(
                f"seed must be None, an int or a list of {B} ints or None, got {seed!r:.80}"
            )
        for i, s in enumerate(seeds):
            if s is not None:
                self._rngs[i], _ = seeding.np_random(s)
        given = self._episode_seeds(options)
        episode_seeds = [
            given[i] if given is not None else int(self._member_rng(i).integers(2**31))
            for i in range(B)
        ]
        members = [self._new_member(s) for s in episode_seeds]
        if self._batch is None:
            self._batch = CellBatch(members)
        else:
            for i, m in enumerate(members):
                self._batch.replace(i, m)
        rows = np.arange(B)
        self._builder = BatchObservationBuilder(B, self.max_ue, self.n_prb)
        self._start(rows)
        if self._batch.done.any():
            raise RuntimeError("the scenario reached its horizon before the first decision")
        self._autoreset[:] = False
        self._pending_alloc = None
        self._obs = self._observe()
        info = {"episode_seed": np.array(episode_seeds), "_episode_seed": np.ones(B, bool)}
        return {k: v.copy() for k, v in self._obs.items()}, info

    # ------------------------------------------------------------------------------------
    def _start(self, rows: np.ndarray) -> None:
        """Run members ``rows`` to their next decision (the first family the agent answers)."""
        batch = self._batch
        assert batch is not None
        batch.prepare(rows)
        if self.control == "power":
            # The scenario's PRB policy decides first; the agent sees its PRB map.
            obs = batch.observation()
            for b in rows[~batch.done[rows]]:
                self._alloc[b] = batch.members[b].prb_dp.decide(_member_obs(obs, b))[0]

    def _scenario_power(self, rows: np.ndarray, pobs: dict[str, Any]) -> np.ndarray:
        """The scenario's power policy of members ``rows`` (control ``"prb"``), one by one."""
        batch = self._batch
        assert batch is not None
        watts = np.zeros((batch.n_member, batch.n_prb))
        for b in rows:
            watts[b] = batch.members[b].power_dp.decide(_member_obs(pobs, b))[0]
        return watts

    def _observe(self) -> dict[str, np.ndarray]:
        batch = self._batch
        assert batch is not None
        if self.control == "power":
            return self._builder(batch.power_observation(self._alloc, with_gains=False))
        return self._builder(batch.observation())

    def _check_actions(self, actions: Any, shape: tuple[int, ...] | None) -> np.ndarray:
        shape = shape or (0,)
        expected = f"actions must be an array of numbers in [-1, 1] of shape {shape}"
        try:
            a = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{expected}, got {type(actions).__name__} {actions!r:.80}") from None
        if actions is None or a.shape != shape:
            raise ValueError(f"{expected}, got shape {a.shape}")
        if not np.isfinite(a).all():
            b, j = np.argwhere(~np.isfinite(a))[0]
            raise ValueError(
                f"action of member {b} has {a[b, j]} at index {j}: allowed: finite numbers in "
                "[-1, 1] (finite values outside are clipped; NaN and ±inf are refused)"
            )
        if not self._warned_clip and np.abs(a).max(initial=0.0) > 1.0:
            self._warned_clip = True
            warnings.warn(CLIP_WARNING, UserWarning, stacklevel=3)
        return a

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Apply every member's action to its slot and run it to its next decision.

        Raises:
            ValueError: Actions of the wrong shape or with a NaN / ±inf entry.
            RuntimeError: Before :meth:`reset`.
        """
        batch = self._batch
        if batch is None or self._obs is None:
            raise RuntimeError("call reset() before step()")
        a = self._check_actions(actions, self.action_space.shape)
        if self._pending_alloc is not None:
            raise RuntimeError("observe_power() is pending: finish the slot with step_power()")
        M = self.max_ue
        if self.control == "joint":
            self._pending_alloc = prb_actions_to_alloc(a[:, :M], batch.observation())
            return self._finish_step(a[:, M:])
        return self._finish_step(a)

    def observe_power(self, prb_actions: np.ndarray) -> dict[str, np.ndarray]:
        """First half of a ``joint`` step, as the MARL env's two agents take it.

        Applies the PRB agent's actions ([num_envs, max_ue] in [−1, 1]) and returns the power
        agent's observation of the same slot (its ``prb_count`` holds the PRB map); finish the
        slot with :meth:`step_power`. A member waiting for its autoreset ignores its actions.

        Raises:
            ValueError: Not ``control="joint"``, or bad actions.
            RuntimeError: Before :meth:`reset`, or a pending :meth:`observe_power`.
        """
        batch = self._batch
        if self.control != "joint":
            raise ValueError(f"observe_power needs control='joint', got {self.control!r}")
        if batch is None or self._obs is None:
            raise RuntimeError("call reset() before observe_power()")
        if self._pending_alloc is not None:
            raise RuntimeError("observe_power() is pending: finish the slot with step_power()")
        a = self._check_actions(prb_actions, (self.num_envs, self.max_ue))
        self._pending_alloc = prb_actions_to_alloc(a, batch.observation())
        pobs = batch.power_observation(self._pending_alloc, with_gains=False)
        return {k: v.copy() for k, v in self._builder(pobs).items()}

    def step_power(
        self, power_actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Second half of a ``joint`` step: the power agent's actions; returns as :meth:`step`."""
        if self._pending_alloc is None:
            raise RuntimeError("call observe_power() before step_power()")
        return self._finish_step(self._check_actions(power_actions, (self.num_envs, self.max_ue)))

    def _finish_step(
        self, a: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """The step once the PRB map is settled.

        ``a``: the power actions (controls ``joint`` and ``power``) or the PRB actions (``prb``).
        """
        batch = self._batch
        assert batch is not None
        assert self._obs is not None
        alloc_joint, self._pending_alloc = self._pending_alloc, None
        B = self.num_envs
        rewards = np.zeros(B)
        truncated = np.zeros(B, dtype=bool)
        acting = np.flatnonzero(~self._autoreset)
        restart = np.flatnonzero(self._autoreset)
        info: dict[str, Any] = {}
        if acting.size:
            if self.control == "power":
                alloc = self._alloc.copy()
            elif self.control == "prb":
                alloc = prb_actions_to_alloc(a, batch.observation())
            else:
                assert alloc_joint is not None
                alloc = alloc_joint
            pobs = batch.power_observation(alloc, with_gains=self.control == "prb")
            if self.control == "prb":
                watts = self._scenario_power(acting, pobs)
            else:
                watts = power_actions_to_watts(a, pobs)
            batch.transmit(acting, alloc, watts)
            self._start(acting)
            avg = batch.avg_rate_bps[acting]
            rewards[acting] = self.setup.reward_fn(avg, self.setup.t_ref_bps)
            truncated[acting] = batch.done[acting]
            thr = np.zeros(B)
            jain = np.zeros(B)
            thr[acting] = row_sum(avg)
            jain[acting] = jain_rows(avg)
            mask = np.zeros(B, dtype=bool)
            mask[acting] = True
            info.update(
                cell_throughput_bps=thr, _cell_throughput_bps=mask, jain_index=jain,
                _jain_index=mask.copy(),
            )  # fmt: skip
        final_obs: dict[str, np.ndarray] | None = None
        if self.autoreset_mode == AutoresetMode.SAME_STEP and truncated.any():
            # Gymnasium's SAME_STEP: the ended members restart now; their last observation and
            # info go to info["final_obs"] / info["final_info"].
            restart = np.flatnonzero(truncated)
            final_obs = {k: v[restart].copy() for k, v in self._obs.items()}
            final_info = np.empty(B, dtype=object)
            for i in restart:
                final_info[i] = {k: info[k][i] for k in ("cell_throughput_bps", "jain_index")}
            ended = truncated.copy()
            info.update(final_info=final_info, _final_info=ended, _final_obs=ended.copy())
        if restart.size:
            info.update(self._restart(restart))
        new = self._observe()
        if final_obs is None:
            # A truncated member saw no new decision: it keeps its last observation (single
            # env); NEXT_STEP resets it at the next step.
            keep = truncated
            for key, value in new.items():
                value[keep] = self._obs[key][keep]
            self._autoreset = truncated
        else:
            objs = np.empty(B, dtype=object)
            for j, i in enumerate(np.flatnonzero(truncated)):
                objs[i] = {k: v[j] for k, v in final_obs.items()}
            info["final_obs"] = objs
        self._obs = new
        obs_out = {k: v.copy() for k, v in new.items()}
        return obs_out, rewards, np.zeros(B, dtype=bool), truncated, info

    def _restart(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """New episodes for members ``rows`` (seeds from their generators); their infos."""
        batch = self._batch
        assert batch is not None
        B = self.num_envs
        seeds = np.zeros(B, dtype=np.int64)
        for i in rows:
            seed = int(self._member_rng(int(i)).integers(2**31))
            seeds[i] = seed
            batch.replace(int(i), self._new_member(seed))
        self._builder.reset_rows(rows)
        self._start(rows)
        mask = np.zeros(B, dtype=bool)
        mask[rows] = True
        return {"episode_seed": seeds, "_episode_seed": mask}

    def close_extras(self, **kwargs: Any) -> None:
        """Drop the batch."""
        self._batch = None


__all__ = ["MAX_NUM_ENVS", "RESET_OPTIONS", "PrbPowerVectorEnv"]
