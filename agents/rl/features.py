"""Per-UE and per-adapter features, and running observation statistics (numpy only).

Every learner and :class:`~edgetwin.agents.rl.torch_policy.TorchPolicy` turn an env observation
(:mod:`edgetwin.envs.observation`) into features through :func:`ue_features`, so a checkpoint sees
the same inputs in training and in ``edgetwin run``. The ``cache`` family does the same with
:func:`cache_features` of the cache-policy observation dict (``agents/baselines/cache.py``): the
env's observation goes through :func:`~edgetwin.envs.adapter_cache.cache_policy_obs` first
(:class:`CacheFeatures`), so the trained actor reads the dict that ``simulate_adapter_serving``
and the serving loop hand to every cache policy. The transforms are fixed and stateless
(scales chosen so that typical values are O(1)); the learned normalization on top is a
:class:`RunningMeanStd` saved with the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

#: Names of the per-UE features, in column order of :func:`ue_features`.
UE_FEATURES: tuple[str, ...] = (
    "sinr_mean_db/10",
    "sinr_std_db/10",
    "sinr_max_db/10",
    "sinr_min_db/10",
    "log1p(est_rate_mbps)",
    "log1p(avg_rate_mbps)",
    "log1p(last_rate_mbps)",
    "log1p(buffer_mbit)",
    "olla_offset_db/5",
    "mcs/28",
    "harq_feedback",
    "prb_count/n_prb",
    "has_data",
    "ue_mask",
    "pf_metric",
)
#: Number of per-UE features.
N_UE_FEATURES = len(UE_FEATURES)

#: Buffer sizes above this (bits) count as this (full buffer is 1e15).
_BUFFER_CAP_BITS = 1e12
#: Rate offset of the PF metric, bit/s (keeps it finite for UEs with no throughput yet).
_PF_EPS_BPS = 1e3
#: Bound of the PF metric (log ratio).
_PF_BOUND = 10.0


def ue_features(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-UE features of one env observation.

    Args:
        obs: Env observation (:func:`edgetwin.envs.observation.observation_space`): ``sinr_db``
            float [max_ue, n_prb] in dB and the per-UE vectors float [max_ue] (rates in bit/s,
            buffer in bits, OLLA offset in dB, MCS index, HARQ feedback ±1/0, PRB count, flags).

    Returns:
        Features, float32 [max_ue, N_UE_FEATURES] in the order of :data:`UE_FEATURES`
        (dimensionless); rows with ``ue_mask == 0`` (padding) are all zero.
    """
    sinr = np.asarray(obs["sinr_db"], dtype=np.float64)
    n_prb = max(sinr.shape[-1], 1)
    est = np.asarray(obs["est_rate_bps"], dtype=np.float64)
    avg = np.asarray(obs["avg_rate_bps"], dtype=np.float64)
    last = np.asarray(obs["last_rate_bps"], dtype=np.float64)
    buf = np.minimum(np.asarray(obs["buffer_bits"], dtype=np.float64), _BUFFER_CAP_BITS)
    mask = np.asarray(obs["ue_mask"], dtype=np.float64)
    pf = np.clip(np.log((est + _PF_EPS_BPS) / (avg + _PF_EPS_BPS)), -_PF_BOUND, _PF_BOUND)
    cols = (
        sinr.mean(axis=-1) / 10.0,
        sinr.std(axis=-1) / 10.0,
        sinr.max(axis=-1) / 10.0,
        sinr.min(axis=-1) / 10.0,
        np.log1p(np.maximum(est, 0.0) / 1e6),
        np.log1p(np.maximum(avg, 0.0) / 1e6),
        np.log1p(np.maximum(last, 0.0) / 1e6),
        np.log1p(np.maximum(buf, 0.0) / 1e6),
        np.asarray(obs["olla_offset_db"], dtype=np.float64) / 5.0,
        np.asarray(obs["mcs"], dtype=np.float64) / 28.0,
        np.asarray(obs["harq_feedback"], dtype=np.float64),
        np.asarray(obs["prb_count"], dtype=np.float64) / n_prb,
        np.asarray(obs["has_data"], dtype=np.float64),
        mask,
        pf,
    )
    out = np.stack(cols, axis=-1).astype(np.float32)
    out[mask <= 0] = 0.0
    return out


def flat_features(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """:func:`ue_features` raveled, float32 [max_ue · N_UE_FEATURES] (UE-major)."""
    return ue_features(obs).ravel()


def _max_ue(space: spaces.Space[Any]) -> int:
    """Padded UE rows of an env observation space (:mod:`edgetwin.envs.observation`)."""
    assert isinstance(space, spaces.Dict)
    ue_mask = space["ue_mask"]
    assert isinstance(ue_mask, spaces.Box)
    return int(ue_mask.shape[0])


class FlatFeatures(gym.ObservationWrapper[np.ndarray, np.ndarray, Any]):
    """Gymnasium wrapper: the ``Dict`` observation → :func:`flat_features` (for SB3 MlpPolicy).

    Args:
        env: An env with the observation space of :mod:`edgetwin.envs.observation`.
    """

    def __init__(self, env: gym.Env[Any, np.ndarray]) -> None:
        super().__init__(env)
        self.max_ue = _max_ue(env.observation_space)
        self.observation_space = spaces.Box(
            -np.inf, np.inf, (self.max_ue * N_UE_FEATURES,), np.float32
        )

    def observation(self, observation: Any) -> np.ndarray:
        """Flat features of one env observation, float32 [max_ue · N_UE_FEATURES]."""
        return flat_features(observation)


class PerUEFeatures(gym.ObservationWrapper[dict[str, Any], np.ndarray, Any]):
    """Gymnasium wrapper: the ``Dict`` observation → per-UE features and the UE mask (SB3 per-UE).

    The observation is a ``Dict`` of ``"x"``: :func:`ue_features`, float32 [max_ue,
    N_UE_FEATURES], and ``"mask"``: ``ue_mask``, float32 [max_ue] in {0, 1} (1 = real UE).
    Normalize only ``"x"`` (``VecNormalize(norm_obs_keys=["x"])``) so the mask stays 0/1.

    Args:
        env: An env with the observation space of :mod:`edgetwin.envs.observation`.
    """

    def __init__(self, env: gym.Env[Any, np.ndarray]) -> None:
        super().__init__(env)
        self.max_ue = _max_ue(env.observation_space)
        self.observation_space = spaces.Dict(
            {
                "x": spaces.Box(-np.inf, np.inf, (self.max_ue, N_UE_FEATURES), np.float32),
                "mask": spaces.Box(0.0, 1.0, (self.max_ue,), np.float32),
            }
        )

    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        """Per-UE features [max_ue, N_UE_FEATURES] and the UE mask [max_ue], both float32."""
        mask = (np.asarray(observation["ue_mask"]) > 0).astype(np.float32)
        return {"x": ue_features(observation), "mask": mask}


#: Names of the per-adapter features, in column order of :func:`cache_features`.
CACHE_FEATURES: tuple[str, ...] = (
    "counts/sum(counts)",
    "total_counts/sum(total_counts)",
    "hits/(sum(hits)+sum(misses))",
    "misses/(sum(hits)+sum(misses))",
    "est_utility",
    "uncertainty",
    "resident",
    "recency_rank",
)
#: Number of per-adapter features.
N_CACHE_FEATURES = len(CACHE_FEATURES)
#: :data:`edgetwin.envs.adapter_cache.EST_BOUND`, repeated so that this module does not import
#: the simulator (a test keeps the two equal).
EST_BOUND = 1e3


def _share(x: np.ndarray, total: float) -> np.ndarray:
    return x / total if total > 0 else np.zeros_like(x)


def cache_features(obs: Mapping[str, Any]) -> np.ndarray:
    """Per-adapter features of one cache-policy observation (``agents/baselines/cache.py``).

    Scale-free, so that the standalone loop's exact counts and the env's normalized ones give
    the same numbers: demand shares of the epoch and since reset, the shares of the epoch's
    requests served as hits / misses by each adapter, the router's utility estimate and its
    width (clipped as the env clips them, float32 as the env stores them; zeros when the
    caller has no estimates), residency, and the recency rank of ``last_used`` (only its order
    is defined: 1 for the most recently served adapter, ``1 − k/N`` for the k-th next, 0 if
    never served).

    Args:
        obs: Cache observation: ``resident`` bool [N], ``counts``, ``total_counts``, ``hits``,
            ``misses`` (request counts, [N]), ``last_used`` [N] (any clock, ``-inf``: never),
            optional ``est_utility`` / ``uncertainty`` [N].

    Returns:
        Features, float32 [N, N_CACHE_FEATURES] in the order of :data:`CACHE_FEATURES`.
    """
    resident = np.asarray(obs["resident"], dtype=bool)
    n = resident.shape[0]
    counts = np.asarray(obs["counts"], dtype=np.float64)
    total = np.asarray(obs["total_counts"], dtype=np.float64)
    hits = np.asarray(obs["hits"], dtype=np.float64)
    misses = np.asarray(obs["misses"], dtype=np.float64)
    served = float(hits.sum() + misses.sum())
    zeros = np.zeros(n)
    est = np.asarray(obs.get("est_utility", zeros), dtype=np.float64)
    unc = np.asarray(obs.get("uncertainty", zeros), dtype=np.float64)
    # As the env stores them (clip, then float32), so both callers give identical inputs.
    est = np.clip(est, -EST_BOUND, EST_BOUND).astype(np.float32).astype(np.float64)
    unc = np.clip(unc, 0.0, EST_BOUND).astype(np.float32).astype(np.float64)
    last = np.asarray(obs["last_used"], dtype=np.float64)
    rank = np.empty(n)
    rank[np.argsort(last, kind="stable")] = np.arange(1, n + 1)
    recency = np.where(last > -np.inf, rank / max(n, 1), 0.0)
    cols = (
        _share(counts, float(counts.sum())),
        _share(total, float(total.sum())),
        _share(hits, served),
        _share(misses, served),
        est,
        unc,
        resident.astype(np.float64),
        recency,
    )
    return np.stack(cols, axis=-1).astype(np.float32)


class CacheFeatures(gym.ObservationWrapper[Any, np.ndarray, Any]):
    """Gymnasium wrapper of ``edgetwin/AdapterCache-v0``: observation → :func:`cache_features`.

    The env observation becomes the cache-policy dict (the env's ``cache_policy_obs``), then
    per-adapter features. ``arch="per_ue"``: a ``Dict`` of ``"x"`` [N, N_CACHE_FEATURES] and
    ``"mask"`` (ones [N]: every adapter is real), for the per-row shared actor
    (:class:`~edgetwin.agents.rl.ppo.PerUEPolicy`; normalize only ``"x"``); ``arch="flat"``:
    the features raveled, float32 [N · N_CACHE_FEATURES] (SB3 ``MlpPolicy``).

    Args:
        env: An ``AdapterCacheEnv`` (possibly wrapped, e.g. by ``Monitor``).
        arch: ``"per_ue"`` or ``"flat"``.
    """

    def __init__(self, env: gym.Env[Any, np.ndarray], arch: str = "per_ue") -> None:
        super().__init__(env)
        if arch not in ("per_ue", "flat"):
            raise ValueError(f"unknown arch {arch!r}; allowed: per_ue, flat")
        self.arch = arch
        self.max_ue = int(env.unwrapped.n_adapters)  # type: ignore[attr-defined]
        n, f = self.max_ue, N_CACHE_FEATURES
        self.observation_space: spaces.Space[Any]
        if arch == "per_ue":
            self.observation_space = spaces.Dict(
                {
                    "x": spaces.Box(-np.inf, np.inf, (n, f), np.float32),
                    "mask": spaces.Box(0.0, 1.0, (n,), np.float32),
                }
            )
        else:
            self.observation_space = spaces.Box(-np.inf, np.inf, (n * f,), np.float32)

    def observation(self, observation: Any) -> Any:
        """Features of one env observation (a ``Dict`` or a flat vector, per ``arch``)."""
        x = cache_features(self.env.unwrapped.cache_policy_obs(observation))  # type: ignore[attr-defined]
        if self.arch == "flat":
            return x.ravel()
        return {"x": x, "mask": np.ones(self.max_ue, dtype=np.float32)}


class RunningMeanStd:
    """Running mean and variance over batches (parallel algorithm; as SB3 / OpenAI baselines).

    Args:
        shape: Shape of one sample (``()`` for scalars).
        epsilon: Initial pseudo-count (avoids division by zero before the first update).
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.mean = np.zeros(self.shape, dtype=np.float64)
        self.var = np.ones(self.shape, dtype=np.float64)
        self.count = float(epsilon)

    def update(self, x: np.ndarray) -> None:
        """Fold in a batch of samples.

        Args:
            x: Samples, [..., *shape] (every leading index is one sample; any unit).
        """
        arr = np.asarray(x, dtype=np.float64)
        if arr.shape[arr.ndim - len(self.shape) :] != self.shape:
            raise ValueError(f"samples of shape {arr.shape} do not end in {self.shape}")
        batch = arr.reshape((-1, *self.shape))
        n = batch.shape[0]
        if n == 0:
            return
        b_mean = batch.mean(axis=0)
        b_var = batch.var(axis=0)
        delta = b_mean - self.mean
        total = self.count + n
        new_mean = self.mean + delta * n / total
        m2 = self.var * self.count + b_var * n + delta**2 * self.count * n / total
        self.mean = new_mean
        self.var = m2 / total
        self.count = float(total)

    def normalize(self, x: np.ndarray, clip: float = 10.0, epsilon: float = 1e-8) -> np.ndarray:
        """``clip((x − mean) / sqrt(var + ε), ±clip)``.

        Args:
            x: Samples, [..., *shape] (the unit of the updates).
            clip: Bound of the normalized values.
            epsilon: Added to the variance.

        Returns:
            Normalized samples, float32 [..., *shape].
        """
        z = (np.asarray(x, dtype=np.float64) - self.mean) / np.sqrt(self.var + epsilon)
        return np.clip(z, -clip, clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        """Mean, variance (nested lists) and count: plain data for a checkpoint."""
        return {
            "shape": list(self.shape),
            "mean": np.asarray(self.mean).tolist(),
            "var": np.asarray(self.var).tolist(),
            "count": float(self.count),
        }

    @classmethod
    def from_state_dict(cls, d: Mapping[str, Any]) -> RunningMeanStd:
        """Inverse of :meth:`state_dict` (also accepts numpy arrays or tensors as mean/var)."""
        mean = np.asarray(d["mean"], dtype=np.float64)
        var = np.asarray(d["var"], dtype=np.float64)
        shape = tuple(int(s) for s in d.get("shape", mean.shape))
        if mean.shape != shape or var.shape != shape:
            raise ValueError(f"mean {mean.shape} / var {var.shape} do not match shape {shape}")
        rms = cls(shape)
        rms.mean = mean.copy()
        rms.var = var.copy()
        rms.count = float(d["count"])
        return rms
