"""Level series: piecewise-constant quantities over time, with exact time-weighted statistics.

A *level* (salabim's level monitor; Law & Kelton, "Simulation Modeling and Analysis", §1.4.5,
time-average of a continuous-time statistic) holds its value from one ``record`` to the next:
the KV blocks in use, the running and waiting requests of a server. Its time-weighted mean is
``∫ x(t) dt / T`` and its maximum is the largest value recorded.

The exact mean and maximum of every level are accumulated in O(1) memory. The rows of the
series are kept in one of three ways (``rows``):

* ``"change"``: one row per ``record`` call (exact, O(number of changes) memory — a long
  serving replay records ~50 rows per request);
* ``"binned"``: one row per ``bin_s`` of simulated time with each level's time-weighted mean
  and maximum over the bin (O(duration / ``bin_s``) memory, flat in the number of events);
* ``"none"``: the statistics only.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["LEVEL_ROWS", "LevelSeries"]

#: Allowed values of ``rows``.
LEVEL_ROWS = ("change", "binned", "none")


class LevelSeries:
    """Named levels recorded over simulated time (see the module docstring).

    Args:
        names: Level names, the columns of :meth:`table`.
        rows: ``"change"``, ``"binned"`` or ``"none"``.
        bin_s: Bin width in seconds (``rows="binned"`` only); bin ``k`` covers
            ``[k·bin_s, (k+1)·bin_s)`` (edges computed, never accumulated).

    Raises:
        ValueError: ``rows`` not one of :data:`LEVEL_ROWS`, or ``bin_s`` not a positive
            finite number.
    """

    def __init__(
        self,
        names: Sequence[str],
        *,
        rows: Literal["change", "binned", "none"] = "change",
        bin_s: float = 1.0,
    ) -> None:
        if rows not in LEVEL_ROWS:
            raise ValueError(f"rows must be one of {', '.join(LEVEL_ROWS)}; got {rows!r}")
        if not (isinstance(bin_s, int | float) and math.isfinite(bin_s) and bin_s > 0):
            raise ValueError(f"bin_s must be a positive finite number of seconds, got {bin_s!r}")
        self.names = tuple(names)
        self.rows = rows
        self.bin_s = float(bin_s)
        n = len(self.names)
        self._t_first = math.nan
        self._t_prev = math.nan
        self._prev: tuple[float, ...] = ()
        self._area = [0.0] * n  # ∫ x dt since the first record
        self._max = [-math.inf] * n
        self._t_end = math.nan
        # rows
        self._t = array("d")
        self._cols = [array("d") for _ in range(n)]
        self._bin_max_cols = [array("d") for _ in range(n)]
        self._bin_dt = array("d")
        self._bin = 0  # index of the open bin
        self._bin_area = [0.0] * n
        self._bin_max = [-math.inf] * n
        self._t_bin_open = math.nan  # where the open bin's observation starts

    # ------------------------------------------------------------------------------------
    def record(self, t_s: float, values: Sequence[float]) -> None:
        """The levels take ``values`` (one per name) at time ``t_s`` (non-decreasing)."""
        prev = self._prev
        if prev:
            t_prev = self._t_prev
            dt = t_s - t_prev
            if dt < 0:
                raise ValueError(f"level series time went backwards: {t_s} < {t_prev}")
            area = self._area
            for i, x in enumerate(prev):
                area[i] += x * dt
            if self.rows == "binned":
                self._advance_bins(t_s)
        else:
            self._t_first = t_s
            if self.rows == "binned":
                self._bin = math.floor(t_s / self.bin_s)
                self._t_bin_open = t_s
        self._t_prev = t_s
        self._prev = new = tuple(values)
        mx = self._max
        for i, x in enumerate(new):
            if x > mx[i]:
                mx[i] = x
        if self.rows == "change":
            self._t.append(t_s)
            for col, x in zip(self._cols, values, strict=True):
                col.append(x)
        elif self.rows == "binned":
            bmx = self._bin_max
            for i, x in enumerate(new):
                if x > bmx[i]:
                    bmx[i] = x

    def _advance_bins(self, t_s: float) -> None:
        """Integrate the held values up to ``t_s``, closing every bin that ends on the way."""
        prev, width = self._prev, self.bin_s
        t = self._t_prev
        while (self._bin + 1) * width <= t_s:
            edge = (self._bin + 1) * width
            self._add_to_bin(prev, edge - t)
            self._close_bin(edge)
            self._bin += 1
            t = edge
        self._add_to_bin(prev, t_s - t)

    def _add_to_bin(self, values: tuple[float, ...], dt: float) -> None:
        area = self._bin_area
        for i, x in enumerate(values):
            area[i] += x * dt

    def _close_bin(self, t_close: float) -> None:
        """Emit the open bin's row (mean over the part of it that was observed)."""
        start = self._t_bin_open
        dt = t_close - start
        self._t.append(start)
        self._bin_dt.append(dt)
        for i in range(len(self.names)):
            self._cols[i].append(self._bin_area[i] / dt if dt > 0 else self._prev[i])
            self._bin_max_cols[i].append(self._bin_max[i])
        self._bin_area = [0.0] * len(self.names)
        self._bin_max = list(self._prev)  # the held values open the next bin
        self._t_bin_open = t_close

    def close(self, t_end_s: float) -> None:
        """End the series at ``t_end_s`` (the last values are held until then)."""
        if self.closed:
            return
        if not self._prev:
            self._t_end = t_end_s
            return
        t_end = max(t_end_s, self._t_prev)
        dt = t_end - self._t_prev
        for i, x in enumerate(self._prev):
            self._area[i] += x * dt
        if self.rows == "binned":
            self._advance_bins(t_end)
            if t_end > self._t_bin_open or not self._bin_dt:
                self._close_bin(t_end)
        self._t_prev = t_end
        self._t_end = t_end

    # ------------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return not math.isnan(self._t_end)

    @property
    def duration_s(self) -> float:
        """Time covered from the first record to the end (0 before a close)."""
        if not self.closed or math.isnan(self._t_first):
            return 0.0
        return self._t_end - self._t_first

    def mean(self, name: str, t_end_s: float | None = None) -> float:
        """Time-weighted mean of level ``name`` (0 when nothing was recorded).

        Law & Kelton §1.4.5: ``(1/T) ∫ x(t) dt`` from the first record to the close time, or,
        on an open series, to ``t_end_s`` (default: the last record) with the last values held.
        A series that spans no time gives its last values.
        """
        i = self.names.index(name)
        if not self._prev:
            return 0.0
        area = self._area[i]
        end = self._t_end
        if not self.closed:
            end = max(self._t_prev if t_end_s is None else t_end_s, self._t_prev)
            area += self._prev[i] * (end - self._t_prev)
        span = end - self._t_first
        return area / span if span > 0 else float(self._prev[i])

    def max(self, name: str) -> float:
        """Largest value recorded for level ``name`` (0 when nothing was recorded)."""
        held = self._max[self.names.index(name)]
        return float(held) if held > -math.inf else 0.0

    def table(self, t_end_s: float | None = None) -> pd.DataFrame:
        """The rows (see the module docstring) with ``t_s`` and their duration ``dt_s``.

        ``"change"``: ``t_s`` is the time of each record and ``dt_s`` how long it held (to the
        next record, or to the end: ``t_end_s``, or the close time). ``"binned"``: ``t_s`` is the
        start of each bin, ``dt_s`` its observed width, each level its time-weighted mean and
        ``<name>_max`` its maximum; an open series shows its closed bins only. ``"none"``: no
        rows.
        """
        t = np.array(self._t, dtype=np.float64)
        if self.rows == "binned":
            data = {"t_s": t, "dt_s": np.array(self._bin_dt, dtype=np.float64)}
            for name, col, mcol in zip(self.names, self._cols, self._bin_max_cols, strict=True):
                data[name] = np.array(col, dtype=np.float64)
                data[f"{name}_max"] = np.array(mcol, dtype=np.float64)
            return pd.DataFrame(data)
        end = self._t_end if self.closed else (t_end_s if t_end_s is not None else math.nan)
        if t.size and math.isnan(end):
            end = float(t[-1])
        dt = np.diff(np.append(t, max(end, t[-1]))) if t.size else t
        data = {"t_s": t, "dt_s": dt}
        for name, col in zip(self.names, self._cols, strict=True):
            data[name] = np.array(col, dtype=np.float64)
        return pd.DataFrame(data)
