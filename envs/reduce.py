"""Sums over the last axis that give the same bits for one cell's row and for a batch's rows.

Why not ``x.sum(axis=-1)``: numpy sums a 1-D array pairwise but may walk a 2-D reduction in
another order, so one cell's reward could differ in the last bit from the same cell's row in
the vector env (seen on Jain's index). A cumulative sum is sequential in both cases; for the
tens of UEs of a cell its rounding error is as small.
"""

from __future__ import annotations

import numpy as np

from edgetwin.sim.types import FloatArray


def row_sum(x: FloatArray) -> FloatArray:
    """Σ over the last axis, left to right: [..., n] → [...] (0-d for a vector)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] == 0:
        out: FloatArray = np.zeros(x.shape[:-1])
        return out
    total: FloatArray = np.cumsum(x, axis=-1)[..., -1]
    return total
