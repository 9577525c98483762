"""One least-squares latency predictor per operator, with k-fold error and JSON coefficients.

The predictor of an operator is linear in a few features of its row (a constant, FLOPs, bytes
moved, tokens, ...): ``t = sum_j c_j f_j``, the roofline-style additive model of Vidur (Agrawal
et al. 2024) with a fixed launch/overhead term. Coefficients minimize the squared *relative*
error (rows weighted by ``1 / t``), since times span orders of magnitude. Fits are cached in
``fit.json`` next to the CSVs under a SHA-256 of the data and the feature configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from edgetwin.sim.compute.framework_overhead import FEATURES as OVERHEAD_FEATURES
from edgetwin.sim.compute.framework_overhead import PASS_FEATURES
from edgetwin.sim.compute.profiles import read_profile
from edgetwin.sim.compute.table_cost import TABLE_AXES, TableCostModel

#: Operator -> features. ``"1"`` is the constant term, a plain name is a profile column,
#: ``"flops_packed"`` is ``flops`` on rows with sub-byte codes (bits < 8: packing work), and
#: ``"hinge:<col>"`` expands at fit time into ``max(0, col - knot)`` terms at knots taken from
#: the data (piecewise-linear in ``col``; the concrete knots are written to the JSON).
FEATURES: Final[dict[str, tuple[str, ...]]] = {
    "linear_qkv": ("1", "flops", "hinge:flops"),
    "linear_o": ("1", "flops", "hinge:flops"),
    "linear_gate_up": ("1", "flops", "hinge:flops"),
    "linear_down": ("1", "flops", "hinge:flops"),
    "lm_head": ("1", "flops", "hinge:flops"),
    "attn_prefill": ("1", "n_tokens", "flops", "bytes_moved"),
    "attn_decode": ("1", "batch_size", "bytes_moved", "hinge:bytes_moved"),
    "lora_shrink": ("1", "batch_size", "flops", "bytes_moved", "hinge:flops"),
    "lora_expand": ("1", "batch_size", "flops", "bytes_moved"),
    "kv_quantize": ("1", "flops", "flops_packed", "hinge:flops"),
    "kv_dequantize": ("1", "flops", "flops_packed", "hinge:flops"),
    "adapter_load": ("1", "n_bytes"),
    "rmsnorm": ("1", "bytes_moved", "hinge:bytes_moved"),
    "rope": ("1", "bytes_moved", "hinge:bytes_moved"),
    "silu_mul": ("1", "bytes_moved", "hinge:bytes_moved"),
    "residual_add": ("1", "bytes_moved", "hinge:bytes_moved"),
    "embedding": ("1", "bytes_moved"),  # µs-scale and noisy: a line keeps it monotone
    "sampler": ("1", "bytes_moved", "hinge:bytes_moved"),
    "iteration": ("1", "n_tokens", "batch_size", "context_len"),
    # whole layers / passes: a summary of each table (the cost model uses the framework fit)
    "decoder_layer": ("1", "flops", "bytes_moved"),
    "decoder_pass": ("1", "n_tokens", "flops", "bytes_moved"),
}
#: Quantiles of a column's distinct values where ``hinge:<col>`` puts its knots.
HINGE_QUANTILES: Final[tuple[float, ...]] = (1 / 3, 2 / 3)

#: Operator -> shape axes along which latency must not decrease (physics: more work): the
#: axes a table cost model tabulates an operator over, plus those of the other operators.
MONOTONE_AXES: Final[dict[str, tuple[str, ...]]] = {
    **{op: axes for op, axes in TABLE_AXES.items() if op in FEATURES},
    "lora_shrink": ("n_tokens", "rank"),
    "lora_expand": ("n_tokens", "rank"),
    "kv_quantize": ("context_len",),
    "kv_dequantize": ("context_len",),
    "adapter_load": ("n_bytes",),
    "iteration": ("n_tokens",),
    "decoder_layer": ("n_tokens", "context_len"),
    "decoder_pass": ("n_tokens", "context_len"),
}

SHAPE_COLUMNS: Final[tuple[str, ...]] = (
    "n_tokens",
    "batch_size",
    "context_len",
    "rank",
    "bits",
    "n_bytes",
    "tp",
)
K_FOLDS = 5
FIT_FILE = "fit.json"
FIT_VERSION = 3  # 2: the framework overhead; 3: decoder_layer's features


def expand_features(df: pd.DataFrame, features: Sequence[str]) -> list[str]:
    """Replace each ``hinge:<col>`` by concrete ``hinge:<col>:<knot>`` features from ``df``."""
    out: list[str] = []
    for f in features:
        if f.startswith("hinge:") and f.count(":") == 1:
            col = f.split(":", 1)[1]
            values = np.unique(df[col].to_numpy(dtype=np.float64))
            knots = {float(values[int(q * (len(values) - 1))]) for q in HINGE_QUANTILES}
            out.extend(f"hinge:{col}:{k!r}" for k in sorted(knots) if k > values[0])
        else:
            out.append(f)
    return out


def _feature(df: pd.DataFrame, name: str) -> np.ndarray:
    if name == "1":
        return np.ones(len(df))
    if name == "flops_packed":
        return df["flops"].to_numpy(dtype=np.float64) * (df["bits"].to_numpy() < 8)
    if name.startswith("hinge:"):
        _, col, knot = name.split(":")
        return np.maximum(0.0, df[col].to_numpy(dtype=np.float64) - float(knot))
    return df[name].to_numpy(dtype=np.float64)


def design_matrix(df: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """Feature matrix of a profile table, shape ``[n_rows, n_features]`` (float64).

    Args:
        df: Profile rows.
        features: Concrete feature names (see ``FEATURES``; hinges with their knots).
    """
    return np.column_stack([_feature(df, f) for f in features])


def _solve(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative-error least squares: minimize ``sum ((X c - y) / y)^2``; returns (coef, scale).

    Columns are scaled to unit max first (FLOPs ~1e9 next to a constant 1) for conditioning.
    """
    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale / y[:, None]
    coef_s, *_ = np.linalg.lstsq(Xs, np.ones_like(y), rcond=None)
    return coef_s / scale, scale


def fit_table(df: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """Fit the coefficients of concrete ``features`` to ``df.time_median_s``; ``[n_features]``."""
    X = design_matrix(df, features)
    y = df["time_median_s"].to_numpy(dtype=np.float64)
    coef, _ = _solve(X, y)
    return coef


def predict(
    df: pd.DataFrame, features: Sequence[str], coef: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Predicted time (s) of each row of ``df``, shape ``[n_rows]``."""
    return design_matrix(df, features) @ np.asarray(coef, dtype=np.float64)


def kfold_relative_errors(
    df: pd.DataFrame, features: Sequence[str], k: int = K_FOLDS, seed: int = 0
) -> np.ndarray:
    """Held-out ``|pred - t| / t`` of every row under k-fold cross-validation, ``[n_rows]``.

    Folds are a seeded shuffle; with fewer rows than ``k`` it is leave-one-out.
    """
    n = len(df)
    k = min(k, n)
    order = np.random.default_rng(seed).permutation(n)
    errors = np.empty(n)
    for fold in np.array_split(order, k):
        train = df.iloc[np.setdiff1d(order, fold)]
        feats = expand_features(train, features)  # knots from the training rows only
        coef = fit_table(train, feats)
        y = df["time_median_s"].to_numpy()[fold]
        errors[fold] = np.abs(predict(df.iloc[fold], feats, coef) - y) / y
    return errors


def check_monotone(
    df: pd.DataFrame,
    features: Sequence[str],
    coef: Sequence[float] | np.ndarray,
    axes: Sequence[str],
) -> dict[str, bool]:
    """Whether predictions never decrease along each axis, the other shape columns fixed."""
    pred = pd.Series(predict(df, features, coef), index=df.index)
    out: dict[str, bool] = {}
    for axis in axes:
        others = [c for c in SHAPE_COLUMNS if c != axis]
        ok = True
        for _, group in df.groupby(others, sort=False):
            if len(group) < 2:
                continue
            p = pred.loc[group.sort_values(axis).index].to_numpy()
            ok &= bool(np.all(np.diff(p) >= -1e-12 * np.abs(p[1:])))
        out[axis] = ok
    return out


def fit_op(df: pd.DataFrame, op: str) -> dict[str, Any]:
    """Fit one operator's table and evaluate it; a JSON-serializable summary."""
    features = expand_features(df, FEATURES[op])
    coef = fit_table(df, features)
    entry: dict[str, Any] = {
        "features": list(features),
        "coef": [float(c) for c in coef],
        "n_rows": len(df),
    }
    if len(df) > len(features):
        err = kfold_relative_errors(df, FEATURES[op])
        entry["cv_median_rel_err"] = float(np.median(err))
        entry["cv_p90_rel_err"] = float(np.percentile(err, 90))
    else:  # too few rows to hold any out
        entry["cv_median_rel_err"] = None
        entry["cv_p90_rel_err"] = None
    entry["monotone"] = check_monotone(df, features, coef, MONOTONE_AXES[op])
    return entry


def _data_hash(csvs: Sequence[Path]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": FIT_VERSION, "features": FEATURES, "k": K_FOLDS}).encode())
    for p in csvs:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def fit(profile_dir: str | Path, *, write: bool = True) -> dict[str, Any]:
    """Fit every ``<op>.csv`` in ``profile_dir`` (one ``<device>/<model>`` folder).

    Args:
        profile_dir: Folder holding the operator CSVs.
        write: Write ``fit.json`` there (reused while the data hash is unchanged).

    Returns:
        ``{"data_sha256": ..., "ops": {op: {features, coef, n_rows, cv_median_rel_err,
        cv_p90_rel_err, monotone}}}``, and with ``decoder_layer`` rows ``"framework":
        {features, coef, n_rows, median_rel_err, max_rel_err}``: the per-layer framework
        overhead fitted against the operator tables (``sim/compute/framework_overhead.py``;
        its errors are those of ``operators + overhead`` against each measured layer, in-sample).

    Raises:
        FileNotFoundError: The folder has no operator CSVs.
    """
    folder = Path(profile_dir)
    csvs = sorted(p for p in folder.glob("*.csv") if p.stem in FEATURES)
    if not csvs:
        raise FileNotFoundError(f"no operator CSVs in {str(folder)!r}")
    digest = _data_hash(csvs)
    cache = folder / FIT_FILE
    if cache.is_file():
        try:
            cached = json.loads(cache.read_text())
        except json.JSONDecodeError:
            cached = None
        if isinstance(cached, dict) and cached.get("data_sha256") == digest:
            return cached
    ops: dict[str, Any] = {}
    for p in csvs:
        df = read_profile(p)
        for op, sub in df.groupby("op", sort=True):
            ops[str(op)] = fit_op(sub.reset_index(drop=True), str(op))
    result: dict[str, Any] = {"data_sha256": digest, "fit_version": FIT_VERSION, "ops": ops}
    if "decoder_layer" in ops and (folder / "meta.json").is_file():
        fw = TableCostModel.from_profile_dir(folder).framework
        if fw is not None:
            result["framework"] = {
                "features": [*OVERHEAD_FEATURES, *(f"hinge:kv_tokens@{k:g}" for k in fw.knots)],
                "coef": list(fw.coef),
                "n_rows": fw.n_rows,
                "median_rel_err": fw.median_rel_error,
                "max_rel_err": fw.max_rel_error,
                "pass_features": list(PASS_FEATURES),
                "pass_coef": list(fw.pass_coef),
                "n_pass_rows": fw.n_pass_rows,
                "pass_median_rel_err": fw.pass_median_rel_error if fw.n_pass_rows else None,
                "pass_max_rel_err": fw.pass_max_rel_error if fw.n_pass_rows else None,
            }
    if write:
        part = cache.with_name(cache.name + ".part")  # a kill never leaves half a fit.json
        part.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        os.replace(part, cache)
    return result


def error_table(result: Mapping[str, Any]) -> str:
    """Markdown table of the per-operator k-fold errors and monotonicity of a fit result."""
    lines = [
        "| op | rows | median rel. err | p90 rel. err | monotone |",
        "|---|---:|---:|---:|---|",
    ]
    for op, e in sorted(result["ops"].items()):
        med, p90 = e["cv_median_rel_err"], e["cv_p90_rel_err"]
        mono = ", ".join(f"{a}: {'yes' if ok else 'NO'}" for a, ok in e["monotone"].items())
        fmt = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        lines.append(f"| {op} | {e['n_rows']} | {fmt(med)} | {fmt(p90)} | {mono} |")
    fw = result.get("framework")
    if fw:
        pairs = [(f, c) for f, c in zip(fw["features"], fw["coef"], strict=True) if c > 0]
        terms = " + ".join(f"{c:.3g}" + ("" if f == "1" else f"·{f}") for f, c in pairs) or "0"
        lines.append(
            f"\nframework overhead per layer: {terms} s; layers within "
            f"{100 * fw['median_rel_err']:.1f}% (median), {100 * fw['max_rel_err']:.1f}% (max) "
            f"of {fw['n_rows']} measured"
        )
        if fw.get("n_pass_rows"):
            pass_pairs = zip(fw["pass_features"], fw["pass_coef"], strict=True)
            terms = " + ".join(
                f"{c:.3g}" + ("" if f == "1" else f"·{f}") for f, c in pass_pairs if c > 0
            )
            lines.append(
                f"framework overhead per pass: {terms or '0'} s; one-layer passes within "
                f"{100 * fw['pass_median_rel_err']:.1f}% (median), "
                f"{100 * fw['pass_max_rel_err']:.1f}% (max) of {fw['n_pass_rows']} measured"
            )
    return "\n".join(lines)
