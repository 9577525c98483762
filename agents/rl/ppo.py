"""Single-agent PPO (Stable-Baselines3) on ``edgetwin/PrbPower-v0``, exported as a checkpoint.

The agent sees :func:`~edgetwin.agents.rl.features.flat_features` of the env observation
(:class:`~edgetwin.agents.rl.features.FlatFeatures`), normalized by ``VecNormalize``, and
controls PRB shares, power shares or both (``control``). After training, the policy path of
the ``MlpPolicy`` and the observation statistics are exported to the common checkpoint format
(:mod:`edgetwin.agents.rl.checkpoint`), so the result runs inline in any scenario::

    edgetwin train ppo --control prb --steps 50000 --seed 0 --out runs/ppo_prb/model.pt
    edgetwin run nr_cell --policy prb=ppo:runs/ppo_prb/model.pt

Training is deterministic given ``seed`` on a CPU (SB3's ``seed`` seeds Python, numpy, torch and
the envs; torch runs on one thread while training).
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
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from edgetwin.agents.rl.checkpoint import save_policy_checkpoint
from edgetwin.agents.rl.features import FlatFeatures
from edgetwin.agents.rl.networks import FlatActor
from edgetwin.agents.rl.torch_policy import TorchPolicy
from edgetwin.envs.prb_power import CONTROLS, PrbPowerEnv

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
#: Hidden layers of the policy and value MLPs (Tanh).
NET_ARCH: tuple[int, ...] = (64, 64)
#: Initial log standard deviation of the Gaussian policy (std 0.2 on actions in [−1, 1]).
LOG_STD_INIT = math.log(0.2)
#: Bound of the normalized observations (VecNormalize ``clip_obs``).
CLIP_OBS = 10.0


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
    total_steps: int,
    seed: int,
    episode_s: float | None,
    overrides: Mapping[str, Any],
) -> str:
    """The ``edgetwin train ppo`` command line that reproduces a run with default PPO settings."""
    parts = [
        "edgetwin train ppo",
        f"--scenario {shlex.quote(scenario)}",
        f"--control {control}",
        f"--steps {total_steps}",
        f"--seed {seed}",
    ]
    if episode_s is not None:
        parts.append(f"--episode-s {episode_s:g}")
    parts += [f"--set {shlex.quote(f'{k}={v}')}" for k, v in overrides.items()]
    return " ".join(parts)


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
) -> TorchPolicy:
    """Train SB3 PPO on ``edgetwin/PrbPower-v0`` and export it as a policy checkpoint.

    Args:
        scenario: Single-cell scenario name or YAML path.
        control: ``"prb"``, ``"power"`` or ``"joint"`` (both heads of one agent).
        total_steps: Env steps (slots) to train for.
        seed: Seed of SB3 (Python, numpy, torch, envs).
        out: Checkpoint path (``.pt``); ``None`` writes a temporary file that is removed once
            loaded.
        overrides: Dotted scenario overrides (e.g. ``{"duration_s": 0.25}``: the episode length).
        n_envs: Envs stepped in a ``DummyVecEnv``.
        ppo_kwargs: Overrides of :data:`PPO_DEFAULTS` (``n_steps`` and ``batch_size`` are
            capped so that a short run still updates: ``n_steps ≤ ⌈total_steps / n_envs⌉``).
        reward: Registered reward name (:mod:`edgetwin.envs.rewards`).
        reward_kwargs: Arguments of the reward.
        verbose: SB3 verbosity (0 silent).
        episode_s: Simulated seconds per episode (sets ``duration_s``); ``None`` keeps the
            scenario's (or ``overrides``') duration.

    Returns:
        The trained policy of the controlled family (``prb`` for ``joint``), loaded from the
        checkpoint; its ``meta`` holds the command, seed, steps, versions and training summary.

    Raises:
        ValueError: Unknown control, non-positive steps or envs.
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    if control not in CONTROLS:
        raise ValueError(f"unknown control {control!r}; allowed: {', '.join(CONTROLS)}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    if n_envs <= 0:
        raise ValueError(f"n_envs must be > 0, got {n_envs}")
    over = dict(overrides or {})
    if episode_s is not None:
        over["duration_s"] = float(episode_s)
    kw = {**PPO_DEFAULTS, **dict(ppo_kwargs or {})}
    kw["n_steps"] = int(min(kw["n_steps"], max(2, math.ceil(total_steps / n_envs))))
    kw["batch_size"] = int(min(kw["batch_size"], kw["n_steps"] * n_envs))

    def make_env() -> FlatFeatures:
        env = PrbPowerEnv(
            scenario=scenario,
            control=control,  # type: ignore[arg-type]
            reward=reward,
            reward_kwargs=reward_kwargs,
            overrides=over,
        )
        return FlatFeatures(Monitor(env))  # type: ignore[arg-type]

    t0 = time.perf_counter()
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        venv = VecNormalize(
            DummyVecEnv([make_env] * n_envs),
            norm_obs=True,
            norm_reward=True,
            clip_obs=CLIP_OBS,
            gamma=float(kw["gamma"]),
        )
        model = PPO(
            "MlpPolicy",
            venv,
            policy_kwargs={
                "net_arch": {"pi": list(NET_ARCH), "vf": list(NET_ARCH)},
                "activation_fn": nn.Tanh,
                # Action noise std 0.2 at the start (SB3's default 1.0 is a logit noise of ±5:
                # near-random PRB shares every slot, from which PPO learns slowly).
                "log_std_init": LOG_STD_INIT,
            },
            seed=seed,
            device="cpu",
            verbose=verbose,
            **kw,
        )
        model.learn(total_timesteps=total_steps)
        wall_s = time.perf_counter() - t0
        base = cast(Any, venv.venv).envs[0].unwrapped
        max_ue, n_prb = int(base.max_ue), int(base.n_prb)
        actor = FlatActor.from_sb3(model)
        rms = cast(Any, venv.obs_rms)  # one RunningMeanStd for a Box observation
        record: dict[str, Any] = {
            "kind": "flat",
            "kwargs": {
                "in_dim": actor.in_dim,
                "out_dim": actor.out_dim,
                "hidden": list(actor.hidden),
            },
            "state_dict": actor.state_dict(),
            "obs_rms": {
                "shape": list(np.shape(rms.mean)),
                "mean": np.asarray(rms.mean, dtype=np.float64).tolist(),
                "var": np.asarray(rms.var, dtype=np.float64).tolist(),
                "count": float(rms.count),
            },
            "clip_obs": float(venv.clip_obs),
        }
        if control == "joint":
            actors = {
                "prb": {**record, "slice": [0, max_ue], "zero_prb_count": True},
                "power": {**record, "slice": [max_ue, 2 * max_ue], "zero_prb_count": True},
            }
        else:
            actors = {control: {**record, "slice": [0, max_ue], "zero_prb_count": False}}
        episodes = list(model.ep_info_buffer or ())
        meta = {
            "trainer": "edgetwin.agents.rl.ppo.train_ppo",
            "command": _command(scenario, control, total_steps, seed, episode_s, overrides or {}),
            "arguments": {
                "scenario": scenario,
                "control": control,
                "total_steps": total_steps,
                "seed": seed,
                "overrides": dict(overrides or {}),
                "episode_s": episode_s,
                "n_envs": n_envs,
                "ppo_kwargs": kw,
                "reward": reward,
                "reward_kwargs": dict(reward_kwargs or {}),
            },
            "scenario": scenario,
            "control": control,
            "seed": seed,
            "steps": int(model.num_timesteps),
            "reward": reward,
            "net_arch": list(NET_ARCH),
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
        venv.close()
    finally:
        torch.set_num_threads(n_threads)
    family = "prb" if control == "joint" else control
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
