"""Ray RLlib PPO on ``edgetwin/PrbPowerMARL-v0``, and its export to EdgeTwin's checkpoint format.

RLlib (``ray.rllib``, new API stack: ``RLModule`` + ``Learner`` + ``EnvRunner``) trains the PRB
and the power agent of the PettingZoo AEC env through RLlib's own PettingZoo wrapper
(:class:`ray.rllib.env.wrappers.pettingzoo_env.PettingZooEnv`), with one RLModule per agent and
as many env runners (Ray actors) as asked for. Three pieces make the result an ordinary
``prb/ppo:PATH`` / ``power/ppo:PATH`` policy:

* :class:`UEFeatureObservations`: a PettingZoo wrapper that gives each agent the per-UE
  features of :func:`~edgetwin.agents.rl.features.ue_features`, normalized by **frozen**
  statistics (:func:`feature_stats`, measured on equal-share / equal-power slots before
  training) and clipped to ``±CLIP_OBS``: ``{"x": float32 [max_ue, F], "mask": float32
  [max_ue]}``. :class:`~edgetwin.agents.rl.torch_policy.TorchPolicy` applies the same
  statistics (saved as the actor's ``obs_rms``), so it sees the inputs the module trained on.
* :class:`PerUEPPOModule`: a torch ``RLModule`` whose actor *is* a
  :class:`~edgetwin.agents.rl.networks.PerUEActor` (attribute ``actor``) and whose value
  function is a :class:`~edgetwin.agents.rl.networks.CentralCritic` of the agent's observation;
  the action distribution is RLlib's diagonal Gaussian with the actor's shared ``log_std``.
* :func:`export_checkpoint`: copies each module's ``actor`` weights into a ``per_ue`` record
  of :func:`~edgetwin.agents.rl.checkpoint.save_policy_checkpoint`, as MAPPO saves its actors.

Ray RLlib is an optional extra (``pip install 'edgetwin[rllib]'``): importing this module
without it raises ``ImportError`` with the advice of :data:`RLLIB_MISSING`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo.utils.wrappers import BaseWrapper

from edgetwin.agents.rl.checkpoint import save_policy_checkpoint
from edgetwin.agents.rl.features import N_UE_FEATURES, RunningMeanStd, ue_features
from edgetwin.agents.rl.networks import CentralCritic, PerUEActor
from edgetwin.agents.rl.options import CLIP_OBS

#: The one line given when Ray or RLlib's dependencies are missing.
RLLIB_MISSING = "RLlib training needs Ray RLlib: pip install 'edgetwin[rllib]'"

try:
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
    from ray.rllib.core.rl_module.torch import TorchRLModule
except ImportError as _e:  # Ray, or one of RLlib's own dependencies (dm_tree, lz4, ...)
    raise ImportError(f"{RLLIB_MISSING} ({_e})") from _e

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm

#: The PettingZoo env this module trains on.
ENV_ID = "edgetwin/PrbPowerMARL-v0"
#: Name under which :func:`register_env` registers the RLlib env.
RLLIB_ENV_NAME = "edgetwin_prb_power_marl"
#: The agents (and RLModule ids), in their order of play within a slot.
AGENTS: tuple[str, ...] = ("prb", "power")


# --------------------------------------------------------------------------------------------
# Observations
# --------------------------------------------------------------------------------------------
def _agent_features(obs: Mapping[str, np.ndarray], rms: RunningMeanStd) -> dict[str, np.ndarray]:
    """``{"x", "mask"}`` of one raw observation, exactly as TorchPolicy normalizes it."""
    real = np.asarray(obs["ue_mask"]) > 0
    x = rms.normalize(ue_features(obs), clip=CLIP_OBS)
    x[~real] = 0.0
    return {"x": x, "mask": real.astype(np.float32)}


def feature_stats(
    env_kwargs: Mapping[str, Any], n_slots: int = 400, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Per-feature mean and variance of each agent's real UE rows under the baseline actions.

    Runs ``n_slots`` slots of the env with all-zero actions (equal PRB shares, equal power:
    the actors' starting point) from episode seeds drawn from ``seed``.

    Args:
        env_kwargs: Keyword arguments of :func:`edgetwin.envs.make_marl` (scenario, overrides).
        n_slots: Slots to observe (≥ 1).
        seed: Seed of the env's episode seeds.

    Returns:
        Agent → :meth:`RunningMeanStd.state_dict` of shape [N_UE_FEATURES] (plain data, so
        that it travels in an RLlib ``env_config`` and into a checkpoint).
    """
    from edgetwin.envs import make_marl

    if n_slots < 1:
        raise ValueError(f"n_slots must be >= 1, got {n_slots}")
    env = make_marl(ENV_ID, **dict(env_kwargs))
    rms = {a: RunningMeanStd((N_UE_FEATURES,)) for a in AGENTS}
    env.reset(seed=seed)
    slots = 0
    while slots < n_slots:
        if not env.agents:
            env.reset()
            continue
        agent = env.agent_selection
        obs, _, term, trunc, _ = env.last()
        if term or trunc:
            env.step(None)
            continue
        real = np.asarray(obs["ue_mask"]) > 0
        if real.any():
            rms[agent].update(ue_features(obs)[real])
        env.step(np.zeros(env.action_space(agent).shape, np.float32))
        slots += agent == AGENTS[-1]
    env.close()
    return {a: r.state_dict() for a, r in rms.items()}


class UEFeatureObservations(BaseWrapper):  # type: ignore[type-arg]
    """PettingZoo AEC wrapper: raw ``Dict`` observation → normalized per-UE features and mask.

    Observation of each agent: ``{"x": float32 [max_ue, N_UE_FEATURES], "mask": float32
    [max_ue]}`` (``x`` normalized by the agent's frozen ``stats`` and clipped to ``±CLIP_OBS``,
    zero on padded rows; ``mask`` 1 for a real UE). Actions are cast to float32 and clipped to
    ``[-1, 1]`` before they reach the env (RLlib already clips; this keeps the env's
    out-of-bounds warning silent for float64 input).

    Args:
        env: The env of :func:`edgetwin.envs.make_marl` (``edgetwin/PrbPowerMARL-v0``).
        stats: Agent → ``RunningMeanStd.state_dict()`` of shape [N_UE_FEATURES]
            (:func:`feature_stats`).
    """

    def __init__(self, env: Any, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(env)
        self._rms = {a: RunningMeanStd.from_state_dict(stats[a]) for a in AGENTS}
        max_ue = int(env.unwrapped.max_ue)
        self._spaces = {
            a: spaces.Dict(
                {
                    "x": spaces.Box(-CLIP_OBS, CLIP_OBS, (max_ue, N_UE_FEATURES), np.float32),
                    "mask": spaces.Box(0.0, 1.0, (max_ue,), np.float32),
                }
            )
            for a in AGENTS
        }

    def observation_space(self, agent: str) -> spaces.Space[Any]:
        """The features-and-mask ``Dict`` space of ``agent``."""
        return self._spaces[agent]

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        """Normalized features and UE mask of ``agent``'s latest observation."""
        return _agent_features(self.env.observe(agent), self._rms[agent])

    def step(self, action: np.ndarray | None) -> None:
        """Step with the action as float32 clipped to ``[-1, 1]`` (``None`` passes through)."""
        if action is not None:
            action = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        self.env.step(action)


def make_rllib_env(env_config: Mapping[str, Any]) -> Any:
    """RLlib env creator: the wrapped AEC env inside RLlib's ``PettingZooEnv``.

    Args:
        env_config: ``{"env_kwargs": make_marl keyword arguments, "stats": feature_stats(...)}``
            (RLlib's ``EnvContext``, a dict).
    """
    from ray.rllib.env.wrappers.pettingzoo_env import PettingZooEnv

    from edgetwin.envs import make_marl

    torch.set_num_threads(1)  # tiny networks on a shared CPU (see TorchPolicy._one_thread)
    env = make_marl(ENV_ID, **dict(env_config.get("env_kwargs", {})))
    return PettingZooEnv(UEFeatureObservations(env, env_config["stats"]))


def register_env() -> None:
    """Register :func:`make_rllib_env` with Ray Tune as :data:`RLLIB_ENV_NAME`."""
    from ray.tune.registry import register_env as _register

    _register(RLLIB_ENV_NAME, make_rllib_env)


# --------------------------------------------------------------------------------------------
# The RLModule
# --------------------------------------------------------------------------------------------
class PerUEPPOModule(TorchRLModule, ValueFunctionAPI):  # type: ignore[misc]
    """PPO module of one agent: PerUEActor (Gaussian means) + CentralCritic (value).

    ``model_config``: ``hidden`` (MLP width, default 64) and ``init_std`` (initial action
    standard deviation, default 0.2), as MAPPO's. The action distribution is RLlib's default
    for a ``Box``, ``TorchDiagGaussian``, over ``[means, log_std]`` with the actor's one
    ``log_std`` for every UE.
    """

    def setup(self) -> None:
        """Build the actor and the critic from the ``{"x", "mask"}`` observation space."""
        space = self.observation_space
        assert isinstance(space, spaces.Dict)
        obs = space["x"]
        assert obs.shape is not None
        self.max_ue, self.n_features = int(obs.shape[0]), int(obs.shape[1])
        cfg: dict[str, Any] = dict(self.model_config or {})  # type: ignore[arg-type]
        self.hidden = int(cfg.get("hidden", 64))
        self.actor = PerUEActor(self.n_features, self.hidden)
        with torch.no_grad():
            self.actor.log_std.fill_(math.log(float(cfg.get("init_std", 0.2))))
        self.critic = CentralCritic(self.n_features, self.hidden)

    @staticmethod
    def _inputs(batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        obs = batch[Columns.OBS]
        return obs["x"], obs["mask"] > 0

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Gaussian parameters ``[means, log_std]``, [B, 2·max_ue]."""
        x, mask = self._inputs(batch)
        mean = self.actor(x, mask)
        log_std = self.actor.log_std.expand_as(mean)
        return {Columns.ACTION_DIST_INPUTS: torch.cat((mean, log_std), dim=-1)}

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        """State values of the agent's observations, [B]."""
        x, mask = self._inputs(batch)
        return self.critic(x, mask)


# --------------------------------------------------------------------------------------------
# Configuration and export
# --------------------------------------------------------------------------------------------
def ppo_config(
    env_kwargs: Mapping[str, Any],
    stats: Mapping[str, Mapping[str, Any]],
    *,
    num_env_runners: int = 2,
    num_envs_per_env_runner: int = 1,
    train_batch_size: int = 2048,
    minibatch_size: int = 256,
    num_epochs: int = 4,
    lr: float = 3e-4,
    gamma: float = 0.95,
    hidden: int = 64,
    init_std: float = 0.2,
    seed: int = 0,
) -> Any:
    """RLlib ``PPOConfig`` (new API stack, torch, CPU) of two agents, one RLModule each.

    Args:
        env_kwargs: Keyword arguments of :func:`edgetwin.envs.make_marl`.
        stats: :func:`feature_stats` of the same env.
        num_env_runners: Ray actors that step envs (≥ 1; each gets one CPU).
        num_envs_per_env_runner: Envs each runner steps as one batch (one module forward pass
            for all of them).
        train_batch_size: Agent steps per iteration and learner (both agents together).
        minibatch_size: Agent steps per SGD minibatch.
        num_epochs: Passes over each batch.
        lr: Adam learning rate.
        gamma: Discount per decision of an agent (one per slot).
        hidden: Width of the actor and critic MLPs.
        init_std: Initial standard deviation of the Gaussian action noise.
        seed: RLlib's seed (env runners' env seeds, network initialization).

    Returns:
        A ``PPOConfig`` ready for ``build_algo()`` (call :func:`register_env` first).
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    spec = MultiRLModuleSpec(
        rl_module_specs={
            a: RLModuleSpec(
                module_class=PerUEPPOModule, model_config={"hidden": hidden, "init_std": init_std}
            )
            for a in AGENTS
        }
    )
    return (
        PPOConfig()
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .framework("torch")
        .environment(
            RLLIB_ENV_NAME,
            env_config={"env_kwargs": dict(env_kwargs), "stats": dict(stats)},
            clip_actions=True,
            normalize_actions=False,
        )
        .env_runners(
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs_per_env_runner,
            num_cpus_per_env_runner=1,
            rollout_fragment_length="auto",
        )
        .learners(num_learners=0)
        .multi_agent(
            policies=set(AGENTS),
            policy_mapping_fn=_policy_mapping,
        )
        .rl_module(rl_module_spec=spec)
        .training(
            train_batch_size_per_learner=train_batch_size,
            minibatch_size=minibatch_size,
            num_epochs=num_epochs,
            lr=lr,
            gamma=gamma,
            lambda_=0.95,
            clip_param=0.2,
            entropy_coeff=0.0,
            vf_loss_coeff=0.5,
            vf_clip_param=100.0,
            grad_clip=None,  # Adam scales actor and critic apart; a global-norm clip would let
            # the value loss (returns ~ 1/(1 − γ)) shrink the policy gradient
        )
        .debugging(seed=seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=5)
    )


def _policy_mapping(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    """Each agent trains its own module (``"prb"`` → ``"prb"``, ``"power"`` → ``"power"``)."""
    return str(agent_id)


def actor_record(module: Any, stats: Mapping[str, Any], max_ue: int) -> dict[str, Any]:
    """The ``per_ue`` actor record of one :class:`PerUEPPOModule` (as MAPPO's ``record``)."""
    actor = module.actor
    return {
        "kind": "per_ue",
        "kwargs": {"n_features": int(actor.n_features), "hidden": int(actor.hidden)},
        "state_dict": {k: v.detach().cpu().clone() for k, v in actor.state_dict().items()},
        "obs_rms": dict(stats),
        "clip_obs": CLIP_OBS,
        "slice": [0, int(max_ue)],
        "zero_prb_count": False,
    }


def export_checkpoint(
    modules: Mapping[str, Any],
    stats: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    *,
    max_ue: int,
    n_prb: int,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write the RLlib modules' actors as one EdgeTwin checkpoint (``prb/ppo:PATH`` etc.).

    Args:
        modules: Agent (``"prb"``/``"power"``) → its trained :class:`PerUEPPOModule`.
        stats: The :func:`feature_stats` the modules trained with (saved as ``obs_rms``).
        path: Destination ``.pt``.
        max_ue: Padded UE rows of the env.
        n_prb: PRBs of the carrier.
        meta: Provenance (command, iterations, config, returns).

    Returns:
        The path written.
    """
    actors = {a: actor_record(modules[a], stats[a], max_ue) for a in AGENTS if a in modules}
    return save_policy_checkpoint(
        path,
        max_ue=int(max_ue),
        n_prb=int(n_prb),
        actors=actors,
        meta={"trainer": "ray.rllib PPO (edgetwin.agents.rl.rllib_export)", **dict(meta or {})},
    )


def trained_modules(algo: Algorithm) -> dict[str, Any]:
    """Agent → the learner's current RLModule of a built (and trained) algorithm."""
    out = {}
    for a in AGENTS:
        module = algo.get_module(a)
        if module is None:
            raise RuntimeError(f"the algorithm has no RLModule {a!r}")
        out[a] = module
    return out


def module_action_means(
    module: Any, observations: Sequence[Mapping[str, np.ndarray]]
) -> np.ndarray:
    """The module's deterministic actions (Gaussian means) for feature observations, [N, max_ue].

    Args:
        module: A :class:`PerUEPPOModule`.
        observations: ``{"x", "mask"}`` dicts of :class:`UEFeatureObservations`.
    """
    x = torch.from_numpy(np.stack([o["x"] for o in observations]))
    m = torch.from_numpy(np.stack([o["mask"] for o in observations]))
    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: {"x": x, "mask": m}})
    inputs = out[Columns.ACTION_DIST_INPUTS].numpy()
    return np.asarray(inputs[:, : x.shape[1]], dtype=np.float32)


def ray_init_kwargs(num_cpus: int) -> dict[str, Any]:
    """Keyword arguments of ``ray.init`` for a quiet local Ray of ``num_cpus`` CPUs."""
    return {
        "num_cpus": int(num_cpus),
        "include_dashboard": False,
        "log_to_driver": os.environ.get("EDGETWIN_RAY_LOGS") == "1",
        "configure_logging": True,
        "logging_level": "ERROR",
    }


# --------------------------------------------------------------------------------------------
# The single-agent Gymnasium envs (AdapterCache-v0, DraftLength-v0) on RLlib's default module
# --------------------------------------------------------------------------------------------
#: RLlib name of :func:`make_gym_env` (one creator for every registered EdgeTwin Gymnasium id).
RLLIB_GYM_ENV_NAME = "edgetwin_gym"


def make_gym_env(env_config: Mapping[str, Any]) -> Any:
    """RLlib env creator: ``gym.make(env_config["env_id"], **env_config["env_kwargs"])``.

    A ``Dict`` observation (AdapterCache-v0's) is flattened to one vector, which RLlib's
    default MLP encoder takes; a flat one (DraftLength-v0's) passes as is.
    """
    import gymnasium as gym

    import edgetwin.envs  # noqa: F401  (registers the ids)

    torch.set_num_threads(1)
    env = gym.make(env_config["env_id"], **dict(env_config.get("env_kwargs", {})))
    if isinstance(env.observation_space, gym.spaces.Dict):
        env = gym.wrappers.FlattenObservation(env)
    return env


def gym_ppo_config(
    env_id: str,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    num_env_runners: int = 0,
    train_batch_size: int = 256,
    minibatch_size: int = 64,
    num_epochs: int = 4,
    lr: float = 3e-4,
    gamma: float = 0.99,
    seed: int = 0,
) -> Any:
    """RLlib ``PPOConfig`` (new API stack, torch, CPU, default MLP module) for a Gymnasium env.

    Args:
        env_id: A registered EdgeTwin Gymnasium id (e.g. ``"edgetwin/DraftLength-v0"``).
        env_kwargs: Its keyword arguments.
        num_env_runners: Ray actors stepping envs (0: the driver steps them).
        train_batch_size: Env steps per iteration.
        minibatch_size: Env steps per SGD minibatch.
        num_epochs: Passes over each batch.
        lr: Adam learning rate.
        gamma: Discount per env step.
        seed: RLlib's seed (env runners, module initialization).
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.tune.registry import register_env as _register

    _register(RLLIB_GYM_ENV_NAME, make_gym_env)
    return (
        PPOConfig()
        .environment(
            RLLIB_GYM_ENV_NAME,
            env_config={"env_id": env_id, "env_kwargs": dict(env_kwargs or {})},
        )
        .framework("torch")
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=1)
        .learners(num_learners=0)
        .training(
            train_batch_size=train_batch_size,
            minibatch_size=minibatch_size,
            num_epochs=num_epochs,
            lr=lr,
            gamma=gamma,
        )
        .debugging(seed=seed)
    )
