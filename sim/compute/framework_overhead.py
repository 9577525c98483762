"""The per-layer framework overhead: a real decoder layer's time minus the sum of its operators.

``kernels/`` times each operator of a layer on its own (GEMMs, attention, norms, RoPE, SwiGLU,
residual adds). A framework running the layer does more: Python dispatch per module, GEMMs a
framework keeps unfused (Hugging Face runs q, k, v and gate, up as separate projections), and
the KV-cache write, which a paged serving engine does in place but ``transformers``'
``DynamicCache`` does by concatenation, copying the layer's whole cache on every step.
``kernels/ops/layer.py`` times the whole layer as the framework runs it (operator
``decoder_layer``); this module fits what the operator sum misses as one term per layer::

    overhead(N, K) = c_0 + c_tok · N + c_kv · K + Σ_j h_j · max(0, K - k_j)   (s, one layer)

with ``N`` the new tokens of the iteration and ``K`` the KV tokens its sequences hold after it
(the bytes a concatenating cache copies scale with ``K``). The hinges ``k_j`` sit at the
measured ``K`` values (all but the largest, at most :data:`MAX_KNOTS`): the cost per KV token
is not constant — e.g. once a layer's new cache tensor exceeds the C allocator's ``mmap``
threshold (32 MiB in glibc) every step also page-faults the fresh pages in, which made a
SmolLM-360M layer 3.4x slower from 16 x 1,024 to 16 x 2,048 cached tokens on the build machine.
All coefficients are non-negative, so the overhead never falls with more work (monotone and
convex in ``K``); they are fitted by non-negative least squares on the *relative* error of the
whole layer (Lawson & Hanson 1974, NNLS; rows weighted by ``1 / t_layer`` as
``kernels/fit.py`` does), so the fitted layer ``ops + overhead`` is as close as it can get to
each measured layer. Beyond the largest measured ``K`` the last slope continues.

A framework also costs something once per forward pass, outside its layers (transformers:
building the causal mask and rotary tables, slicing the last positions, output objects).
``kernels/`` times a one-layer model pass as the framework runs it (operator
``decoder_pass``: embedding, one layer, final norm, LM head on the last positions, sampler);
what that pass takes beyond its parts — the fitted layer (operators + the term above) and the
per-pass operators (embedding, final RMSNorm, LM head, sampler) — is fitted the same way::

    pass_overhead(S, N) = d_0 + d_seq · S + d_tok · N     (seconds, once per iteration)

with ``S`` the sequences and ``N`` the new tokens of the iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from edgetwin.sim.types import FloatArray

#: The overhead's linear features, in coefficient order (the hinges follow).
FEATURES: Final[tuple[str, ...]] = ("1", "n_tokens", "kv_tokens")
#: Most hinges on ``K`` (quantiles of the measured values when there are more).
MAX_KNOTS: Final[int] = 24
#: Profile operator holding whole-layer times.
LAYER_OP: Final[str] = "decoder_layer"
#: Profile operator holding one-layer model passes.
PASS_OP: Final[str] = "decoder_pass"
#: The per-pass overhead's features, in coefficient order.
PASS_FEATURES: Final[tuple[str, ...]] = ("1", "n_seq", "n_tokens")


@dataclass(frozen=True)
class FrameworkOverhead:
    """``c_0 + c_tok·N + c_kv·K + Σ h_j max(0, K - k_j)`` seconds per decoder layer.

    See the module docstring.

    Attributes:
        coef: ``(c_0 [s], c_tok [s/token], c_kv [s/KV token], h_1, ..., h_J [s/KV token])``,
            each >= 0.
        knots: ``k_1 < ... < k_J``, KV tokens (one per hinge coefficient; may be empty).
        pass_coef: ``(d_0 [s], d_seq [s/sequence], d_tok [s/token])`` of the per-pass
            overhead, each >= 0 (zeros without ``decoder_pass`` rows).
        median_rel_error: Median |relative error| of ``ops + overhead`` over the fitted layers.
        max_rel_error: Largest |relative error| of ``ops + overhead`` over the fitted layers.
        n_rows: Layer measurements fitted.
        pass_median_rel_error: The same over the fitted one-layer passes.
        pass_max_rel_error: The same over the fitted one-layer passes.
        n_pass_rows: Pass measurements fitted.
    """

    coef: tuple[float, ...]
    knots: tuple[float, ...] = ()
    pass_coef: tuple[float, float, float] = (0.0, 0.0, 0.0)
    median_rel_error: float = float("nan")
    max_rel_error: float = float("nan")
    n_rows: int = 0
    pass_median_rel_error: float = float("nan")
    pass_max_rel_error: float = float("nan")
    n_pass_rows: int = 0

    def __post_init__(self) -> None:
        c = np.asarray(self.coef, dtype=np.float64)
        k = np.asarray(self.knots, dtype=np.float64)
        n = len(FEATURES) + len(k)
        if c.shape != (n,) or not np.all(np.isfinite(c)) or (c < 0).any():
            raise ValueError(
                f"framework overhead: coef must be {n} finite numbers >= 0 "
                f"({', '.join(FEATURES)} and one per knot), got {self.coef!r}"
            )
        if not np.all(np.isfinite(k)) or (np.diff(k) <= 0).any():
            raise ValueError(f"framework overhead: knots must increase, got {self.knots!r}")
        d = np.asarray(self.pass_coef, dtype=np.float64)
        if d.shape != (len(PASS_FEATURES),) or not np.all(np.isfinite(d)) or (d < 0).any():
            raise ValueError(
                f"framework overhead: pass_coef must be {len(PASS_FEATURES)} finite numbers "
                f">= 0 ({', '.join(PASS_FEATURES)}), got {self.pass_coef!r}"
            )

    def seconds(self, n_tokens: int, kv_tokens: int) -> float:
        """One layer's overhead for ``n_tokens`` new tokens and ``kv_tokens`` KV tokens after."""
        c0, c_tok, c_kv, *hinges = self.coef
        out = c0 + c_tok * n_tokens + c_kv * kv_tokens
        for h, k in zip(hinges, self.knots, strict=True):
            if kv_tokens > k:
                out += h * (kv_tokens - k)
        return out

    def pass_seconds(self, n_seq: int, n_tokens: int) -> float:
        """The per-pass overhead of an iteration of ``n_seq`` sequences and ``n_tokens`` tokens."""
        d0, d_seq, d_tok = self.pass_coef
        return d0 + d_seq * n_seq + d_tok * n_tokens


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
    t, shapes, ops = _measured(layers, LAYER_OP, layer_ops_s)
    lin = np.array([(1.0, float(sum(s[0]) + len(s[2])), float(kv_tokens(*s))) for s in shapes])
    knots = _knots(lin[:, 2])
    feats = np.hstack([lin, np.maximum(lin[:, 2:3] - knots[None, :], 0.0)])  # [R, 3 + J]
    coef, err = _nnls_relative(feats, ops, t)
    return FrameworkOverhead(
        coef=tuple(float(v) for v in coef),
        knots=tuple(float(k) for k in knots),
        median_rel_error=float(np.median(err)),
        max_rel_error=float(err.max()),
        n_rows=len(layers),
    )


def fit_pass_overhead(
    passes: pd.DataFrame,
    pass_parts_s: Callable[[np.ndarray, np.ndarray, np.ndarray], float],
) -> tuple[tuple[float, float, float], float, float]:
    """Fit the per-pass overhead on measured one-layer model passes.

    Args:
        passes: ``decoder_pass`` profile rows (shapes as ``decoder_layer``'s), at least one.
        pass_parts_s: What a one-layer pass of an iteration ``(prefill_tokens,
            prefill_context, decode_context)`` costs without the per-pass overhead: the fitted
            layer plus embedding, final norm, LM head and sampler.

    Returns:
        ``pass_coef`` (see :class:`FrameworkOverhead`), and the median and max |relative
        error| of the fitted passes.

    Raises:
        ValueError: No rows, or a non-positive pass time.
    """
    t, shapes, parts = _measured(passes, PASS_OP, pass_parts_s)
    feats = np.array(
        [(1.0, float(len(s[0]) + len(s[2])), float(sum(s[0]) + len(s[2]))) for s in shapes]
    )  # [R, 3]: 1, sequences, new tokens
    coef, err = _nnls_relative(feats, parts, t)
    return (float(coef[0]), float(coef[1]), float(coef[2])), float(np.median(err)), float(err.max())


Iteration = tuple[np.ndarray, np.ndarray, np.ndarray]


def _measured(
    rows: pd.DataFrame, op: str, modelled_s: Callable[[np.ndarray, np.ndarray, np.ndarray], float]
) -> tuple[FloatArray, list[Iteration], FloatArray]:
    """Checked times ``[R]`` (s), each row as an iteration, and the modelled part ``[R]`` (s).

    Raises:
        ValueError: No rows, or a time that is not finite and > 0.
    """
    if len(rows) == 0:
        raise ValueError(f"framework overhead: no {op} rows to fit")
    t = rows["time_median_s"].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(t)) or (t <= 0).any():
        raise ValueError(f"framework overhead: {op} times must be finite and > 0")
    cols = rows[["n_tokens", "batch_size", "context_len"]].to_numpy(dtype=np.int64)
    shapes = [layer_shape(int(n), int(b), int(c)) for n, b, c in cols]
    return t, shapes, np.array([modelled_s(*s) for s in shapes], dtype=np.float64)


def _nnls_relative(
    feats: FloatArray, known_s: FloatArray, t_s: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Non-negative ``c`` minimizing the relative error of ``known + feats @ c`` against ``t``.

    Args:
        feats: Features, shape ``[R, F]``.
        known_s: The modelled part of each measurement, shape ``[R]``, s.
        t_s: Measured times, shape ``[R]``, s (> 0).

    Returns:
        ``c`` ``[F]`` and each row's |relative error| ``[R]``.
    """
    a = feats / t_s[:, None]
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0  # a feature that is 0 on every row: its coefficient stays 0
    coef_scaled, _ = nnls(a / scale, (t_s - known_s) / t_s)  # Lawson & Hanson 1974
    coef: FloatArray = coef_scaled / scale
    return coef, np.abs((known_s + feats @ coef - t_s) / t_s)


def _knots(kv: FloatArray) -> FloatArray:
    """Hinge positions: the distinct measured ``K`` but the largest, at most :data:`MAX_KNOTS`.

    Args:
        kv: ``K`` of each measured layer, shape ``[R]``, KV tokens.
    """
    distinct = np.unique(kv)[:-1]
    if len(distinct) > MAX_KNOTS:
        distinct = np.unique(np.quantile(distinct, np.linspace(0, 1, MAX_KNOTS)))
    return distinct.astype(np.float64)
