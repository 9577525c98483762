"""Per-UE features of one env observation and running observation statistics (numpy only).

Every learner and :class:`~edgetwin.agents.rl.torch_policy.TorchPolicy` turn an env observation
(:mod:`edgetwin.envs.observation`) into features through :func:`ue_features`, so a checkpoint sees
the same inputs in training and in ``edgetwin run``. The transforms are fixed and stateless
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
