"""The per-layer framework overhead: a real decoder layer's time minus the sum of its operators.

``kernels/`` times each operator of a layer on its own (GEMMs, attention, norms, RoPE, SwiGLU,
residual adds). A framework running the layer does more: Python dispatch per module, GEMMs a
framework keeps unfused (Hugging Face runs q, k, v and gate, up as separate projections), and
the KV-cache write, which a paged serving engine does in place but ``transformers``'
``DynamicCache`` does by concatenation, copying the layer's whole cache on every step.
``kernels/ops/layer.py`` times the whole layer as the framework runs it (operator
``decoder_layer``); this module fits what the operator sum misses as one term per layer::

    overhead(N, K) = c_0 + c_tok · N + c_kv · K        (seconds, one layer)

with ``N`` the new tokens of the iteration and ``K`` the KV tokens its sequences hold after it
(the bytes a concatenating cache copies scale with ``K``). The coefficients are non-negative
(more work never takes less time), fitted by non-negative least squares on the *relative* error
of the whole layer (Lawson & Hanson 1974, NNLS; rows weighted by ``1 / t_layer`` as
``kernels/fit.py`` does), so the fitted layer ``ops + overhead`` is as close as it can get to
each measured layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from edgetwin.sim.types import FloatArray

#: The overhead's features, in coefficient order.
FEATURES: Final[tuple[str, ...]] = ("1", "n_tokens", "kv_tokens")
#: Profile operator holding whole-layer times.
LAYER_OP: Final[str] = "decoder_layer"


@dataclass(frozen=True)
class FrameworkOverhead:
    """``c_0 + c_tok · N + c_kv · K`` seconds per decoder layer (see the module docstring).

    Attributes:
        coef: ``(c_0 [s], c_tok [s/token], c_kv [s/KV token])``, each >= 0.
        median_rel_error: Median |relative error| of ``ops + overhead`` over the fitted layers.
        max_rel_error: Largest |relative error| of ``ops + overhead`` over the fitted layers.
        n_rows: Layer measurements fitted.
    """

    coef: tuple[float, float, float]
    median_rel_error: float = float("nan")
    max_rel_error: float = float("nan")
    n_rows: int = 0

    def __post_init__(self) -> None:
        c = np.asarray(self.coef, dtype=np.float64)
        if c.shape != (len(FEATURES),) or not np.all(np.isfinite(c)) or (c < 0).any():
            raise ValueError(
                f"framework overhead: coef must be {len(FEATURES)} finite numbers >= 0 "
                f"({', '.join(FEATURES)}), got {self.coef!r}"
            )

    def seconds(self, n_tokens: int, kv_tokens: int) -> float:
        """One layer's overhead for ``n_tokens`` new tokens and ``kv_tokens`` KV tokens after."""
        c0, c_tok, c_kv = self.coef
        return c0 + c_tok * n_tokens + c_kv * kv_tokens


def layer_shape(
    n_tokens: int, batch_size: int, context_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``decoder_layer`` row's shape as an iteration.

    Returns ``(prefill_tokens, prefill_context, decode_context)``, each an int64 array.

    A row with ``n_tokens == batch_size`` is a decode step of ``batch_size`` sequences over
    ``context_len`` cached tokens each (attention over ``context_len + 1`` keys); any other row
    is one prefill chunk of ``n_tokens`` tokens over ``context_len`` cached tokens (batch 1).
    """
    if n_tokens == batch_size:
        return (
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.full(batch_size, context_len + 1, np.int64),
        )
    return np.array([n_tokens], np.int64), np.array([context_len], np.int64), np.zeros(0, np.int64)


def kv_tokens(
    prefill_tokens: np.ndarray, prefill_context: np.ndarray, decode_context: np.ndarray
) -> int:
    """KV tokens the iteration's sequences hold after it (each ``[n]``, tokens)."""
    return int(prefill_tokens.sum() + prefill_context.sum() + decode_context.sum())


def fit_framework_overhead(
    layers: pd.DataFrame,
    layer_ops_s: Callable[[np.ndarray, np.ndarray, np.ndarray], float],
) -> FrameworkOverhead:
    """Fit the overhead on measured whole layers.

    Args:
        layers: ``decoder_layer`` profile rows (``n_tokens``, ``batch_size``, ``context_len``,
            ``time_median_s``), at least one.
        layer_ops_s: One layer's operator sum for an iteration ``(prefill_tokens,
            prefill_context, decode_context)`` (e.g. ``TableCostModel.layer_ops_s``).

    Raises:
        ValueError: No rows, or a non-positive layer time.
    """
    if len(layers) == 0:
        raise ValueError(f"framework overhead: no {LAYER_OP} rows to fit")
    t = layers["time_median_s"].to_numpy(dtype=np.float64)  # [R] s
    if not np.all(np.isfinite(t)) or (t <= 0).any():
        raise ValueError(f"framework overhead: {LAYER_OP} times must be finite and > 0")
    feats = np.empty((len(layers), len(FEATURES)), np.float64)  # [R, F]
    ops = np.empty(len(layers), np.float64)  # [R] s
    rows = layers[["n_tokens", "batch_size", "context_len"]].to_numpy(dtype=np.int64)
    for i, (n, b, c) in enumerate(rows):
        shape = layer_shape(int(n), int(b), int(c))
        ops[i] = layer_ops_s(*shape)
        feats[i] = (1.0, float(n), float(kv_tokens(*shape)))
    # relative error of the whole layer: (ops + F c - t) / t
    a = feats / t[:, None]
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0  # a feature that is 0 on every row: its coefficient stays 0
    coef_scaled, _ = nnls(a / scale, (t - ops) / t)
    coef = coef_scaled / scale
    err = np.abs((ops + feats @ coef - t) / t)
    return FrameworkOverhead(
        coef=(float(coef[0]), float(coef[1]), float(coef[2])),
        median_rel_error=float(np.median(err)),
        max_rel_error=float(err.max()),
        n_rows=len(layers),
    )


def as_array(overhead: FrameworkOverhead) -> FloatArray:
    """The coefficients as an array ``[3]`` (for ``.npz`` storage)."""
    return np.asarray(overhead.coef, dtype=np.float64)
