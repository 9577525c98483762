"""A trained PRB, power or cache actor as a :class:`~edgetwin.agents.protocol.Policy` (``prb/ppo``).

:class:`TorchPolicy` loads one family's actor from a checkpoint
(:mod:`edgetwin.agents.rl.checkpoint`) and answers that family's decisions inline in a scenario
run: for every cell it builds the env observation (:class:`~edgetwin.envs.observation.
ObservationBuilder`), the features the actor was trained on, and maps the deterministic action
(the Gaussian mean) to a PRB map or per-PRB powers exactly as the Gymnasium env does::

    edgetwin run nr_cell --policy prb=ppo:runs/ppo/model.pt
    edgetwin compare nr_cell --policies prb=pf,prb=ppo:runs/ppo/model.pt

A ``cache`` actor (``cache/ppo:PATH``) is the slow-timescale controller of
``edgetwin/AdapterCache-v0``: at an epoch boundary (``requested == -1``, ``epoch ≥ 1``) it maps
the cache-policy observation (``agents/baselines/cache.py``) through
:func:`~edgetwin.agents.rl.features.cache_features` to a score per adapter exactly as the env maps
the action (clipped to ``[-1, 1]``, ``-1`` → ``-inf``: not loaded); on a miss and before the first
epoch it keeps the resident set, filling a free slot (``keep_resident``: what the env it was
trained in does, and what ``cache/polar`` does). So it runs in ``simulate_adapter_serving`` and,
through ``cache_policy_obs``, in the env, with the same decisions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgetwin.agents.registry import PolicyRegistryError
from edgetwin.agents.rl.checkpoint import FAMILIES, load_policy_checkpoint
from edgetwin.agents.rl.features import (
    RunningMeanStd,
    cache_features,
    flat_features,
    ue_features,
)
from edgetwin.agents.rl.networks import build_actor
from edgetwin.agents.rl.shipped import resolve_checkpoint
from edgetwin.envs.observation import (
    ObservationBuilder,
    power_action_to_watts,
    prb_action_to_alloc,
)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the previous count.

    The actors are tiny (a few kFLOP per decision): with several OpenMP threads every layer
    waits at a barrier, and when the CPU is shared (``edgetwin compare`` workers, other jobs) a
    decision takes ~100× longer (measured 45 ms vs 0.7 ms per PRB decision under load).
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class TorchPolicy:
    """Deterministic trained actor of one decision family, for every cell of a run.

    Args:
        path: Checkpoint file (``.pt``) or the name of a shipped checkpoint.
        family: ``"prb"`` (returns a PRB map), ``"power"`` (returns watts per PRB) or
            ``"cache"`` (returns a score per adapter).

    Raises:
        PolicyRegistryError: No path given, or an unknown family.
        FileNotFoundError: No checkpoint at ``path``.
        ValueError: Not a checkpoint, or it holds no actor for ``family`` (the message names
            the families it holds).
    """

    def __init__(self, path: str | Path | None = None, family: str = "prb") -> None:
        if family not in FAMILIES:
            raise PolicyRegistryError(
                f"TorchPolicy family {family!r} is unknown; allowed: {', '.join(FAMILIES)}"
            )
        self.family = family
        self.policy_id = f"{family}/ppo"
        if path is None or not str(path).strip():
            use = "cache/ppo:PATH" if family == "cache" else f"--policy {family}=ppo:PATH"
            raise PolicyRegistryError(f"policy {self.policy_id} needs a checkpoint: {use}")
        self.path = resolve_checkpoint(path)
        ckpt = load_policy_checkpoint(self.path)
        actors = ckpt["actors"]
        if family not in actors:
            raise ValueError(
                f"checkpoint {str(path)!r} has no {family!r} actor; it holds: "
                f"{', '.join(sorted(actors))}"
            )
        rec = actors[family]
        self.max_ue = int(ckpt["max_ue"])
        self.n_prb = int(ckpt["n_prb"])
        self.meta: dict[str, Any] = dict(ckpt.get("meta") or {})
        self.kind = str(rec["kind"])
        self.actor = build_actor(self.kind, rec["kwargs"])
        try:
            self.actor.load_state_dict(rec["state_dict"])
        except RuntimeError as e:
            raise ValueError(f"checkpoint {str(path)!r}: actor weights do not fit: {e}") from e
        self.actor.eval()
        for p in self.actor.parameters():
            p.requires_grad_(False)
        rms = rec.get("obs_rms")
        self.obs_rms = RunningMeanStd.from_state_dict(rms) if rms is not None else None
        self.clip_obs = float(rec.get("clip_obs", 10.0))
        start, stop = (int(s) for s in rec["slice"])
        self.slice = slice(start, stop)
        self.zero_prb_count = bool(rec.get("zero_prb_count", False))
        self._builders: list[ObservationBuilder] = []

    def __repr__(self) -> str:
        return f"TorchPolicy(path={str(self.path)!r}, family={self.family!r})"

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the HARQ history of every cell (the actor itself is stateless)."""
        for b in self._builders:
            b.reset()

    def _builder(self, cell: int) -> ObservationBuilder:
        while len(self._builders) <= cell:
            self._builders.append(ObservationBuilder(self.max_ue, self.n_prb))
        return self._builders[cell]

    def act_env(self, env_obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """This family's action for one env observation.

        Args:
            env_obs: Env observation of :mod:`edgetwin.envs.observation` (arrays padded to
                ``max_ue`` rows; ``sinr_db`` [max_ue, n_prb] in dB, per-UE vectors [max_ue]).

        Returns:
            Unclipped action means of this family, float32 [stop − start] (``max_ue`` entries).
        """
        obs: Mapping[str, np.ndarray] = env_obs
        if self.zero_prb_count:
            obs = {**env_obs, "prb_count": np.zeros_like(env_obs["prb_count"])}
        with torch.no_grad(), _one_thread():
            if self.kind == "flat":
                x = flat_features(obs)
                if self.obs_rms is not None:
                    x = self.obs_rms.normalize(x, clip=self.clip_obs)
                out = self.actor(torch.from_numpy(x)[None])[0]
            else:
                f = ue_features(obs)
                real = np.asarray(obs["ue_mask"]) > 0
                if self.obs_rms is not None:
                    # Statistics of shape [F] (MAPPO) or [max_ue, F] (SB3 per_ue) broadcast
                    # over the features [max_ue, F]; padded rows do not reach the actor.
                    f = self.obs_rms.normalize(f, clip=self.clip_obs)
                    f[~real] = 0.0
                out = self.actor(torch.from_numpy(f)[None], torch.from_numpy(real)[None])[0]
        return np.asarray(out.numpy()[self.slice], dtype=np.float32)

    def act_cache(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Unclipped action means of a ``cache`` actor for one cache observation, float32 [N].

        Raises:
            ValueError: The observation has a number of adapters other than the checkpoint's.
        """
        n = int(np.shape(obs["resident"])[0])
        if n != self.max_ue:
            raise ValueError(
                f"{self.policy_id}: the server has {n} adapters but checkpoint "
                f"{str(self.path)!r} was trained with {self.max_ue}"
            )
        x = cache_features(obs)
        with torch.no_grad(), _one_thread():
            if self.obs_rms is not None:
                # [N, F] (SB3 per row) or [N·F] (flat) statistics: normalize in that shape;
                # [F] (per feature) broadcasts over the rows.
                shape = tuple(self.obs_rms.shape)
                xs = x.reshape(shape) if int(np.prod(shape)) == x.size else x
                x = self.obs_rms.normalize(xs, clip=self.clip_obs).reshape(x.shape)
            if self.kind == "flat":
                out = self.actor(torch.from_numpy(x.ravel())[None])[0]
            else:
                mask = torch.ones((1, n), dtype=torch.bool)
                out = self.actor(torch.from_numpy(x)[None], mask)[0]
        return np.asarray(out.numpy()[self.slice], dtype=np.float32)

    def _act_cache(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Scores of the cache decision (see the module docstring), float64 [N]."""
        if int(obs["requested"]) >= 0 or int(obs["epoch"]) == 0:
            from edgetwin.agents.baselines.cache import keep_resident

            return keep_resident(obs)
        # As AdapterCacheEnv.step maps an action: clip to [-1, 1]; -1 is "not loaded".
        a = np.clip(self.act_cache(obs).astype(np.float64), -1.0, 1.0)
        return np.where(a <= -1.0, -np.inf, a)

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Answer one decision of this family for every cell (``cache``: for the server).

        Args:
            obs: The cell decision observation (:class:`~edgetwin.sim.radio.cell.CellGroup`):
                arrays with a leading cell axis, ``sinr_db`` [n_cell, n_ue, n_prb] in dB, ...

        Returns:
            PRB map, int64 [n_cell, n_prb] (UE index per PRB), for ``prb``; watts per PRB,
            float64 [n_cell, n_prb], for ``power``; a score per adapter, float64 [N], for
            ``cache`` (``obs`` is then the cache observation of ``agents/baselines/cache.py``).

        Raises:
            ValueError: A cell has more UEs than the checkpoint's ``max_ue`` or a different
                number of PRBs (``cache``: a different number of adapters).
        """
        if self.family == "cache":
            return self._act_cache(obs)
        cell_obs = dict(obs)
        n_cell, n_ue = np.shape(cell_obs["ue_mask"])[:2]
        n_prb = int(np.shape(cell_obs["sinr_db"])[-1])
        if n_ue > self.max_ue:
            raise ValueError(
                f"{self.policy_id}: the cells have {n_ue} UEs but checkpoint {str(self.path)!r} "
                f"was trained with max_ue={self.max_ue}"
            )
        if n_prb != self.n_prb:
            raise ValueError(
                f"{self.policy_id}: the carrier has {n_prb} PRBs but checkpoint "
                f"{str(self.path)!r} was trained with n_prb={self.n_prb}"
            )
        if self.family == "prb":
            alloc = np.empty((n_cell, n_prb), dtype=np.int64)
            with _one_thread():
                for c in range(n_cell):
                    a = self.act_env(self._builder(c)(cell_obs, c))
                    alloc[c] = prb_action_to_alloc(a, cell_obs, c)
            return alloc
        watts = np.empty((n_cell, n_prb), dtype=np.float64)
        with _one_thread():
            for c in range(n_cell):
                a = self.act_env(self._builder(c)(cell_obs, c))
                watts[c] = power_action_to_watts(a, cell_obs, c)
        return watts
