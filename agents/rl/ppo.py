"""Single-agent PPO (Stable-Baselines3) on ``edgetwin/PrbPower-v0`` or ``edgetwin/AdapterCache-v0``.

The agent controls PRB shares, power shares or both (``control``) with one of two networks
(``arch``), both trained by SB3's PPO (rollouts, GAE, clipped surrogate, Adam):

* ``"per_ue"``: :class:`PerUEPolicy`, the per-UE shared networks of the MAPPO learner inside
  SB3: the action mean is :class:`~edgetwin.agents.rl.networks.PerUEActor` (one MLP shared by
  every UE plus a pooled context; ``n_heads=2`` for ``joint``), the value is
  :class:`~edgetwin.agents.rl.networks.CentralCritic`, the log standard deviation is SB3's
  state-independent one. It sees :class:`~edgetwin.agents.rl.features.PerUEFeatures`
  (``{"x": ue_features [max_ue, F], "mask": ue_mask [max_ue]}``), ``x`` normalized by
  ``VecNormalize`` per UE row and feature.
* ``"flat"``: SB3's ``MlpPolicy`` (64×64 Tanh) on :func:`~edgetwin.agents.rl.features.
  flat_features` (:class:`~edgetwin.agents.rl.features.FlatFeatures`), normalized by
  ``VecNormalize``.

After training, the actor and the observation statistics are exported to the common checkpoint
format (:mod:`edgetwin.agents.rl.checkpoint`), so the result runs inline in any scenario::

    edgetwin train ppo --control prb --steps 50000 --seed 0 --out runs/ppo_prb/model.pt
    edgetwin run nr_cell --policy prb=ppo:runs/ppo_prb/model.pt

``control="cache"`` trains the same way on ``edgetwin/AdapterCache-v0`` (one step = one cache
epoch; the scenario is the env's options, ``overrides``): the observation is
:class:`~edgetwin.agents.rl.features.CacheFeatures` (the cache-policy dict → per-adapter
features, one row per adapter: ``per_ue`` is then a per-adapter shared actor), the action a score
per adapter, and the checkpoint's ``cache`` actor runs as ``cache/ppo:PATH`` in
``simulate_adapter_serving`` and in the env::

    edgetwin train ppo --control cache --steps 4000 --seed 0 --out runs/ppo_cache/model.pt

Training is deterministic given ``seed`` and ``n_envs`` on a CPU (SB3's ``seed`` seeds Python,
numpy, torch and the envs, env ``i`` with ``seed + i``; torch runs on one thread while training).
With ``n_envs > 1`` the PRB/power envs step as one cell batch in this process (``vec="batch"``,
:class:`~edgetwin.agents.rl.batch_vec_env.CellBatchVecEnv`) or in worker processes
(``vec="subproc"``: SB3's ``SubprocVecEnv``, one BLAS thread each), with the same results as
stepping them in-process one after another (``vec="inline"``); ``n_envs=1`` steps its env
in-process (``DummyVecEnv``), as before ``--n-envs`` existed.
"""

from __future__ import annotations

import datetime as dt
import math
import shlex
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.vec_env import VecEnvWrapper
from torch import Tensor, nn

from edgetwin.agents.rl.checkpoint import save_policy_checkpoint
from edgetwin.agents.rl.features import CacheFeatures, FlatFeatures, PerUEFeatures
from edgetwin.agents.rl.networks import CentralCritic, FlatActor, PerUEActor
from edgetwin.agents.rl.options import ARCHS, CACHE_CONTROL, CACHE_ENV, CLIP_OBS, PPO_CONTROLS
from edgetwin.agents.rl.torch_policy import TorchPolicy
from edgetwin.envs.adapter_cache import AdapterCacheEnv
from edgetwin.envs.prb_power import PrbPowerEnv

#: PPO defaults for this env (one step = one slot; an episode of 0.25 s is ~500 steps).
PPO_DEFAULTS: dict[str, Any] = {
    "n_steps": 512,
    "batch_size": 128,
    # Lower than SB3's 3e-4 × 10 epochs: with those the mean episode return on nr_cell fell
    # after ~50k steps (measured: 400 → 339 per 500-step episode at 150k steps).
    "learning_rate": 1e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "n_epochs": 5,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}
#: PPO defaults of ``control="cache"`` (one step = one cache epoch; an episode is 20 steps):
#: short rollouts and a short horizon (a boundary's choice pays off mostly in the epoch it
#: governs). Chosen on 4000-step runs, net utility vs cache/random on 10 tuning seeds
#: (1000-1009): PPO_DEFAULTS −0.0067, γ 0.9 + lr 3e-4 −0.0002, γ 0.5 +0.0009, γ 0 −0.0033,
#: γ 0.5 + n_steps 100 +0.0015 (this).
CACHE_PPO_DEFAULTS: dict[str, Any] = {
    **PPO_DEFAULTS,
    "n_steps": 100,
    "batch_size": 50,
    "learning_rate": 3e-4,
    "n_epochs": 10,
    "gamma": 0.5,
}
#: Hidden layers of the policy and value MLPs (Tanh) of ``arch="flat"``.
NET_ARCH: tuple[int, ...] = (64, 64)
#: Width of the per-UE actor and critic MLPs of ``arch="per_ue"`` (as the MAPPO learner).
PER_UE_HIDDEN = 64
#: Networks of :func:`train_ppo`.
Arch = Literal["per_ue", "flat"]
#: Initial log standard deviation of the Gaussian policy (std 0.2 on actions in [−1, 1]).
LOG_STD_INIT = math.log(0.2)


class PerUEExtractor(BaseFeaturesExtractor):
    """SB3 features extractor of :class:`PerUEPolicy`: passes ``x`` and ``mask`` through.

    Packs the (normalized) per-UE features ``x`` [B, M, F] and the UE mask [B, M] (raw 0/1)
    into one tensor [B, M·F + M] that :class:`PerUENets` unpacks.

    Args:
        observation_space: The ``Dict`` space of :class:`~edgetwin.agents.rl.features.
            PerUEFeatures`.
    """

    def __init__(self, observation_space: gym.Space[Any]) -> None:
        assert isinstance(observation_space, spaces.Dict)
        x_space = observation_space["x"]
        assert x_space.shape is not None
        assert len(x_space.shape) == 2
        max_ue, n_features = (int(d) for d in x_space.shape)
        super().__init__(observation_space, features_dim=max_ue * (n_features + 1))
        self.max_ue = max_ue
        self.n_features = n_features

    def forward(self, observations: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        """``[x raveled (UE-major), mask]``, [B, M·F + M]."""
        x = observations["x"]
        return torch.cat((x.reshape(x.shape[0], -1), observations["mask"]), dim=1)


class PerUENets(nn.Module):
    """The "MLP extractor" of :class:`PerUEPolicy`: per-UE actor means and the central value.

    ``forward_actor`` returns :class:`~edgetwin.agents.rl.networks.PerUEActor`'s means
    [B, M · n_heads] (SB3's ``latent_pi``; the action net is the identity) and
    ``forward_critic`` :class:`~edgetwin.agents.rl.networks.CentralCritic`'s value [B, 1]
    (``latent_vf``; the value net is the identity). A UE is real where ``mask > 0.5``.

    Args:
        max_ue: Padded UE rows.
        n_features: Features per UE.
        hidden: Width of the actor and critic MLPs.
        n_heads: Actions per UE.
    """

    def __init__(self, max_ue: int, n_features: int, hidden: int, n_heads: int) -> None:
        super().__init__()
        self.max_ue = int(max_ue)
        self.n_features = int(n_features)
        self.actor = PerUEActor(n_features, hidden, n_heads)
        # SB3's ``policy.log_std`` is the trained one; the actor's own is unused here.
        self.actor.log_std.requires_grad_(False)
        self.critic = CentralCritic(n_features, hidden)
        self.latent_dim_pi = self.max_ue * int(n_heads)
        self.latent_dim_vf = 1

    def _unpack(self, features: Tensor) -> tuple[Tensor, Tensor]:
        n = self.max_ue * self.n_features
        x = features[:, :n].reshape(-1, self.max_ue, self.n_features)
        return x, features[:, n:] > 0.5

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Actor means [B, M · n_heads] and values [B, 1]."""
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: Tensor) -> Tensor:
        """Actor means, [B, M · n_heads] (heads-major)."""
        x, mask = self._unpack(features)
        return self.actor(x, mask)

    def forward_critic(self, features: Tensor) -> Tensor:
        """Values, [B, 1]."""
        x, mask = self._unpack(features)
        return self.critic(x, mask).unsqueeze(-1)


class PerUEPolicy(MultiInputActorCriticPolicy):
    """SB3 actor-critic policy with the per-UE shared networks (:class:`PerUENets`).

    Action mean ``PerUEActor(x, mask > 0.5)``, value ``CentralCritic(x, mask > 0.5)``, SB3's
    state-independent ``log_std`` (one per action entry, initialized to ``log_std_init``). The
    networks keep their own initialization (``ortho_init`` is off); the optimizer covers every
    parameter. ``n_heads`` is the action size over ``max_ue`` (2 for ``control="joint"``).

    Args:
        observation_space: ``Dict`` of ``"x"`` [max_ue, F] and ``"mask"`` [max_ue].
        action_space: ``Box`` of ``n_heads · max_ue`` actions.
        lr_schedule: SB3 learning-rate schedule.
        hidden: Width of the actor and critic MLPs.
        **kwargs: Further :class:`~stable_baselines3.common.policies.ActorCriticPolicy`
            arguments (``log_std_init``, optimizer).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Space[Any],
        lr_schedule: Schedule,
        hidden: int = PER_UE_HIDDEN,
        **kwargs: Any,
    ) -> None:
        self.hidden = int(hidden)
        kwargs["ortho_init"] = False
        kwargs["features_extractor_class"] = PerUEExtractor
        kwargs.setdefault("share_features_extractor", True)
        if not kwargs["share_features_extractor"]:
            raise ValueError("PerUEPolicy needs share_features_extractor=True")
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(hidden=self.hidden)
        return data

    def _build_mlp_extractor(self) -> None:
        x_space = cast(spaces.Dict, self.observation_space)["x"]
        assert x_space.shape is not None
        max_ue, n_features = (int(d) for d in x_space.shape)
        n_actions = get_action_dim(self.action_space)
        if n_actions % max_ue:
            raise ValueError(f"{n_actions} actions are not a multiple of max_ue={max_ue}")
        nets = PerUENets(max_ue, n_features, self.hidden, n_actions // max_ue)
        self.mlp_extractor = nets  # type: ignore[assignment]

    def _build(self, lr_schedule: Schedule) -> None:
        self._build_mlp_extractor()
        if not isinstance(self.action_dist, DiagGaussianDistribution):
            raise ValueError("PerUEPolicy needs a Box action space (Gaussian actions, no gSDE)")
        self.action_net = nn.Identity()  # type: ignore[assignment]
        self.log_std = nn.Parameter(
            torch.ones(self.action_dist.action_dim) * self.log_std_init, requires_grad=True
        )
        self.value_net = nn.Identity()  # type: ignore[assignment]
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    @property
    def nets(self) -> PerUENets:
        """The per-UE actor and critic."""
        return cast(PerUENets, self.mlp_extractor)


class Float32Rewards(VecEnvWrapper):
    """Rewards as float32, as ``DummyVecEnv`` stores them (``SubprocVecEnv`` stacks float64).

    So that ``VecNormalize`` sees the same rewards, and PPO trains the same weights, whether the
    envs step in worker processes or in this one.
    """

    def reset(self) -> Any:
        """Reset every env (the wrapped ``reset``)."""
        return self.venv.reset()

    def step_wait(self) -> Any:
        """The wrapped ``step_wait`` with the rewards cast to float32."""
        obs, rewards, dones, infos = self.venv.step_wait()
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos


def _rms_record(rms: Any) -> dict[str, Any]:
    """An SB3 ``RunningMeanStd`` as plain data (as :meth:`RunningMeanStd.state_dict`)."""
    return {
        "shape": list(np.shape(rms.mean)),
        "mean": np.asarray(rms.mean, dtype=np.float64).tolist(),
        "var": np.asarray(rms.var, dtype=np.float64).tolist(),
        "count": float(rms.count),
    }


def export_actors(model: Any, venv: Any, control: str) -> dict[str, dict[str, Any]]:
    """Actor records of a trained SB3 PPO model (:class:`PerUEPolicy` or ``MlpPolicy``).

    Args:
        model: The SB3 PPO model.
        venv: Its ``VecNormalize`` (observation statistics of ``"x"`` or of the flat vector).
        control: ``"prb"``, ``"power"``, ``"joint"`` or ``"cache"`` (``max_ue`` is then the
            number of adapters).

    Returns:
        Family → actor record of :mod:`edgetwin.agents.rl.checkpoint` (``joint``: both
        families share the record, PRB slice ``[0, M]``, power ``[M, 2M]``, ``zero_prb_count``).
    """
    policy = model.policy
    if isinstance(policy, PerUEPolicy):
        nets = policy.nets
        actor = nets.actor
        max_ue = nets.max_ue
        state = {k: v.detach().clone() for k, v in actor.state_dict().items()}
        # Informational: the actor's log_std is unused in SB3; record SB3's mean log_std.
        state["log_std"] = policy.log_std.detach().mean().reshape(1).clone()
        record: dict[str, Any] = {
            "kind": "per_ue",
            "kwargs": {
                "n_features": actor.n_features,
                "hidden": actor.hidden,
                "n_heads": actor.n_heads,
            },
            "state_dict": state,
            "obs_rms": _rms_record(venv.obs_rms["x"]),  # per UE row and feature, [M, F]
            "clip_obs": float(venv.clip_obs),
        }
    else:
        flat = FlatActor.from_sb3(model)
        max_ue = int(flat.out_dim // (2 if control == "joint" else 1))
        record = {
            "kind": "flat",
            "kwargs": {"in_dim": flat.in_dim, "out_dim": flat.out_dim, "hidden": list(flat.hidden)},
            "state_dict": flat.state_dict(),
            "obs_rms": _rms_record(venv.obs_rms),  # one RunningMeanStd for a Box observation
            "clip_obs": float(venv.clip_obs),
        }
    if control == "joint":
        return {
            "prb": {**record, "slice": [0, max_ue], "zero_prb_count": True},
            "power": {**record, "slice": [max_ue, 2 * max_ue], "zero_prb_count": True},
        }
    return {control: {**record, "slice": [0, max_ue], "zero_prb_count": False}}


def _versions() -> dict[str, str]:
    import gymnasium
    import stable_baselines3

    try:
        from importlib.metadata import version

        edgetwin = version("edgetwin")
    except Exception:
        edgetwin = "unknown"
    return {
        "edgetwin": edgetwin,
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
    }


def _command(
    scenario: str,
    control: str,
    arch: str,
    total_steps: int,
    seed: int,
    episode_s: float | None,
    overrides: Mapping[str, Any],
    n_envs: int = 1,
) -> str:
    """The ``edgetwin train ppo`` command line that reproduces a run with default PPO settings."""
    parts = [
        "edgetwin train ppo",
        *([] if control == CACHE_CONTROL else [f"--scenario {shlex.quote(scenario)}"]),
        f"--control {control}",
        f"--arch {arch}",
        f"--steps {total_steps}",
        f"--seed {seed}",
    ]
    if n_envs != 1:
        parts.append(f"--n-envs {n_envs}")
    if episode_s is not None:
        parts.append(f"--episode-s {episode_s:g}")
    parts += [f"--set {shlex.quote(f'{k}={v}')}" for k, v in overrides.items()]
    return " ".join(parts)


def _check(control: str, arch: str, total_steps: int, n_envs: int) -> None:
    if control not in PPO_CONTROLS:
        raise ValueError(f"unknown control {control!r}; allowed: {', '.join(PPO_CONTROLS)}")
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; allowed: {', '.join(ARCHS)}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    if n_envs <= 0:
        raise ValueError(f"n_envs must be > 0, got {n_envs}")


def ppo_settings(
    total_steps: int,
    n_envs: int = 1,
    ppo_kwargs: Mapping[str, Any] | None = None,
    *,
    control: str = "prb",
) -> dict[str, Any]:
    """PPO settings: :data:`PPO_DEFAULTS` with ``ppo_kwargs`` on top.

    ``control="cache"`` starts from :data:`CACHE_PPO_DEFAULTS` instead. ``n_steps`` and
    ``batch_size`` are capped so that a run of ``total_steps`` updates at least once
    (``n_steps ≤ ⌈total_steps / n_envs⌉``, ``batch_size ≤ n_steps · n_envs``).
    """
    base = CACHE_PPO_DEFAULTS if control == CACHE_CONTROL else PPO_DEFAULTS
    kw = {**base, **dict(ppo_kwargs or {})}
    kw["n_steps"] = int(min(kw["n_steps"], max(2, math.ceil(total_steps / n_envs))))
    kw["batch_size"] = int(min(kw["batch_size"], kw["n_steps"] * n_envs))
    return kw


def make_ppo(
    scenario: str = "nr_cell",
    control: str = "prb",
    arch: Arch = "per_ue",
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
    n_envs: int = 1,
    ppo_kwargs: Mapping[str, Any] | None = None,
    reward: str = "throughput_fairness",
    reward_kwargs: Mapping[str, Any] | None = None,
    verbose: int = 0,
    subproc: bool | None = None,
    vec: str | None = None,
) -> tuple[Any, Any]:
    """An untrained SB3 PPO model on a PRB/power or adapter-cache env and its ``VecNormalize``.

    The env is ``edgetwin/PrbPower-v0``, or ``edgetwin/AdapterCache-v0`` for ``control="cache"``.
    Arguments as :func:`train_ppo` (``ppo_kwargs`` is the full setting dict,
    :func:`ppo_settings`). Seeds torch with ``seed`` before building (deterministic weights).
    Close the returned ``venv`` when done: with ``SubprocVecEnv`` it ends the env workers.

    Returns:
        ``(model, venv)``: the ``PPO`` model and its ``VecNormalize``
        (``norm_obs_keys=["x"]`` for ``per_ue``: the mask stays raw).
    """
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

    _check(control, arch, 1, n_envs)
    vec = _vectorization(vec, subproc, n_envs, control)
    kw = (
        dict(ppo_kwargs)
        if ppo_kwargs is not None
        else ppo_settings(PPO_DEFAULTS["n_steps"], control=control)
    )
    wrapper = PerUEFeatures if arch == "per_ue" else FlatFeatures
    if control == CACHE_CONTROL and (reward != "throughput_fairness" or reward_kwargs):
        raise ValueError(
            f"reward does not apply to control='cache': {CACHE_ENV}'s reward is the epoch's "
            f"net utility; got reward={reward!r}, reward_kwargs={reward_kwargs!r}"
        )

    def make_env() -> gym.Env[Any, Any]:
        if control == CACHE_CONTROL:
            cache_env = AdapterCacheEnv(overrides=dict(overrides or {}))
            return CacheFeatures(Monitor(cache_env), arch)  # type: ignore[arg-type]
        env = PrbPowerEnv(
            scenario=scenario,
            control=control,  # type: ignore[arg-type]
            reward=reward,
            reward_kwargs=reward_kwargs,
            overrides=dict(overrides or {}),
        )
        return wrapper(Monitor(env))  # type: ignore[arg-type]

    envs: VecEnv
    if vec == "batch":
        from edgetwin.agents.rl.batch_vec_env import CellBatchVecEnv
        from edgetwin.envs.prb_power_vector import PrbPowerVectorEnv

        prototype = make_env()  # the feature wrapper's transform and space
        assert isinstance(prototype, gym.ObservationWrapper)
        torch.manual_seed(seed)
        batch = PrbPowerVectorEnv(
            num_envs=n_envs,
            scenario=scenario,
            control=control,  # type: ignore[arg-type]
            reward=reward,
            reward_kwargs=reward_kwargs,
            overrides=dict(overrides or {}),
            autoreset_mode="SameStep",
        )
        envs = CellBatchVecEnv(batch, prototype.observation, prototype.observation_space)
    elif vec == "subproc":
        from edgetwin.scenarios.run import _one_blas_thread_per_worker

        # Built here once first, so that bad arguments raise their own error (ValueError), not
        # a worker's EOFError. SB3 pickles make_env (cloudpickle); each worker builds its env.
        make_env().close()
        torch.manual_seed(seed)
        with _one_blas_thread_per_worker():  # workers copy the environment when they start
            envs = Float32Rewards(SubprocVecEnv([make_env] * n_envs))
    else:
        torch.manual_seed(seed)
        envs = DummyVecEnv([make_env] * n_envs)
    try:
        return _build_ppo(envs, arch, seed, kw, verbose)
    except BaseException:
        envs.close()  # ends a SubprocVecEnv's workers
        raise


#: How ``n_envs`` envs are stepped: one cell batch in this process (PRB/power envs), worker
#: processes (``SubprocVecEnv``) or one after another in this process (``DummyVecEnv``).
VECTORIZATIONS: tuple[str, ...] = ("batch", "subproc", "inline")


def _vectorization(vec: str | None, subproc: bool | None, n_envs: int, control: str) -> str:
    """The vectorization: ``subproc`` (older argument) wins, then ``vec``, then the default."""
    if subproc is not None:
        return "subproc" if subproc else "inline"
    if vec is not None:
        if vec not in VECTORIZATIONS:
            raise ValueError(f"unknown vec {vec!r}; allowed: {', '.join(VECTORIZATIONS)}")
        if vec == "batch" and control == CACHE_CONTROL:
            raise ValueError(
                "vec='batch' steps PRB/power envs; for control='cache' allowed: subproc, inline"
            )
        return vec
    if n_envs == 1:
        return "inline"
    return "subproc" if control == CACHE_CONTROL else "batch"


def _build_ppo(
    envs: Any, arch: str, seed: int, kw: Mapping[str, Any], verbose: int
) -> tuple[Any, Any]:
    """``VecNormalize`` around ``envs`` and the PPO model on it (see :func:`make_ppo`)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    venv = VecNormalize(
        envs,
        norm_obs=True,
        norm_reward=True,
        clip_obs=CLIP_OBS,
        gamma=float(kw["gamma"]),
        norm_obs_keys=["x"] if arch == "per_ue" else None,
    )
    # Action noise std 0.2 at the start (SB3's default 1.0 is a logit noise of ±5: near-random
    # PRB shares every slot, from which PPO learns slowly).
    policy_kwargs: dict[str, Any] = {"log_std_init": LOG_STD_INIT}
    if arch == "per_ue":
        policy: Any = PerUEPolicy
        policy_kwargs["hidden"] = PER_UE_HIDDEN
    else:
        policy = "MlpPolicy"
        policy_kwargs["net_arch"] = {"pi": list(NET_ARCH), "vf": list(NET_ARCH)}
        policy_kwargs["activation_fn"] = nn.Tanh
    model = PPO(
        policy,
        venv,
        policy_kwargs=policy_kwargs,
        seed=seed,
        device="cpu",
        verbose=verbose,
        **kw,
    )
    return model, venv


def train_ppo(
    scenario: str = "nr_cell",
    control: str = "prb",
    total_steps: int = 50_000,
    seed: int = 0,
    out: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    n_envs: int = 1,
    ppo_kwargs: Mapping[str, Any] | None = None,
    reward: str = "throughput_fairness",
    reward_kwargs: Mapping[str, Any] | None = None,
    verbose: int = 0,
    episode_s: float | None = None,
    arch: Arch = "per_ue",
    subproc: bool | None = None,
    vec: str | None = None,
) -> TorchPolicy:
    """Train SB3 PPO on ``edgetwin/PrbPower-v0`` (or AdapterCache-v0) and export a checkpoint.

    Args:
        scenario: Single-cell scenario name or YAML path (not used by ``control="cache"``).
        control: ``"prb"``, ``"power"`` or ``"joint"`` (both heads of one agent) on
            ``edgetwin/PrbPower-v0``; ``"cache"``: the cache controller on
            ``edgetwin/AdapterCache-v0`` (``overrides`` are the env's options, e.g.
            ``{"n_adapters": 20, "capacity": 4}``; the reward is the env's).
        total_steps: Env steps (slots) to train for.
        seed: Seed of SB3 (Python, numpy, torch, envs).
        out: Checkpoint path (``.pt``); ``None`` writes a temporary file that is removed once
            loaded.
        overrides: Dotted scenario overrides (e.g. ``{"duration_s": 0.25}``: the episode length);
            for ``control="cache"`` the env's options.
        n_envs: Envs stepped per PPO step, env ``i`` seeded with ``seed + i``; a rollout is
            ``n_steps`` steps of every env.
        subproc: Step the envs in worker processes (``SubprocVecEnv``, ``True``) or one after
            another in this process (``DummyVecEnv``, ``False``); overrides ``vec``.
        vec: ``"batch"`` (default for PRB/power envs when ``n_envs > 1``: one cell batch in
            this process, :class:`~edgetwin.agents.rl.batch_vec_env.CellBatchVecEnv`),
            ``"subproc"`` (default for the cache env) or ``"inline"``. The results are the
            same.
        ppo_kwargs: Overrides of :data:`PPO_DEFAULTS` (``control="cache"``:
            :data:`CACHE_PPO_DEFAULTS`) (``n_steps`` and ``batch_size`` are
            capped so that a short run still updates: ``n_steps ≤ ⌈total_steps / n_envs⌉``).
        reward: Registered reward name (:mod:`edgetwin.envs.rewards`).
        reward_kwargs: Arguments of the reward.
        verbose: SB3 verbosity (0 silent).
        episode_s: Simulated seconds per episode (sets ``duration_s``); ``None`` keeps the
            scenario's (or ``overrides``') duration (``cache``: the env's ``n_epochs``).
        arch: ``"per_ue"`` (:class:`PerUEPolicy`: per-UE shared actor and central critic) or
            ``"flat"`` (``MlpPolicy`` on the flattened features).

    Returns:
        The trained policy of the controlled family (``prb`` for ``joint``; ``cache`` for
        ``cache``), loaded from the
        checkpoint; its ``meta`` holds the command, arch, seed, steps, versions and training
        summary.

    Raises:
        ValueError: Unknown control or arch, non-positive steps or envs.
    """
    _check(control, arch, total_steps, n_envs)
    over = dict(overrides or {})
    if episode_s is not None:
        over["duration_s"] = float(episode_s)
    kw = ppo_settings(total_steps, n_envs, ppo_kwargs, control=control)

    t0 = time.perf_counter()
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    venv = None
    try:
        model, venv = make_ppo(
            scenario=scenario,
            control=control,
            arch=arch,
            seed=seed,
            overrides=over,
            n_envs=n_envs,
            ppo_kwargs=kw,
            reward=reward,
            reward_kwargs=reward_kwargs,
            verbose=verbose,
            subproc=subproc,
            vec=vec,
        )
        model.learn(total_timesteps=total_steps)
        wall_s = time.perf_counter() - t0
        max_ue = int(venv.get_attr("max_ue", [0])[0])  # cache: adapters (CacheFeatures)
        n_prb = 0 if control == CACHE_CONTROL else int(venv.get_attr("n_prb", [0])[0])
        actors = export_actors(model, venv, control)
        episodes = list(model.ep_info_buffer or ())
        meta = {
            "trainer": "edgetwin.agents.rl.ppo.train_ppo",
            "command": _command(
                scenario, control, arch, total_steps, seed, episode_s, overrides or {}, n_envs
            ),
            "arguments": {
                "scenario": scenario,
                "control": control,
                "arch": arch,
                "total_steps": total_steps,
                "seed": seed,
                "overrides": dict(overrides or {}),
                "episode_s": episode_s,
                "n_envs": n_envs,
                "ppo_kwargs": kw,
                "reward": reward,
                "reward_kwargs": dict(reward_kwargs or {}),
            },
            "scenario": CACHE_ENV if control == CACHE_CONTROL else scenario,
            "control": control,
            "arch": arch,
            "seed": seed,
            "steps": int(model.num_timesteps),
            "reward": "net_utility" if control == CACHE_CONTROL else reward,
            "net_arch": ({"per_ue_hidden": PER_UE_HIDDEN} if arch == "per_ue" else list(NET_ARCH)),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "versions": _versions(),
            "summary": {
                "wall_s": wall_s,
                "episodes": len(episodes),
                "mean_episode_return": (
                    float(np.mean([e["r"] for e in episodes])) if episodes else None
                ),
                "mean_episode_length": (
                    float(np.mean([e["l"] for e in episodes])) if episodes else None
                ),
            },
        }
        if control == CACHE_CONTROL:  # the env's resolved options: its whole scenario
            meta["env_options"] = dict(venv.get_attr("options", [0])[0])
    finally:
        if venv is not None:
            venv.close()  # ends the env workers of a SubprocVecEnv, also on an error
        torch.set_num_threads(n_threads)
    family = "prb" if control == "joint" else control  # cache: "cache"
    if out is not None:
        path = save_policy_checkpoint(out, max_ue=max_ue, n_prb=n_prb, actors=actors, meta=meta)
        return TorchPolicy(path, family)
    tmp = Path(tempfile.mkdtemp(prefix="edgetwin_ppo_"))
    try:
        path = save_policy_checkpoint(
            tmp / "model.pt", max_ue=max_ue, n_prb=n_prb, actors=actors, meta=meta
        )
        return TorchPolicy(path, family)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
