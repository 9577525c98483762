"""SB3's ``VecEnv`` over the cell-batch vector env: n PRB/power envs in one process, one batch.

Stable-Baselines3 steps its own ``VecEnv`` API (same-step autoreset, ``terminal_observation`` in
the infos, float32 rewards) rather than Gymnasium's ``VectorEnv``. This adapter drives
:class:`~edgetwin.envs.prb_power_vector.PrbPowerVectorEnv` in ``SameStep`` autoreset mode and
gives SB3 what a ``DummyVecEnv`` of ``features(Monitor(PrbPowerEnv))`` would: the same
observations (the feature wrapper's transform per member), float32 rewards, ``dones``,
``TimeLimit.truncated``, ``terminal_observation`` and Monitor's ``episode`` record — so a PPO
run on it trains bit-identical weights to the ``DummyVecEnv`` run (``tests/agents``), while the
n cells of a step cost one pass of the compiled slot kernels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from edgetwin.envs.prb_power_vector import PrbPowerVectorEnv


class CellBatchVecEnv(VecEnv):
    """``n`` ``PrbPower-v0`` envs as one SB3 ``VecEnv`` (see the module docstring).

    Args:
        venv: The vector env, built with ``autoreset_mode="SameStep"``.
        features: The feature wrapper's ``observation`` (one env observation → SB3's input).
        observation_space: The feature wrapper's observation space.
    """

    def __init__(
        self,
        venv: PrbPowerVectorEnv,
        features: Callable[[dict[str, np.ndarray]], Any],
        observation_space: gym.spaces.Space[Any],
    ) -> None:
        if venv.autoreset_mode != AutoresetMode.SAME_STEP:
            raise ValueError("CellBatchVecEnv needs a vector env with autoreset_mode='SameStep'")
        self.venv = venv  # before VecEnv's init, which reads render_mode through get_attr
        super().__init__(venv.num_envs, observation_space, venv.single_action_space)
        self._features = features
        self._actions: np.ndarray | None = None
        n = venv.num_envs
        self._returns: list[list[float]] = [[] for _ in range(n)]
        self._t_start = time.time()

    # ------------------------------------------------------------------------------------
    def _stack(self, per_env: Sequence[Any]) -> Any:
        """Per-env feature observations → SB3's batch (dict of arrays or an array)."""
        space = self.observation_space
        if isinstance(space, gym.spaces.Dict):
            return {
                k: np.stack([np.asarray(o[k], dtype=space[k].dtype) for o in per_env])
                for k in space.spaces
            }
        return np.stack([np.asarray(o, dtype=space.dtype) for o in per_env])

    def _member(self, obs: dict[str, np.ndarray], i: int) -> Any:
        return self._features({k: v[i] for k, v in obs.items()})

    def reset(self) -> Any:
        """Reset every env (with the seeds set by :meth:`seed`, used once, as SB3 does)."""
        seeds = self._seeds
        given = None if all(s is None for s in seeds) else list(seeds)
        if any(self._options):
            raise ValueError("CellBatchVecEnv takes no reset options")
        obs, info = self.venv.reset(seed=given)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{"episode_seed": int(s)} for s in info["episode_seed"]]
        self._returns = [[] for _ in range(self.num_envs)]
        return self._stack([self._member(obs, i) for i in range(self.num_envs)])

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """One vector step with DummyVecEnv + Monitor's outputs."""
        assert self._actions is not None
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = []
        for i in range(self.num_envs):
            r = float(reward[i])
            self._returns[i].append(r)
            one: dict[str, Any] = {}
            if dones[i]:
                one.update(info["final_info"][i])
                rewards = self._returns[i]
                one["episode"] = {
                    "r": round(sum(rewards), 6),
                    "l": len(rewards),
                    "t": round(time.time() - self._t_start, 6),
                }
                self._returns[i] = []
                one["terminal_observation"] = self._features(info["final_obs"][i])
                self.reset_infos[i] = {"episode_seed": int(info["episode_seed"][i])}
            else:
                one["cell_throughput_bps"] = float(info["cell_throughput_bps"][i])
                one["jain_index"] = float(info["jain_index"][i])
            one["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            infos.append(one)
        batch = self._stack([self._member(obs, i) for i in range(self.num_envs)])
        return batch, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        """Release the batch."""
        self.venv.close()

    # ------------------------------------------------------------------------------------
    # The VecEnv attribute API: one vector env stands for every index.
    def _indices(self, indices: VecEnvIndices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The vector env's attribute, once per index."""
        return [getattr(self.venv, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Not supported: the members share one vector env."""
        raise NotImplementedError("CellBatchVecEnv's members share one vector env")

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        """Not supported: the members share one vector env."""
        raise NotImplementedError("CellBatchVecEnv's members share one vector env")

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Whether members are wrapped: it reports Monitor's episode records itself."""
        from stable_baselines3.common.monitor import Monitor

        return [wrapper_class is Monitor for _ in self._indices(indices)]
