"""The hierarchical cooperative learner of arXiv 2605.02149: MAPPO with a three-phase curriculum.

Two actors act in every slot of ``edgetwin/PrbPowerMARL-v0`` (a PettingZoo AEC env): the **PRB
agent** sets per-UE PRB shares (resolved to PRBs by the quota resolver), then the **power agent**
sees this slot's PRB map and splits the power budget. Both share the cooperative reward.

* Actors: :class:`~edgetwin.agents.rl.networks.PerUEActor`, one shared network applied to every
  UE's features with a pooled context (permutation-equivariant, any number of UEs up to
  ``max_ue``), a Gaussian over the actions with a state-independent ``log_std``.
* Critic: one centralized :class:`~edgetwin.agents.rl.networks.CentralCritic` of the slot's state
  (the PRB agent's observation, which holds every UE's channel and queue state); value targets
  are normalized with running statistics ("value normalization", Yu et al., *The Surprising
  Effectiveness of PPO in Cooperative Multi-Agent Games*, NeurIPS 2022 §4).
* Update: PPO's clipped surrogate (Schulman et al. 2017, eq. 7) per agent with the shared GAE
  advantage (Schulman et al. 2016), one slot = one transition of the team.
* Curriculum: ``prb`` trains the PRB actor with equal power; ``power`` trains the power actor on
  top of the (frozen, deterministic) PRB actor; ``joint`` fine-tunes both. A frozen actor that
  was never trained plays the baseline (all-zero actions: equal PRB shares / equal power).

Written by hand (CleanRL-style, one file) because SB3 has no multi-agent PPO; the single-agent
env is trained with SB3 (:mod:`edgetwin.agents.rl.ppo`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgetwin.agents.rl.checkpoint import save_policy_checkpoint
from edgetwin.agents.rl.features import N_UE_FEATURES, RunningMeanStd, ue_features
from edgetwin.agents.rl.networks import CentralCritic, PerUEActor
from edgetwin.agents.rl.options import CLIP_OBS, PHASES, check_phases
from edgetwin.envs.prb_power_marl import raw_env

AGENTS: tuple[str, ...] = ("prb", "power")
_TRAINS: dict[str, tuple[str, ...]] = {"prb": ("prb",), "power": ("power",), "joint": AGENTS}


@dataclass(frozen=True)
class MappoConfig:
    """PPO hyperparameters of the curriculum (one slot = one team transition)."""

    rollout_slots: int = 512
    """Slots per rollout before an update."""
    epochs: int = 4
    """Passes over each rollout."""
    minibatch: int = 128
    """Transitions per gradient step."""
    lr: float = 3e-4
    """Adam learning rate of actors and critic."""
    gamma: float = 0.99
    """Discount per slot."""
    gae_lambda: float = 0.95
    """GAE λ."""
    clip: float = 0.2
    """PPO ratio clip ε."""
    ent_coef: float = 0.0
    """Entropy bonus."""
    vf_coef: float = 0.5
    """Value-loss weight."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip."""
    hidden: int = 64
    """Width of the actor and critic MLPs."""
    init_std: float = 0.2
    """Initial standard deviation of the Gaussian action noise (actions are in [−1, 1])."""


def _mask(obs: Mapping[str, np.ndarray], agent: str) -> np.ndarray:
    """UEs whose action matters: with data (PRB agent) or with PRBs this slot (power agent)."""
    if agent == "prb":
        return (obs["has_data"] > 0) & (obs["ue_mask"] > 0)
    return obs["prb_count"] > 0


class _Agent:
    """One actor with its optimizer state, observation statistics and freeze flag."""

    def __init__(self, name: str, n_features: int, hidden: int, init_std: float) -> None:
        self.name = name
        self.hidden = hidden
        self.actor = PerUEActor(n_features, hidden)
        with torch.no_grad():
            self.actor.log_std.fill_(math.log(init_std))
        self.obs_rms = RunningMeanStd((n_features,))
        self.trained = False

    def features(self, obs: Mapping[str, np.ndarray], update: bool) -> np.ndarray:
        f = ue_features(obs)
        real = obs["ue_mask"] > 0
        if update and real.any():
            self.obs_rms.update(f[real])
        x = self.obs_rms.normalize(f, clip=CLIP_OBS)
        x[~real] = 0.0
        return x

    def record(self, max_ue: int) -> dict[str, Any]:
        return {
            "kind": "per_ue",
            "kwargs": {"n_features": N_UE_FEATURES, "hidden": self.hidden},
            "state_dict": {k: v.detach().clone() for k, v in self.actor.state_dict().items()},
            "obs_rms": self.obs_rms.state_dict(),
            "clip_obs": CLIP_OBS,
            "slice": [0, max_ue],
            "zero_prb_count": False,
        }


def _log_prob(mean: torch.Tensor, log_std: torch.Tensor, a: torch.Tensor, m: torch.Tensor):
    """Σ over masked UEs of the Gaussian log-density, [B] (and the entropy per UE, [B])."""
    std = log_std.exp()
    lp = -0.5 * ((a - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    mf = m.float()
    ent = (0.5 + 0.5 * math.log(2 * math.pi) + log_std) * mf
    return (lp * mf).sum(-1), ent.sum(-1) / mf.sum(-1).clamp(min=1.0)


def train_curriculum(
    scenario: str = "nr_cell",
    phases: Sequence[str] = PHASES,
    steps_per_phase: int = 20_000,
    seed: int = 0,
    episode_s: float = 0.25,
    out: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    reward: str = "throughput_fairness",
    reward_kwargs: Mapping[str, Any] | None = None,
    config: MappoConfig | None = None,
    log: Callable[[str], None] | None = None,
    n_envs: int = 1,
) -> dict[str, Any]:
    """Train the PRB and power actors through the curriculum and save one checkpoint.

    Args:
        scenario: Single-cell scenario name or YAML path.
        phases: Phase names in order, from ``prb``, ``power``, ``joint``.
        steps_per_phase: Slots (team transitions) per phase.
        seed: Seed of the episode seeds, the network initialization and the action noise.
        episode_s: Simulated seconds per training episode (``duration_s`` override).
        out: Checkpoint path (``.pt``); ``None`` skips saving.
        overrides: Further dotted scenario overrides.
        reward: Registered reward name.
        reward_kwargs: Its keyword arguments (e.g. ``{"lam": 0.5}``).
        config: PPO hyperparameters.
        log: Where progress lines go (default: stderr).
        n_envs: Cells stepped per team step. 1 steps the MARL env; more step the cells as one
            cell batch (``PrbPowerVectorEnv``'s two-agent steps), a rollout holding
            ``rollout_slots`` transitions of all of them.

    Returns:
        Summary: per-phase mean reward, cell throughput and Jain index of the last rollouts,
        slots trained, wall seconds, and the checkpoint path.
    """
    phases = check_phases(phases)
    if steps_per_phase <= 0:
        raise ValueError(f"steps_per_phase must be > 0, got {steps_per_phase}")
    cfg = config or MappoConfig()
    emit = log or (lambda s: print(s, file=sys.stderr))  # noqa: T201
    t_start = time.perf_counter()
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    if not isinstance(n_envs, int) or n_envs < 1:
        raise ValueError(f"n_envs must be an integer >= 1, got {n_envs!r}")
    try:
        env_kwargs: dict[str, Any] = {
            "scenario": scenario,
            "overrides": {**dict(overrides or {}), "duration_s": episode_s},
            "reward": reward,
            "reward_kwargs": reward_kwargs,
        }
        env: Any = raw_env(**env_kwargs) if n_envs == 1 else None
        rng = np.random.default_rng(seed)
        state: _Rollout | _BatchRollout
        if env is not None:
            state = _Rollout(env, rng)
        else:
            from edgetwin.envs.prb_power_vector import PrbPowerVectorEnv

            env = PrbPowerVectorEnv(num_envs=n_envs, autoreset_mode="SameStep", **env_kwargs)
            state = _BatchRollout(env, rng)
        max_ue = int(env.max_ue)
        agents = {name: _Agent(name, N_UE_FEATURES, cfg.hidden, cfg.init_std) for name in AGENTS}
        critic = CentralCritic(N_UE_FEATURES, cfg.hidden)
        ret_rms = RunningMeanStd(())
        summary: dict[str, Any] = {"phases": [], "max_ue": max_ue}
        for phase in phases:
            trains = _TRAINS[phase]
            params = [p for n in trains for p in agents[n].actor.parameters()]
            opt = torch.optim.Adam([*params, *critic.parameters()], lr=cfg.lr, eps=1e-5)
            done = 0
            stats: dict[str, float] = {}
            while done < steps_per_phase:
                # team steps of all cells: n slots of each of the n_envs cells
                n = math.ceil(min(cfg.rollout_slots, steps_per_phase - done) / n_envs)
                batch = state.collect(n, agents, trains, critic, ret_rms, cfg)
                stats = _update(batch, agents, trains, critic, opt, ret_rms, cfg)
                done += n * n_envs
            for n_ in trains:
                agents[n_].trained = True
            stats.update(state.recent())
            emit(
                f"phase {phase}: {done} slots, reward {stats['reward']:.4f}, cell throughput "
                f"{stats['cell_throughput_mbps']:.2f} Mbit/s, Jain {stats['jain']:.3f}"
            )
            summary["phases"].append({"phase": phase, "slots": done, **stats})
        summary["wall_s"] = time.perf_counter() - t_start
        if out is not None:
            actors = {n: agents[n].record(max_ue) for n in AGENTS if agents[n].trained}
            save_policy_checkpoint(
                out,
                max_ue=max_ue,
                n_prb=int(env.n_prb),
                actors=actors,
                meta={
                    "trainer": "edgetwin.agents.rl.mappo.train_curriculum",
                    "command": (
                        f"edgetwin train prb-power --scenario {scenario} --phases "
                        f"{','.join(phases)} --steps {steps_per_phase} --seed {seed} "
                        f"--episode-s {episode_s}" + (f" --n-envs {n_envs}" if n_envs > 1 else "")
                    ),
                    "n_envs": n_envs,
                    "scenario": scenario,
                    "phases": list(phases),
                    "steps_per_phase": steps_per_phase,
                    "seed": seed,
                    "episode_s": episode_s,
                    "reward": reward,
                    "reward_kwargs": dict(reward_kwargs or {}),
                    "config": asdict(cfg),
                    "summary": summary["phases"],
                },
            )
            summary["checkpoint"] = str(out)
        return summary
    finally:
        torch.set_num_threads(n_threads)


def _recent_stats(recent: list[tuple[float, float, float]]) -> dict[str, float]:
    """Mean reward, cell throughput (Mbit/s) and Jain index of the last 2,000 transitions."""
    r = np.asarray(recent[-2000:]) if recent else np.zeros((1, 3))
    return {
        "reward": float(r[:, 0].mean()),
        "cell_throughput_mbps": float(r[:, 1].mean() / 1e6),
        "jain": float(r[:, 2].mean()),
    }


class _Rollout:
    """Steps the AEC env slot by slot and keeps its episode going across rollouts."""

    def __init__(self, env: Any, rng: np.random.Generator) -> None:
        self.env = env
        self.rng = rng
        self._recent: list[tuple[float, float, float]] = []
        self._reset()

    def _reset(self) -> None:
        self.env.reset(seed=int(self.rng.integers(2**31)))

    def recent(self) -> dict[str, float]:
        return _recent_stats(self._recent)

    def _act(
        self, agent: _Agent, obs: Mapping[str, np.ndarray], trainable: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        x = agent.features(obs, update=trainable)
        m = _mask(obs, agent.name)
        if not trainable and not agent.trained:
            return x, m, np.zeros(x.shape[0], np.float32), 0.0  # the baseline action
        with torch.no_grad():
            xt = torch.from_numpy(x)[None]
            mean = agent.actor(xt, torch.from_numpy(obs["ue_mask"] > 0)[None])[0]
            if not trainable:
                return x, m, mean.numpy().astype(np.float32), 0.0
            std = agent.actor.log_std.exp()
            a = mean + std * torch.from_numpy(
                self.rng.standard_normal(x.shape[0], dtype=np.float32)
            )
            lp, _ = _log_prob(mean[None], agent.actor.log_std, a[None], torch.from_numpy(m)[None])
        return x, m, a.numpy(), float(lp[0])

    def collect(
        self,
        n: int,
        agents: Mapping[str, _Agent],
        trains: tuple[str, ...],
        critic: nn.Module,
        ret_rms: RunningMeanStd,
        cfg: MappoConfig,
    ) -> dict[str, Any]:
        env = self.env
        M = int(env.max_ue)
        F = N_UE_FEATURES
        buf: dict[str, Any] = {
            f"{k}_{a}": np.zeros(shape, dt)
            for a in AGENTS
            for k, shape, dt in (
                ("x", (n, M, F), np.float32),
                ("m", (n, M), bool),
                ("a", (n, M), np.float32),
                ("lp", (n,), np.float32),
            )
        }
        buf["real"] = np.zeros((n, M), bool)
        rew = np.zeros(n, np.float32)
        val = np.zeros(n + 1, np.float32)
        trunc = np.zeros(n, bool)
        for t in range(n):
            assert env.agent_selection == "prb"
            obs = env.observe("prb")
            x, m, a, lp = self._act(agents["prb"], obs, "prb" in trains)
            buf["x_prb"][t], buf["m_prb"][t], buf["a_prb"][t], buf["lp_prb"][t] = x, m, a, lp
            buf["real"][t] = obs["ue_mask"] > 0
            env.step(np.clip(a, -1.0, 1.0))
            obs = env.observe("power")
            x, m, a, lp = self._act(agents["power"], obs, "power" in trains)
            buf["x_power"][t], buf["m_power"][t], buf["a_power"][t], buf["lp_power"][t] = (
                x,
                m,
                a,
                lp,
            )
            env.step(np.clip(a, -1.0, 1.0))
            r = float(env.rewards["prb"])
            rew[t] = r
            info = env.infos["prb"]
            self._recent.append(
                (r, info.get("cell_throughput_bps", 0.0), info.get("jain_index", 0.0))
            )
            if env.truncations["prb"] or env.terminations["prb"]:
                trunc[t] = True
                self._reset()
        # Values of every visited state and of the state after the rollout.
        with torch.no_grad():
            xs = torch.from_numpy(buf["x_prb"])
            real = torch.from_numpy(buf["real"])
            val[:n] = critic(xs, real).numpy() * math.sqrt(ret_rms.var + 1e-8) + ret_rms.mean
            obs = env.observe("prb")
            xl = torch.from_numpy(agents["prb"].features(obs, update=False))[None]
            ml = torch.from_numpy(obs["ue_mask"] > 0)[None]
            val[n] = float(critic(xl, ml)[0]) * math.sqrt(ret_rms.var + 1e-8) + ret_rms.mean
        # GAE; at a truncation the next state's value is approximated by the current state's
        # (the final observation of the episode is not kept).
        adv = np.zeros(n, np.float32)
        last = 0.0
        for t in range(n - 1, -1, -1):
            nxt = val[t] if trunc[t] else val[t + 1]
            delta = rew[t] + cfg.gamma * nxt - val[t]
            last = delta + cfg.gamma * cfg.gae_lambda * (0.0 if trunc[t] else last)
            adv[t] = last
        buf["adv"] = adv
        buf["ret"] = adv + val[:n]
        return buf


class _BatchRollout:
    """Steps ``n_envs`` cells as one batch, the two agents per slot (same-step autoreset).

    The counterpart of :class:`_Rollout` on ``PrbPowerVectorEnv``: per slot the PRB agent acts
    on every cell (``observe_power``), then the power agent (``step_power``); a cell whose
    episode ends restarts at once with a seed from its own generator (``seed + i`` streams).
    Buffers are ``[n, n_envs, ...]``, advantages are computed per cell, then flattened.
    """

    def __init__(self, venv: Any, rng: np.random.Generator) -> None:
        self.venv = venv
        self.rng = rng
        self._recent: list[tuple[float, float, float]] = []
        self.obs, _ = venv.reset(seed=int(rng.integers(2**31)))

    def recent(self) -> dict[str, float]:
        return _recent_stats(self._recent)

    def _act(
        self, agent: _Agent, obs: Mapping[str, np.ndarray], trainable: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        B = self.venv.num_envs
        x = np.stack(
            [agent.features({k: v[b] for k, v in obs.items()}, update=trainable) for b in range(B)]
        )
        m = _mask(obs, agent.name)
        if not trainable and not agent.trained:
            return x, m, np.zeros(x.shape[:2], np.float32), np.zeros(B, np.float32)
        with torch.no_grad():
            mean = agent.actor(torch.from_numpy(x), torch.from_numpy(obs["ue_mask"] > 0))
            if not trainable:
                return x, m, mean.numpy().astype(np.float32), np.zeros(B, np.float32)
            noise = self.rng.standard_normal(x.shape[:2], dtype=np.float32)
            a = mean + agent.actor.log_std.exp() * torch.from_numpy(noise)
            lp, _ = _log_prob(mean, agent.actor.log_std, a, torch.from_numpy(m))
        return x, m, a.numpy(), lp.numpy().astype(np.float32)

    def collect(
        self,
        n: int,
        agents: Mapping[str, _Agent],
        trains: tuple[str, ...],
        critic: nn.Module,
        ret_rms: RunningMeanStd,
        cfg: MappoConfig,
    ) -> dict[str, Any]:
        venv = self.venv
        B, M, F = venv.num_envs, int(venv.max_ue), N_UE_FEATURES
        buf: dict[str, Any] = {
            f"{k}_{a}": np.zeros(shape, dt)
            for a in AGENTS
            for k, shape, dt in (
                ("x", (n, B, M, F), np.float32),
                ("m", (n, B, M), bool),
                ("a", (n, B, M), np.float32),
                ("lp", (n, B), np.float32),
            )
        }
        buf["real"] = np.zeros((n, B, M), bool)
        rew = np.zeros((n, B), np.float32)
        trunc = np.zeros((n, B), bool)
        for t in range(n):
            obs = self.obs
            x, m, a, lp = self._act(agents["prb"], obs, "prb" in trains)
            buf["x_prb"][t], buf["m_prb"][t], buf["a_prb"][t], buf["lp_prb"][t] = x, m, a, lp
            buf["real"][t] = obs["ue_mask"] > 0
            pobs = venv.observe_power(np.clip(a, -1.0, 1.0))
            x, m, a, lp = self._act(agents["power"], pobs, "power" in trains)
            buf["x_power"][t], buf["m_power"][t], buf["a_power"][t] = x, m, a
            buf["lp_power"][t] = lp
            self.obs, r, _, truncated, info = venv.step_power(np.clip(a, -1.0, 1.0))
            rew[t] = r
            trunc[t] = truncated
            thr, jain = info["cell_throughput_bps"], info["jain_index"]
            self._recent.extend(zip(r.tolist(), thr.tolist(), jain.tolist(), strict=True))
        scale = math.sqrt(ret_rms.var + 1e-8)
        with torch.no_grad():
            xs = torch.from_numpy(buf["x_prb"].reshape(n * B, M, F))
            real = torch.from_numpy(buf["real"].reshape(n * B, M))
            val = np.zeros((n + 1, B), np.float32)
            val[:n] = (critic(xs, real).numpy() * scale + ret_rms.mean).reshape(n, B)
            xl = np.stack(
                [
                    agents["prb"].features({k: v[b] for k, v in self.obs.items()}, update=False)
                    for b in range(B)
                ]
            )
            ml = torch.from_numpy(self.obs["ue_mask"] > 0)
            val[n] = critic(torch.from_numpy(xl), ml).numpy() * scale + ret_rms.mean
        # GAE per cell; at a truncation the next value is approximated by the current one.
        adv = np.zeros((n, B), np.float32)
        last = np.zeros(B, np.float32)
        for t in range(n - 1, -1, -1):
            nxt = np.where(trunc[t], val[t], val[t + 1])
            delta = rew[t] + cfg.gamma * nxt - val[t]
            last = delta + cfg.gamma * cfg.gae_lambda * np.where(trunc[t], 0.0, last)
            adv[t] = last
        buf["adv"] = adv
        buf["ret"] = adv + val[:n]
        return {k: v.reshape(n * B, *v.shape[2:]) for k, v in buf.items()}


def _update(
    b: dict[str, Any],
    agents: Mapping[str, _Agent],
    trains: tuple[str, ...],
    critic: nn.Module,
    opt: torch.optim.Optimizer,
    ret_rms: RunningMeanStd,
    cfg: MappoConfig,
) -> dict[str, float]:
    n = b["adv"].shape[0]
    ret_rms.update(b["ret"])
    ret_n = (b["ret"] - ret_rms.mean) / math.sqrt(ret_rms.var + 1e-8)
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in b.items()}
    t["ret_n"] = torch.from_numpy(ret_n.astype(np.float32))
    params = [p for g in opt.param_groups for p in g["params"]]
    gen = torch.Generator().manual_seed(int(ret_rms.count) % (2**31))
    losses = []
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, cfg.minibatch):
            idx = perm[start : start + cfg.minibatch]
            adv = t["adv"][idx]
            adv = (adv - adv.mean()) / (adv.std() + 1e-8) if idx.numel() > 1 else adv
            v = critic(t["x_prb"][idx], t["real"][idx])
            loss = cfg.vf_coef * ((v - t["ret_n"][idx]) ** 2).mean()
            for name in trains:
                actor = agents[name].actor
                mean = actor(t[f"x_{name}"][idx], t["real"][idx])
                lp, ent = _log_prob(mean, actor.log_std, t[f"a_{name}"][idx], t[f"m_{name}"][idx])
                ratio = torch.exp(lp - t[f"lp_{name}"][idx])
                surr = torch.min(ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv)
                loss = loss - surr.mean() - cfg.ent_coef * ent.mean()
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            losses.append(float(loss.detach()))
    return {"loss": float(np.mean(losses))}
