"""Tabulate a profile folder's fitted predictors (``fit.json``) into a table cost model (.npz).

``kernels/fit.py`` fits each operator's latency as a linear model of shape features (FLOPs,
bytes, hinges). This module evaluates those fits on integer shape grids and stores the tables in
the ``.npz`` format of ``edgetwin.sim.compute.table_cost.TableCostModel.from_npz``, so that a
profile measured on this machine (e.g. ``cpu/smollm-135m``) becomes a cost model whose calls are
O(1) lookups and that extends smoothly beyond the measured shapes:

* ``linear_*``: every integer ``n_tokens`` in 1..``max_tokens``; ``lm_head``: every integer
  ``batch_size`` in 1..``max_batch``;
* ``attn_prefill``: ``n_tokens`` every integer up to 64 then every 16 up to ``max_tokens``,
  ``context_len`` every 256 up to ``max_context`` (FLOPs and bytes are linear in the context,
  so bilinear interpolation is exact along it);
* ``attn_decode``: every integer ``batch_size`` up to ``max_batch``, ``context_len`` every 64 up
  to ``max_context``.

Predictions are clipped at 0 (a fit's intercept can be negative) and made monotone by the table
(running maximum; the fits are checked monotone by ``fit.check_monotone``).

Usage: ``python -m edgetwin.kernels.tables kernels/profiles/cpu/smollm-135m`` writes
``table.npz`` next to the CSVs, which ``load_cost_model`` then prefers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from edgetwin.kernels.fit import fit, predict
from edgetwin.kernels.models import ModelSpec
from edgetwin.kernels.ops import OP_SPECS, Shape
from edgetwin.sim.compute.framework_overhead import LAYER_OP, PASS_OP
from edgetwin.sim.compute.profiles import read_profile
from edgetwin.sim.compute.table_cost import TABLE_AXES, TABLE_FILE, OpTable, TableCostModel

#: Bytes per element of the dtypes ``kernels/`` profiles in.
ELT_BYTES: Final[dict[str, int]] = {"float32": 4, "float16": 2, "bfloat16": 2}


def shape_grid(
    op: str, *, max_tokens: int, max_batch: int, max_context: int
) -> tuple[np.ndarray, ...]:
    """The integer grid axes of one operator (see the module docstring), each sorted."""
    if op in ("lm_head", "sampler"):
        return (np.arange(1, max_batch + 1),)
    if op == "attn_prefill":
        n = np.unique(np.r_[np.arange(1, 65), np.arange(64, max_tokens + 1, 16), max_tokens])
        c = np.unique(np.r_[np.arange(0, max_context + 1, 256), max_context])
        return n, c
    if op == "attn_decode":
        b = np.arange(1, max_batch + 1)
        c = np.unique(np.r_[1, np.arange(64, max_context + 1, 64), max_context])
        return b, c
    return (np.arange(1, max_tokens + 1),)


def _shape(op: str, a: int, b: int = 0) -> Shape:
    if op in ("lm_head", "sampler"):
        return Shape(n_tokens=a, batch_size=a)
    if op == "attn_prefill":
        return Shape(n_tokens=a, context_len=b)
    if op == "attn_decode":
        return Shape(n_tokens=a, batch_size=a, context_len=b)
    return Shape(n_tokens=a)


def grid_rows(
    op: str, model: ModelSpec, elt_bytes: int, axes: Sequence[np.ndarray]
) -> pd.DataFrame:
    """Profile-schema shape rows (with ``flops`` and ``bytes_moved``) over the grid product.

    Args:
        op: Operator name.
        model: Model dimensions.
        elt_bytes: Bytes per element of the profiled dtype.
        axes: One or two grid axes; rows enumerate their product, first axis outermost.
    """
    spec = OP_SPECS[op]
    mesh = np.meshgrid(*axes, indexing="ij")
    shapes = [
        _shape(op, *(int(v) for v in p)) for p in zip(*(m.ravel() for m in mesh), strict=True)
    ]
    df = pd.DataFrame([dataclasses.asdict(s) for s in shapes])
    df["flops"] = [spec.flops(model, s, elt_bytes) for s in shapes]
    df["bytes_moved"] = [spec.bytes_moved(model, s, elt_bytes) for s in shapes]
    return df


def tabulate(
    profile_dir: str | Path,
    *,
    out: str | Path | None = None,
    max_tokens: int = 4096,
    max_batch: int = 256,
    max_context: int = 16384,
) -> Path:
    """Evaluate the fitted predictors of ``profile_dir`` on grids and write a ``.npz`` table.

    Args:
        profile_dir: A ``<device>/<model>`` folder with operator CSVs and ``meta.json``.
        out: Output path (default ``<profile_dir>/table.npz``).
        max_tokens: Largest tabulated token count (GEMMs, prefill chunk).
        max_batch: Largest tabulated batch (LM head, decode).
        max_context: Largest tabulated KV length.

    Returns:
        The written path.
    """
    folder = Path(profile_dir)
    meta = json.loads((folder / "meta.json").read_text())
    model = ModelSpec(**meta["model"])
    elt = ELT_BYTES[str(meta["dtype"])]
    result = fit(folder, write=False)
    tables: dict[str, OpTable] = {}
    for op, entry in sorted(result["ops"].items()):
        if op not in TABLE_AXES or op in ("iteration", "elementwise"):
            continue
        axes = shape_grid(op, max_tokens=max_tokens, max_batch=max_batch, max_context=max_context)
        rows = grid_rows(op, model, elt, axes)
        pred = np.maximum(predict(rows, entry["features"], entry["coef"]), 0.0)
        tables[op] = OpTable(
            tuple(a.astype(np.float64) for a in axes), pred.reshape([len(a) for a in axes])
        )
    info: dict[str, Any] = {
        "source": "edgetwin.kernels.tables",
        "profile_dir": str(folder),
        "fit_data_sha256": result["data_sha256"],
        "device": meta.get("device"),
        "device_name": meta.get("device_name"),
        "model": model.model_id,
        "dtype": meta["dtype"],
    }
    cm = TableCostModel(tables, n_layers=model.n_layers, name=str(folder))
    framework_csvs = [folder / f"{op}.csv" for op in (LAYER_OP, PASS_OP)]
    framework_rows = [read_profile(p) for p in framework_csvs if p.is_file()]
    if framework_rows:  # the framework overhead, against these (fitted) tables
        cm.fit_framework(pd.concat(framework_rows, ignore_index=True))
    return cm.to_npz(Path(out) if out is not None else folder / TABLE_FILE, meta=info)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m edgetwin.kernels.tables DIR [--out PATH]``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile_dir")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    path = tabulate(args.profile_dir, out=args.out)
    print(path)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
