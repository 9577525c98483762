"""Sums over the last axis that give the same bits for one cell's row and for a batch's rows.

Why not ``x.sum(axis=-1)``: numpy sums a 1-D array pairwise but may walk a 2-D reduction in
another order, so one cell's reward could differ in the last bit from the same cell's row in
the vector env (seen on Jain's index). A left-to-right loop is sequential in both cases; for
the tens of UEs of a cell its rounding error is as small. Compiled, because the env calls it
several times per step.
"""

from __future__ import annotations

import numpy as np

from edgetwin.sim.jit import njit_cached
from edgetwin.sim.types import FloatArray


@njit_cached()
def _sums(rows: FloatArray) -> FloatArray:  # pragma: no cover (compiled)
    out = np.empty(rows.shape[0])
    for i in range(rows.shape[0]):
        s = 0.0
        for j in range(rows.shape[1]):
            s += rows[i, j]
        out[i] = s
    return out


def row_sum(x: FloatArray) -> FloatArray:
    """Σ over the last axis, left to right: [..., n] → [...] (0-d for a vector)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    out: FloatArray = _sums(np.ascontiguousarray(x.reshape(-1, n))).reshape(x.shape[:-1])
    return out
