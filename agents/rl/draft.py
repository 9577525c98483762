"""``draft/ppo``: a draft-length actor trained with SB3 PPO on ``edgetwin/DraftLength-v0``.

Training (a few minutes on a CPU; one env, one controlled device, the others on the scenario's
draft policy)::

    python -m edgetwin.agents.rl.draft --steps 3000 --out runs/draft_ppo.pt

The checkpoint is a ``torch.save`` of plain data (``torch.load(weights_only=True)``)::

    {"format": "edgetwin-draft-ppo/1", "k_max": int, "n_features": int, "hidden": [int, ...],
     "state_dict": {...}, "obs_mean": [F], "obs_var": [F], "clip_obs": float,
     "battery_j": float | None, "meta": {...}}

The actor is SB3's MLP policy head (``mlp_extractor.policy_net`` then ``action_net``) copied
into a plain ``torch.nn.Sequential``; it maps :func:`~edgetwin.envs.draft_length.draft_features`
of the ``draft`` observation, normalized by the ``VecNormalize`` statistics of training, to one
logit per ``k``. In a scenario run (``--policy draft=ppo:PATH``) the policy takes the arg-max
``k``, cut to the round's ``k_max``: the same features and the same action mapping as the env.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgetwin.agents.registry import PolicyRegistryError
from edgetwin.agents.rl.shipped import resolve_checkpoint
from edgetwin.envs.draft_length import draft_features

__all__ = ["DRAFT_CHECKPOINT_FORMAT", "DraftPPOPolicy", "main", "train_draft_ppo"]

#: Format tag of a draft checkpoint.
DRAFT_CHECKPOINT_FORMAT = "edgetwin-draft-ppo/1"


def _mlp(n_in: int, hidden: list[int], n_out: int) -> nn.Sequential:
    """``Linear → Tanh`` per hidden layer, then ``Linear`` to ``n_out`` logits (SB3's layout)."""
    layers: list[nn.Module] = []
    last = n_in
    for h in hidden:
        layers += [nn.Linear(last, h), nn.Tanh()]
        last = h
    layers.append(nn.Linear(last, n_out))
    return nn.Sequential(*layers)


class DraftPPOPolicy:
    """Deterministic trained draft-length actor (``draft/ppo:PATH``).

    Args:
        path: A checkpoint written by :func:`train_draft_ppo`, or the name of a shipped one
            (``draft_length_ppo``).

    Raises:
        PolicyRegistryError: No path given.
        FileNotFoundError: No file at ``path``.
        ValueError: Not a draft checkpoint.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None or not str(path).strip():
            raise PolicyRegistryError("policy draft/ppo needs a checkpoint: draft/ppo:PATH")
        try:
            self.path = resolve_checkpoint(path)  # a file, or a shipped name
        except (FileNotFoundError, IsADirectoryError) as e:
            raise FileNotFoundError(f"draft/ppo: no checkpoint at {str(path)!r} ({e})") from None
        try:
            ckpt = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # any unreadable file is "not a checkpoint"
            first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
            raise ValueError(f"draft/ppo: {str(path)!r} is not a checkpoint ({first})") from None
        if not isinstance(ckpt, Mapping) or ckpt.get("format") != DRAFT_CHECKPOINT_FORMAT:
            raise ValueError(
                f"draft/ppo: {str(path)!r} is not a {DRAFT_CHECKPOINT_FORMAT} checkpoint"
            )
        self.policy_id = "draft/ppo"
        self.k_max = int(ckpt["k_max"])
        self.n_features = int(ckpt["n_features"])
        self.actor = _mlp(self.n_features, [int(h) for h in ckpt["hidden"]], self.k_max + 1)
        self.actor.load_state_dict(ckpt["state_dict"])
        self.actor.eval()
        self.mean = np.asarray(ckpt["obs_mean"], np.float64)
        self.std = np.sqrt(np.asarray(ckpt["obs_var"], np.float64) + 1e-8)
        self.clip_obs = float(ckpt["clip_obs"])
        battery = ckpt.get("battery_j")
        self.battery_j = None if battery is None else float(battery)
        self.meta: dict[str, Any] = dict(ckpt.get("meta") or {})

    def __repr__(self) -> str:
        return f"DraftPPOPolicy(path={str(self.path)!r})"

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act_features(self, x: np.ndarray) -> int:
        """Arg-max ``k`` for one env observation (float32 [n_features])."""
        z = np.clip((np.asarray(x, np.float64) - self.mean) / self.std, -self.clip_obs,
                    self.clip_obs)  # fmt: skip
        n = torch.get_num_threads()
        torch.set_num_threads(1)  # a tiny MLP: threads only add barrier waits
        try:
            with torch.no_grad():
                logits = self.actor(torch.as_tensor(z, dtype=torch.float32)[None])[0]
        finally:
            torch.set_num_threads(n)
        return int(torch.argmax(logits).item())

    def act(self, obs: Mapping[str, Any]) -> int:
        """The draft length for one ``draft`` observation, cut to its ``k_max``."""
        k = self.act_features(draft_features(obs, self.k_max, self.battery_j))
        return min(k, int(obs["k_max"]))


def _atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def train_draft_ppo(
    out: str | Path,
    *,
    total_steps: int = 3000,
    scenario: str = "specdec_jetson",
    overrides: Mapping[str, Any] | None = None,
    energy_price: float = 0.1,
    seed: int = 0,
    hidden: tuple[int, ...] = (32, 32),
    n_steps: int = 256,
    command: str = "",
) -> DraftPPOPolicy:
    """Train SB3 PPO on ``edgetwin/DraftLength-v0`` and write a ``draft/ppo`` checkpoint.

    Args:
        out: Checkpoint path (written atomically).
        total_steps: Env steps (device rounds) of training.
        scenario: Scenario name or path (one cell, distributed speculative decoding).
        overrides: Dotted scenario overrides (e.g. ``{"duration_s": 10}``).
        energy_price: λ of the env reward, tokens per J.
        seed: Seed of PPO and of the env's episode seeds.
        hidden: Hidden layer widths of the actor and the critic.
        n_steps: Rollout length per PPO update.
        command: The command line that trained it (recorded in the checkpoint's meta).

    Returns:
        The trained policy, loaded from the written checkpoint.
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from edgetwin.envs.draft_length import DraftLengthEnv

    def make() -> Any:
        return Monitor(DraftLengthEnv(scenario, energy_price=energy_price, overrides=overrides))

    torch.manual_seed(seed)
    venv = VecNormalize(DummyVecEnv([make]), norm_obs=True, norm_reward=True, clip_obs=10.0)
    venv.seed(seed)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=n_steps,
        batch_size=64,
        n_epochs=10,
        learning_rate=3e-4,
        gamma=0.9,  # a round's reward is its own: little credit to assign across rounds
        ent_coef=0.01,
        policy_kwargs={"net_arch": {"pi": list(hidden), "vf": list(hidden)}},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    t0 = time.perf_counter()
    model.learn(total_timesteps=total_steps)
    wall = time.perf_counter() - t0
    inner: Any = venv.venv
    env0: Any = inner.envs[0]
    base: DraftLengthEnv = env0.unwrapped
    actor = _mlp(len(base.feature_names), list(hidden), base.k_max + 1)
    pol = model.policy
    src: list[Any] = [m for m in pol.mlp_extractor.policy_net if isinstance(m, nn.Linear)]
    src.append(pol.action_net)
    dst = [m for m in actor if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for s, d in zip(src, dst, strict=True):
            d.weight.copy_(s.weight)
            d.bias.copy_(s.bias)
    dev = base.config.nodes.device if base.config.nodes is not None else None
    rms: Any = venv.obs_rms  # one RunningMeanStd: the observation is a Box
    import stable_baselines3

    ckpt = {
        "format": DRAFT_CHECKPOINT_FORMAT,
        "k_max": base.k_max,
        "n_features": len(base.feature_names),
        "hidden": list(hidden),
        "state_dict": {k: v.detach().clone() for k, v in actor.state_dict().items()},
        "obs_mean": [float(v) for v in rms.mean],
        "obs_var": [float(v) for v in rms.var],
        "clip_obs": 10.0,
        "battery_j": None if dev is None or dev.battery_j is None else float(dev.battery_j),
        "meta": {
            "command": command,
            "scenario": str(scenario),
            "overrides": {str(k): str(v) for k, v in (overrides or {}).items()},
            "energy_price": float(energy_price),
            "total_steps": int(total_steps),
            "seed": int(seed),
            "train_wall_s": round(wall, 1),
            "features": list(base.feature_names),
            "stable_baselines3": str(stable_baselines3.__version__),
            "torch": str(torch.__version__),
        },
    }
    path = Path(out)
    _atomic_save(ckpt, path)
    venv.close()
    return DraftPPOPolicy(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m edgetwin.agents.rl.draft --steps N --out PATH``."""
    p = argparse.ArgumentParser(description="Train draft/ppo on edgetwin/DraftLength-v0.")
    p.add_argument("--out", required=True, help="checkpoint path (.pt)")
    p.add_argument("--steps", type=int, default=3000, help="env steps (device rounds)")
    p.add_argument("--scenario", default="specdec_jetson")
    p.add_argument("--duration", type=float, default=None, help="episode duration_s override")
    p.add_argument("--energy-price", type=float, default=0.1, help="tokens per J")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps must be a positive integer, got {args.steps}")
    over = {"duration_s": args.duration} if args.duration is not None else None
    policy = train_draft_ppo(
        args.out,
        total_steps=args.steps,
        scenario=args.scenario,
        overrides=over,
        energy_price=args.energy_price,
        seed=args.seed,
        command="python -m edgetwin.agents.rl.draft " + " ".join(argv or sys.argv[1:]),
    )
    print(f"wrote {policy.path} ({policy.meta['train_wall_s']} s of training)")  # noqa: T201
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
