"""Run results (tidy tables + headline numbers) and the fairness / percentile helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


def jain_index(x: npt.ArrayLike) -> float:
    """Jain's fairness index (Σx)² / (n·Σx²) of a non-negative vector; 1.0 for all-zero input.

    Reference: Jain, Chiu, Hawe, DEC-TR-301, 1984.

    Args:
        x: Allocations (e.g. per-UE throughput in bit/s), shape [n].
    """
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("jain_index of an empty vector is undefined")
    if np.any(a < 0):
        raise ValueError("jain_index needs non-negative values")
    sq = float(np.dot(a, a))
    if sq == 0.0:
        return 1.0
    return float(a.sum() ** 2 / (a.size * sq))


@dataclass
class RunResult:
    """What a component (or a whole run) reports.

    Attributes:
        tables: Tidy tables by name (e.g. ``"ue"``: one row per UE, ``"slot"``: one row per slot
            and cell, ``"mcs"``: MCS counts).
        summary: Headline metrics (JSON-serializable scalars), e.g. ``cell_throughput_mbps``.
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def merge(self, other: RunResult, prefix: str = "") -> None:
        """Add ``other``'s tables and summary (keys prefixed with ``prefix``) to this result."""
        for k, v in other.tables.items():
            self.tables[prefix + k] = v
        for k, v in other.summary.items():
            self.summary[prefix + k] = v
