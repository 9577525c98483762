"""Table cost model: iteration time from measured per-operator kernel profiles.

Each operator's profile (``profiles.py`` schema) becomes a lookup table built once at
construction, so that one :meth:`TableCostModel.iteration_time_s` call is a few array lookups:

* 1-D operators (``linear_*`` and ``elementwise`` over ``n_tokens``, ``lm_head`` over
  ``batch_size``) are tabulated on **every integer** 0..max measured size with ``np.interp``
  between profile points (O(1) indexing); beyond the largest measured size they extrapolate
  linearly with the last segment's slope.
* 2-D attention operators (``attn_prefill`` over (chunk tokens, cached context),
  ``attn_decode`` over (batch, KV length)) keep the profile grid and interpolate bilinearly
  (``np.searchsorted`` on the grid axes, vectorized over a batch's chunks).

Below the smallest measured size a table holds its first value (a kernel launch does not get
cheaper). Tables of imported public profiles are made monotone non-decreasing along each axis
with a running maximum (physics: more work never takes less time; measurement noise is removed
that way: the "clipped to be monotone" rule); tables of profiles measured by ``edgetwin kernels
profile`` keep their measured shape (:func:`keeps_measured_shape`).

One iteration (vLLM-style continuous batching, see ``cost_model.py``) costs::

    L x [qkv(N) + o(N) + gate_up(N) + down(N) + sum_i attn_prefill(c_i, p_i)
         + attn_decode(n_dec, mean(decode_context))] + other(N) + lm_head(n_seq)
         + sampler(n_seq) + L x framework(N, K) + framework_pass(n_seq, N) + overhead_s

with ``N = sum(prefill_tokens) + n_decode`` new tokens and ``n_seq = n_prefill + n_decode``.
``other`` is the elementwise work: an imported whole-model ``elementwise`` table (see
``importers.py``), or ``L x [2 rmsnorm + rope + silu_mul + 2 residual_add](N) + rmsnorm(N) +
embedding(N)`` from operators profiled one at a time (``kernels/ops/elementwise.py``), 0 when
neither is there; ``sampler`` is 0 without its table. Decode attention of sequences with
different KV lengths is evaluated at the mean length (paged attention's work is linear in the
total KV tokens read). When the batch also holds a prefill chunk and the model has an
``attn_decode_mixed`` table (built from LLMServingSim's mixed-batch attention rows,
:func:`mixed_decode_table`), decode attention is looked up there instead: one varlen kernel
serving both is slower than the two separate kernels.
``framework`` is the per-layer framework overhead fitted on whole decoder layers that
``kernels/`` timed as the framework runs them (``framework_overhead.py``; ``K`` = the KV tokens
the sequences hold after the iteration), 0 for profiles without ``decoder_layer`` rows;
``framework_pass`` is the framework's once-per-pass overhead fitted on one-layer model passes
(``decoder_pass`` rows), 0 without them.
This per-operator summation is what Vidur (Agrawal et al., MLSys 2024) and LLMServingSim
(Cho et al., 2024) do with the same profiles.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from edgetwin.sim.compute.cost_model import CostModel, RooflineCostModel
from edgetwin.sim.compute.framework_overhead import (
    LAYER_OP,
    PASS_OP,
    FrameworkOverhead,
    fit_framework_overhead,
    fit_pass_overhead,
    kv_tokens,
)
from edgetwin.sim.compute.importers import (
    LLMSERVINGSIM_RTX4090_LLAMA31_8B,
    VIDUR_A100_MLP,
    import_llmservingsim,
    import_vidur_attention,
    import_vidur_mlp,
    llmservingsim_mixed_attention,
    model_dims,
)
from edgetwin.sim.compute.profile_formats import detect_profiles
from edgetwin.sim.compute.profiles import KERNELS_SOURCE, OPS, read_profile
from edgetwin.sim.types import FloatArray, IntArray

#: Operator -> the profile columns it is tabulated over.
TABLE_AXES: Final[dict[str, tuple[str, ...]]] = {
    "linear_qkv": ("n_tokens",),
    "linear_o": ("n_tokens",),
    "linear_gate_up": ("n_tokens",),
    "linear_down": ("n_tokens",),
    "lm_head": ("batch_size",),
    "attn_prefill": ("n_tokens", "context_len"),
    "attn_decode": ("batch_size", "context_len"),
    "elementwise": ("n_tokens",),
    "rmsnorm": ("n_tokens",),
    "rope": ("n_tokens",),
    "silu_mul": ("n_tokens",),
    "residual_add": ("n_tokens",),
    "embedding": ("n_tokens",),
    "sampler": ("batch_size",),
    # not a profile operator: decode attention's marginal time inside a batch that also has a
    # prefill chunk (vLLM runs both in one varlen kernel; see :func:`mixed_decode_table`)
    "attn_decode_mixed": ("batch_size", "context_len"),
}
LAYER_GEMMS: Final[tuple[str, ...]] = ("linear_qkv", "linear_o", "linear_gate_up", "linear_down")
#: Elementwise operators profiled one call at a time -> (calls per layer, calls per pass), as a
#: Llama decoder layer runs them (two RMSNorms, RoPE, SwiGLU, two residual adds; then the
#: embedding and the final RMSNorm once).
ELEMENTWISE_CALLS: Final[dict[str, tuple[int, int]]] = {
    "rmsnorm": (2, 1),
    "rope": (1, 0),
    "silu_mul": (1, 0),
    "residual_add": (2, 0),
    "embedding": (0, 1),
}
ATTENTION_OPS: Final[tuple[str, ...]] = ("attn_prefill", "attn_decode")
#: File name of a tabulated cost model inside a ``<hardware>/<model>`` profile folder.
TABLE_FILE: Final[str] = "table.npz"
#: Default fixed per-iteration overhead (s). The imported kernel times already include launch
#: costs (LLMServingSim profiles with ``enforce_eager``); scheduler time is not in any table.
DEFAULT_OVERHEAD_S: Final[float] = 0.0

#: A100 roofline constants for the attention / LM head that Vidur's ``mlp.csv`` lacks:
#: 312 TFLOP/s dense bf16/fp16 and 2.039 TB/s HBM2e (NVIDIA A100 80GB datasheet).
A100_PEAK_FLOPS: Final[float] = 312e12
A100_BANDWIDTH_BYTES_PER_S: Final[float] = 2.039e12


class OpTable:
    """A lookup table of one operator over one or two integer axes.

    Args:
        axes: Grid values per axis, each sorted ascending, length ``n_a`` (>= 1).
        values: Seconds on the grid, shape ``[n_0]`` or ``[n_0, n_1]``.
        monotone: Make the values non-decreasing along each axis (running maximum), the rule
            for imported public tables; ``False`` keeps the measured shape (see
            :func:`keeps_measured_shape`).
    """

    __slots__ = ("_dense", "_slope", "axes", "values")

    def __init__(
        self, axes: tuple[FloatArray, ...], values: FloatArray, *, monotone: bool = True
    ) -> None:
        if len(axes) not in (1, 2) or values.shape != tuple(len(a) for a in axes):
            raise ValueError(f"OpTable: values shape {values.shape} does not match the axes")
        if not np.all(np.isfinite(values)) or (values < 0).any():
            raise ValueError("OpTable: values must be finite and >= 0")
        for a in axes:
            if len(a) == 0 or (np.diff(a) <= 0).any():
                raise ValueError("OpTable: each axis must be non-empty and strictly increasing")
        v = values.astype(np.float64)
        if monotone:
            v = np.maximum.accumulate(v, axis=0)
            if v.ndim == 2:
                v = np.maximum.accumulate(v, axis=1)
        self.axes = tuple(np.asarray(a, dtype=np.float64) for a in axes)
        self.values: FloatArray = v
        self._dense: FloatArray = np.zeros(0)
        self._slope = 0.0
        if v.ndim == 1:
            x = self.axes[0]
            top = int(np.floor(x[-1]))
            self._dense = np.interp(np.arange(top + 1, dtype=np.float64), x, v)
            if len(x) > 1:
                self._slope = max(0.0, float((v[-1] - v[-2]) / (x[-1] - x[-2])))

    @classmethod
    def from_rows(cls, df: pd.DataFrame, axes: tuple[str, ...]) -> OpTable:
        """Build from profile rows: duplicates averaged, missing 2-D cells filled linearly.

        Args:
            df: Rows of one operator (``profiles.py`` schema).
            axes: The one or two shape columns to tabulate over.
        """
        g = df.groupby(list(axes), sort=True)["time_median_s"].mean()
        monotone = not keeps_measured_shape(df)
        if len(axes) == 1:
            x = g.index.to_numpy(dtype=np.float64)
            return cls((x,), g.to_numpy(dtype=np.float64), monotone=monotone)
        grid = g.unstack(axes[1]).sort_index().sort_index(axis=1)
        v = grid.to_numpy(dtype=np.float64)
        x0 = grid.index.to_numpy(dtype=np.float64)
        x1 = grid.columns.to_numpy(dtype=np.float64)
        if np.isnan(v).any():  # e.g. a batch x context cap on the profiled grid
            v = _fill_linear(_fill_linear(v, x1, axis=1), x0, axis=0)
        return cls((x0, x1), v, monotone=monotone)

    def at(self, n: int) -> float:
        """Value of a 1-D table at integer ``n`` (0 for ``n <= 0``: the op does not run)."""
        if n <= 0:
            return 0.0
        top = len(self._dense) - 1
        if n <= top:
            return float(self._dense[n])
        return float(self._dense[top] + self._slope * (n - top))

    def at2(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Values of a 2-D table at points ``(x[i], y[i])``, shape ``[n]`` (bilinear)."""
        tx, ix = _coords(self.axes[0], x)
        ty, iy = _coords(self.axes[1], y)
        v = self.values

        def bil(ax: FloatArray, ay: FloatArray) -> FloatArray:
            lo = v[ix, iy] * (1 - ay) + v[ix, iy + 1] * ay if v.shape[1] > 1 else v[ix, 0]
            if v.shape[0] == 1:
                return np.asarray(lo, dtype=np.float64)
            hi = (
                v[ix + 1, iy] * (1 - ay) + v[ix + 1, iy + 1] * ay
                if v.shape[1] > 1
                else v[ix + 1, 0]
            )
            return np.asarray(lo * (1 - ax) + hi * ax, dtype=np.float64)

        inside = bil(np.minimum(tx, 1.0), np.minimum(ty, 1.0))
        # extrapolation beyond the grid: linear on the last cell, never below the edge value
        return np.maximum(inside, bil(tx, ty))


def keeps_measured_shape(df: pd.DataFrame) -> bool:
    """Whether a table of these rows keeps its measured values rather than a running maximum.

    Profiles measured by ``edgetwin kernels profile`` (cache-cold medians of the very kernels a
    framework runs) keep their shape, kernel switches included: oneDNN runs SmolLM-135M's
    gate/up GEMM slower at 2-3 rows than at 4 (1.38 vs 0.94 ms, cold, one thread), and so does
    a real forward pass. Imported public tables are clipped to be monotone (noise removal).
    """
    if not len(df) or "source" not in df.columns:  # derived tables (mixed attention)
        return False
    return bool((df["source"] == KERNELS_SOURCE).all())


def _coords(axis: FloatArray, q: FloatArray) -> tuple[FloatArray, IntArray]:
    """Cell index ``[n]`` and position ``t >= 0`` in the cell (``> 1`` beyond the last point)."""
    if len(axis) == 1:
        return np.zeros(len(q)), np.zeros(len(q), dtype=np.int64)
    i = np.clip(np.searchsorted(axis, q, side="right") - 1, 0, len(axis) - 2).astype(np.int64)
    t = np.maximum(0.0, (q - axis[i]) / (axis[i + 1] - axis[i]))
    return t, i


def _fill_linear(v: FloatArray, x: FloatArray, *, axis: int) -> FloatArray:
    """Fill NaNs along ``axis`` by linear inter/extrapolation from the finite points."""
    out = np.moveaxis(v.copy(), axis, -1)
    for row in out.reshape(-1, out.shape[-1]) if out.ndim == 2 else [out]:
        ok = np.isfinite(row)
        if ok.sum() == 0 or ok.all():
            continue
        xs, ys = x[ok], row[ok]
        filled = np.interp(x, xs, ys)
        if ok.sum() > 1:
            slope = max(0.0, (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]))
            filled = np.where(x > xs[-1], ys[-1] + slope * (x - xs[-1]), filled)
        row[~ok] = filled[~ok]
    return np.moveaxis(out, -1, axis)


class TableCostModel:
    """Cost model from per-operator profile tables (implements ``CostModel``).

    Args:
        tables: Operator -> table; needs the four ``linear_*`` GEMMs, and ``attn_prefill``,
            ``attn_decode`` and ``lm_head`` unless ``fallback`` is given. ``elementwise``
            (elementwise remainder of the whole model over ``n_tokens``) is optional.
        n_layers: Decoder layers L (per-layer operators are multiplied by it).
        overhead_s: Fixed seconds added to every non-empty iteration.
        fallback: Roofline model for the attention / LM head when the tables lack them
            (Vidur's ``mlp.csv`` has GEMMs only); its ``attention`` and ``lm_head`` terms are used.
        framework: Per-layer framework overhead (``framework_overhead.py``), or None (0).
        name: Free-form description (hardware/model/source).

    Raises:
        ValueError: Missing operators, ``n_layers < 1`` or ``overhead_s < 0``.
    """

    def __init__(
        self,
        tables: Mapping[str, OpTable],
        *,
        n_layers: int,
        overhead_s: float = DEFAULT_OVERHEAD_S,
        fallback: RooflineCostModel | None = None,
        framework: FrameworkOverhead | None = None,
        name: str = "",
    ) -> None:
        need = list(LAYER_GEMMS) + ([] if fallback else [*ATTENTION_OPS, "lm_head"])
        missing = [op for op in need if op not in tables]
        if missing:
            raise ValueError(f"TableCostModel {name!r}: missing operator tables {missing}")
        if fallback is None or all(op in tables for op in ATTENTION_OPS):
            pass
        elif any(op in tables for op in ATTENTION_OPS):
            raise ValueError("give both attn_prefill and attn_decode tables, or neither")
        if n_layers < 1 or overhead_s < 0:
            raise ValueError(
                f"need n_layers >= 1 and overhead_s >= 0, got {n_layers}, {overhead_s}"
            )
        for op, t in tables.items():
            if op not in TABLE_AXES or len(t.axes) != len(TABLE_AXES[op]):
                raise ValueError(f"table {op!r}: expected axes {TABLE_AXES.get(op)}")
        self.tables: dict[str, OpTable] = dict(tables)
        self.n_layers = int(n_layers)
        self.overhead_s = float(overhead_s)
        self.fallback = fallback
        self.framework = framework
        self.name = name

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_profiles(
        cls,
        profile: pd.DataFrame,
        *,
        n_layers: int,
        overhead_s: float = DEFAULT_OVERHEAD_S,
        fallback: RooflineCostModel | None = None,
        name: str = "",
    ) -> TableCostModel:
        """Build from profile rows (any number of operators, ``profiles.py`` schema).

        ``decoder_layer`` rows (whole layers timed as a framework runs them) become the
        per-layer framework overhead, fitted against this model's own layer operator sum
        (:meth:`layer_ops_s`). Other operators outside :data:`TABLE_AXES` (LoRA, KV
        quantization, adapter load) are ignored.
        """
        tables = {
            str(op): OpTable.from_rows(sub, TABLE_AXES[str(op)])
            for op, sub in profile.groupby("op", sort=True)
            if str(op) in TABLE_AXES
        }
        model = cls(tables, n_layers=n_layers, overhead_s=overhead_s, fallback=fallback, name=name)
        model.fit_framework(profile)
        return model

    def fit_framework(self, profile: pd.DataFrame) -> None:
        """Fit :attr:`framework` on the ``decoder_layer`` (and ``decoder_pass``) rows.

        The per-layer term against :meth:`layer_ops_s`, then the per-pass term against
        :meth:`one_layer_pass_s`; nothing without ``decoder_layer`` rows.
        """
        layers = profile[profile["op"] == LAYER_OP]
        if not len(layers):
            return
        self.framework = fit_framework_overhead(layers, self.layer_ops_s)
        passes = profile[profile["op"] == PASS_OP]
        if len(passes):
            coef, med, mx = fit_pass_overhead(passes, self.one_layer_pass_s)
            self.framework = dataclasses.replace(
                self.framework,
                pass_coef=coef,
                pass_median_rel_error=med,
                pass_max_rel_error=mx,
                n_pass_rows=len(passes),
            )

    @classmethod
    def from_profile_dir(
        cls, folder: str | Path, *, overhead_s: float = DEFAULT_OVERHEAD_S
    ) -> TableCostModel:
        """Build from a ``<device>/<model>`` folder of ``<op>.csv`` files and ``meta.json``.

        ``n_layers`` is read from ``meta.json`` (``model.n_layers``, as ``kernels/`` writes it).
        """
        f = Path(folder)
        n_layers = _meta_n_layers(f / "meta.json")
        frames = [
            read_profile(p)
            for p in sorted(f.glob("*.csv"))
            if p.stem in TABLE_AXES or p.stem in (LAYER_OP, PASS_OP)
        ]
        if not frames:
            raise FileNotFoundError(f"no operator CSVs of {sorted(TABLE_AXES)} in {str(f)!r}")
        return cls.from_profiles(
            pd.concat(frames, ignore_index=True),
            n_layers=n_layers,
            overhead_s=overhead_s,
            name=str(f),
        )

    def to_npz(self, path: str | Path, *, meta: Mapping[str, Any] | None = None) -> Path:
        """Write the tables as ``<op>__axis0``, ``<op>__axis1``, ``<op>__values`` arrays.

        The fallback roofline is not stored (only table-complete models round-trip).
        """
        if self.fallback is not None:
            raise ValueError("a model with a roofline fallback cannot be written to .npz")
        arrays: dict[str, Any] = {"n_layers": np.int64(self.n_layers)}
        arrays["meta_json"] = np.array(json.dumps(dict(meta or {}), sort_keys=True))
        if self.framework is not None:
            arrays["framework__coef"] = np.asarray(self.framework.coef, dtype=np.float64)
            arrays["framework__knots"] = np.asarray(self.framework.knots, dtype=np.float64)
            arrays["framework__pass_coef"] = np.asarray(self.framework.pass_coef, np.float64)
        for op, t in self.tables.items():
            for i, a in enumerate(t.axes):
                arrays[f"{op}__axis{i}"] = a
            arrays[f"{op}__values"] = t.values
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
        return p

    @classmethod
    def from_npz(
        cls, path: str | Path, *, overhead_s: float = DEFAULT_OVERHEAD_S
    ) -> TableCostModel:
        """Load tables written by :meth:`to_npz` (or ``kernels/tables.py``)."""
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                tables: dict[str, OpTable] = {}
                for op in TABLE_AXES:
                    if f"{op}__values" in z:
                        axes = tuple(z[f"{op}__axis{i}"] for i in range(2) if f"{op}__axis{i}" in z)
                        tables[op] = OpTable(axes, z[f"{op}__values"])
                n_layers = int(z["n_layers"])
                framework = None
                if "framework__coef" in z:
                    d0, d_seq, d_tok = (float(v) for v in z["framework__pass_coef"])
                    framework = FrameworkOverhead(
                        coef=tuple(float(v) for v in z["framework__coef"]),
                        knots=tuple(float(v) for v in z["framework__knots"]),
                        pass_coef=(d0, d_seq, d_tok),
                    )
        except (ValueError, KeyError, EOFError, OSError, zipfile.BadZipFile) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            reason = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            if "pickle" in reason:  # numpy's advice to load it unsafely: never give that
                reason = "not an .npz archive of arrays"
            raise ValueError(
                f"cost-model table {str(path)!r} is not readable ({reason}); rebuild it with "
                "kernels/tables.py or remove it to use the profile CSVs"
            ) from None
        return cls(
            tables, n_layers=n_layers, overhead_s=overhead_s, framework=framework, name=str(path)
        )

    # ------------------------------------------------------------------ CostModel
    def op_time_s(self, op: str, *shape: FloatArray) -> FloatArray:
        """One operator's table at profile shapes (one layer), shape ``[n]``.

        Args:
            op: Operator name (a key of ``self.tables``).
            shape: One integer array per axis of :data:`TABLE_AXES` ``[op]``, each ``[n]``.
        """
        t = self.tables[op]
        if len(shape) == 2:
            return t.at2(np.asarray(shape[0], np.float64), np.asarray(shape[1], np.float64))
        return np.array([t.at(int(n)) for n in shape[0]], dtype=np.float64)

    def breakdown_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> dict[str, float]:
        """Seconds per operator over the whole model; they sum to :meth:`iteration_time_s`.

        Keys: ``linear_qkv, linear_o, linear_gate_up, linear_down``, then ``attn_prefill`` and
        ``attn_decode`` (or ``attention`` from a roofline fallback), ``lm_head``, ``other``
        (norms, RoPE, activations, residual adds, embedding: :meth:`_elementwise_s`),
        ``sampler``, ``framework`` (per-layer framework overhead × L), ``framework_pass`` (the
        framework's once-per-pass overhead) and ``overhead``.
        """
        n_dec = len(decode_context)
        n_seq = len(prefill_tokens) + n_dec
        n_tok = int(prefill_tokens.sum()) + n_dec
        L = self.n_layers
        out = {op: L * self.tables[op].at(n_tok) for op in LAYER_GEMMS}
        fb = (
            self.fallback.breakdown_s(prefill_tokens, prefill_context, decode_context)
            if self.fallback is not None
            else {}
        )
        if "attn_prefill" in self.tables:
            pre, dec = self._attention_s(prefill_tokens, prefill_context, decode_context)
            out["attn_prefill"] = L * pre
            out["attn_decode"] = L * dec
        else:
            out["attention"] = fb["attention"]
        out["lm_head"] = (
            self.tables["lm_head"].at(n_seq) if "lm_head" in self.tables else (fb["lm_head"])
        )
        per_layer, per_pass = self._elementwise_s(n_tok)
        out["other"] = L * per_layer + per_pass if n_seq else 0.0
        out["sampler"] = self.tables["sampler"].at(n_seq) if "sampler" in self.tables else 0.0
        out["framework"] = out["framework_pass"] = 0.0
        if self.framework is not None and n_seq:
            kv = kv_tokens(prefill_tokens, prefill_context, decode_context)
            out["framework"] = L * self.framework.seconds(n_tok, kv)
            out["framework_pass"] = self.framework.pass_seconds(n_seq, n_tok)
        out["overhead"] = self.overhead_s if n_seq else 0.0
        return out

    def _attention_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> tuple[float, float]:
        """One layer's (prefill, decode) attention seconds from the tables."""
        pre = 0.0
        if len(prefill_tokens):
            pre = float(
                self.tables["attn_prefill"]
                .at2(prefill_tokens.astype(np.float64), prefill_context.astype(np.float64))
                .sum()
            )
        dec = 0.0
        if len(decode_context):
            mixed = len(prefill_tokens) > 0 and "attn_decode_mixed" in self.tables
            table = self.tables["attn_decode_mixed" if mixed else "attn_decode"]
            mean_ctx = np.array([float(decode_context.mean())])
            dec = float(table.at2(np.array([float(len(decode_context))]), mean_ctx)[0])
        return pre, dec

    def _elementwise_s(self, n_tok: int) -> tuple[float, float]:
        """Norms, RoPE, activations, residual adds and embedding over ``n_tok`` tokens.

        Returns ``(seconds per layer, seconds once per pass)``.

        An imported whole-model ``elementwise`` table when present (all of it per pass); else
        the operators profiled one call at a time, times their calls
        (:data:`ELEMENTWISE_CALLS`); 0 without either.
        """
        if "elementwise" in self.tables:
            return 0.0, self.tables["elementwise"].at(n_tok)
        per_layer = per_pass = 0.0
        for op, (n_layer_calls, n_pass_calls) in ELEMENTWISE_CALLS.items():
            if op in self.tables:
                t = self.tables[op].at(n_tok)
                per_layer += n_layer_calls * t
                per_pass += n_pass_calls * t
        return per_layer, per_pass

    def one_layer_pass_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> float:
        """A one-layer model pass without the per-pass framework overhead.

        The layer's operators and fitted framework overhead, plus embedding, final RMSNorm, LM
        head and sampler; arguments as :meth:`iteration_time_s`.
        """
        n_seq = len(prefill_tokens) + len(decode_context)
        n_tok = int(prefill_tokens.sum()) + len(decode_context)
        layer = self.layer_ops_s(prefill_tokens, prefill_context, decode_context)
        if self.framework is not None:
            kv = kv_tokens(prefill_tokens, prefill_context, decode_context)
            layer += self.framework.seconds(n_tok, kv)
        per_pass = self._elementwise_s(n_tok)[1]
        head = self.tables["lm_head"].at(n_seq) if "lm_head" in self.tables else 0.0
        sampler = self.tables["sampler"].at(n_seq) if "sampler" in self.tables else 0.0
        return layer + per_pass + head + sampler

    def layer_ops_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> float:
        """One decoder layer's operator sum (no framework term).

        GEMMs, attention and the per-layer elementwise operators; arguments as
        :meth:`iteration_time_s`.

        Raises:
            ValueError: The model takes its attention from a roofline fallback.
        """
        if "attn_prefill" not in self.tables:
            raise ValueError(f"{self.name!r}: a layer's operator sum needs attention tables")
        n_tok = int(prefill_tokens.sum()) + len(decode_context)
        gemms = sum(self.tables[op].at(n_tok) for op in LAYER_GEMMS)
        pre, dec = self._attention_s(prefill_tokens, prefill_context, decode_context)
        return gemms + pre + dec + self._elementwise_s(n_tok)[0]

    def iteration_time_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> float:
        """Sum of :meth:`breakdown_s`."""
        return sum(self.breakdown_s(prefill_tokens, prefill_context, decode_context).values())


def _meta_n_layers(path: Path) -> int:
    """``model.n_layers`` of a profile folder's ``meta.json`` (as ``kernels/`` writes it).

    Raises:
        ValueError: One line naming the file: unreadable, not JSON, or no integer
            ``model.n_layers`` >= 1.
    """
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else " ".join(str(exc).split())
        raise ValueError(
            f"profile metadata {str(path)!r} is not readable JSON ({reason})"
        ) from None
    model = meta.get("model") if isinstance(meta, dict) else None
    n_layers = model.get("n_layers") if isinstance(model, dict) else None
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(
            f"profile metadata {str(path)!r}: model.n_layers must be an integer >= 1, got "
            f"{n_layers!r} (kernels/ writes it in meta.json)"
        )
    return n_layers


def mixed_decode_table(mixed: pd.DataFrame, prefill: OpTable) -> OpTable:
    """Decode attention's marginal time in mixed prefill+decode batches, per (batch, KV length).

    vLLM runs a mixed batch's attention as one kernel, and LLMServingSim's mixed rows are much
    slower than the prefill-only plus decode-only kernels (by 30 % at the median, up to 4x for
    128 long decodes). The additive model ``t = attn_prefill(c, p) + D(b, l)`` is fitted by
    taking ``D(b, l)`` as the median over the (c, p) grid of ``t - attn_prefill(c, p)``,
    clipped at 0.

    Args:
        mixed: Columns ``prefill_chunk, kv_prefill, n_decode, kv_decode, time_s``
            (``importers.llmservingsim_mixed_attention``).
        prefill: The ``attn_prefill`` table of the same profile.
    """
    res = mixed["time_s"].to_numpy() - prefill.at2(
        mixed["prefill_chunk"].to_numpy(dtype=np.float64),
        mixed["kv_prefill"].to_numpy(dtype=np.float64),
    )
    df = pd.DataFrame(
        {
            "batch_size": mixed["n_decode"].to_numpy(),
            "context_len": mixed["kv_decode"].to_numpy(),
            "time_median_s": np.maximum(res, 0.0),
        }
    )
    med = df.groupby(["batch_size", "context_len"], as_index=False).median()
    return OpTable.from_rows(med, TABLE_AXES["attn_decode_mixed"])


# ---------------------------------------------------------------------- public profiles
def llmservingsim_cost_model(
    folder: str | Path,
    *,
    model: str,
    hardware: str,
    dtype: str = "bfloat16",
    overhead_s: float = DEFAULT_OVERHEAD_S,
) -> TableCostModel:
    """The table model of an LLMServingSim ``<dtype>`` (or ``tp1``) folder of any GPU.

    Operators as :func:`~edgetwin.sim.compute.importers.import_llmservingsim` maps them, plus
    ``attn_decode_mixed`` from the mixed prefill+decode attention rows
    (:func:`mixed_decode_table`).
    """
    base = TableCostModel.from_profiles(
        import_llmservingsim(folder, model=model, device=hardware, dtype=dtype),
        n_layers=model_dims(model).layers,
    )
    mixed = llmservingsim_mixed_attention(folder)
    tables = base.tables | {
        "attn_decode_mixed": mixed_decode_table(mixed, base.tables["attn_prefill"])
    }
    return TableCostModel(
        tables,
        n_layers=base.n_layers,
        overhead_s=overhead_s,
        name=f"{hardware}/{model} (LLMServingSim, {dtype})",
    )


#: Roofline peak numbers (dense FLOP/s, memory bytes/s) for the attention and LM head that a
#: Vidur ``mlp.csv`` lacks, by hardware id: only the A100 (``A100_PEAK_FLOPS``) so far.
VIDUR_ROOFLINE: Final[dict[str, tuple[float, float]]] = {
    "a100": (A100_PEAK_FLOPS, A100_BANDWIDTH_BYTES_PER_S),
}


def vidur_cost_model(
    path: str | Path, *, model: str, hardware: str, overhead_s: float = DEFAULT_OVERHEAD_S
) -> TableCostModel:
    """The table model of a Vidur ``mlp.csv`` (or its folder), roofline LM head.

    Attention comes from the ``attention.csv`` next to ``mlp.csv`` where there is one
    (:func:`~edgetwin.sim.compute.importers.import_vidur_attention`), else from the roofline.

    Raises:
        ValueError: No roofline peak numbers for ``hardware`` (:data:`VIDUR_ROOFLINE`).
    """
    if hardware not in VIDUR_ROOFLINE:
        raise ValueError(
            f"Vidur profiles of {hardware}/{model}: mlp.csv has no attention or LM head, and "
            f"their roofline needs peak numbers, known for: {', '.join(sorted(VIDUR_ROOFLINE))}"
        )
    dims = model_dims(model)
    roof = RooflineCostModel(dims, *VIDUR_ROOFLINE[hardware])
    rows = [import_vidur_mlp(path, model=model, device=hardware)]
    attention = (Path(path) if Path(path).is_dir() else Path(path).parent) / "attention.csv"
    if attention.is_file():
        rows.append(import_vidur_attention(attention, model=model, device=hardware))
    return TableCostModel.from_profiles(
        pd.concat(rows, ignore_index=True),
        n_layers=dims.layers,
        overhead_s=overhead_s,
        fallback=roof,
        name=f"{hardware}/{model} (Vidur, {hardware} roofline for what it lacks)",
    )


def _public_llmservingsim(overhead_s: float) -> TableCostModel:
    return llmservingsim_cost_model(
        LLMSERVINGSIM_RTX4090_LLAMA31_8B,
        model="llama-3.1-8b",
        hardware="rtx4090",
        overhead_s=overhead_s,
    )


#: (hardware, model) -> builder of the shipped public cost models.
PUBLIC_MODELS: Final[dict[tuple[str, str], Any]] = {
    ("rtx4090", "llama-3.1-8b"): _public_llmservingsim,
    ("a100", "llama-2-7b"): lambda o: vidur_cost_model(
        VIDUR_A100_MLP["llama-2-7b"], model="llama-2-7b", hardware="a100", overhead_s=o
    ),
    ("a100", "llama-3-8b"): lambda o: vidur_cost_model(
        VIDUR_A100_MLP["llama-3-8b"], model="llama-3-8b", hardware="a100", overhead_s=o
    ),
}


def available_models(profiles: str | Path | None = None) -> list[tuple[str, str]]:
    """(hardware, model) pairs :func:`load_cost_model` can build, sorted.

    Args:
        profiles: A profile folder of any format (``profile_formats.py``); None: the shipped
            public profiles.
    """
    if profiles is None:
        return sorted(PUBLIC_MODELS)
    root = Path(profiles)
    if not root.is_dir():
        return []
    return sorted({(s.hardware, s.model) for s in detect_profiles(root)})


def load_cost_model(
    profiles: str | Path | None,
    *,
    model: str,
    hardware: str,
    overhead_s: float = DEFAULT_OVERHEAD_S,
) -> CostModel:
    """Find and build the table cost model of ``(hardware, model)``.

    With ``profiles``, only that folder is used, in any format ``profile_formats.py``
    detects (EdgeTwin tree, LLMServingSim, Vidur; public imports cached by content hash, see
    ``profile_loader.py``); a folder without the pair is an error, never a silent fallback.
    Without, the shipped public profiles (``rtx4090/llama-3.1-8b``: LLMServingSim;
    ``a100/llama-2-7b``, ``a100/llama-3-8b``: Vidur).

    Args:
        profiles: A profile folder (e.g. ``kernels/profiles``), or None for the public ones.
        model: Model id, e.g. ``"llama-3.1-8b"``, ``"smollm-135m"``.
        hardware: Device name, e.g. ``"rtx4090"``, ``"a100"``, ``"cpu"``.
        overhead_s: Fixed per-iteration seconds added to the kernel times.

    Raises:
        ValueError: No profiles for the pair: one line saying what is there and what was
            expected (with ``profiles``) or listing the public pairs (without).
        FileNotFoundError: ``profiles`` is not a directory.
    """
    if profiles is not None:
        # imported here: profile_loader builds on this module's TableCostModel
        from edgetwin.sim.compute.profile_loader import load_profile_folder

        cost, _ = load_profile_folder(
            profiles, model=model, hardware=hardware, overhead_s=overhead_s
        )
        return cost
    builder = PUBLIC_MODELS.get((hardware, model))
    if builder is None:
        pairs = ", ".join(f"{h}/{m}" for h, m in available_models(None))
        raise ValueError(
            f"no public cost-model profiles for hardware={hardware!r}, model={model!r}; "
            f"available: {pairs} (or give a profile folder)"
        )
    model_: TableCostModel = builder(overhead_s)
    return model_


__all__ = [
    "DEFAULT_OVERHEAD_S",
    "OPS",
    "TABLE_AXES",
    "TABLE_FILE",
    "OpTable",
    "TableCostModel",
    "available_models",
    "llmservingsim_cost_model",
    "load_cost_model",
    "vidur_cost_model",
]
