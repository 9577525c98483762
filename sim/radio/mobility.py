"""UE mobility: static, linear and random-waypoint (vectorized over all UEs).

Every model keeps each UE inside the area of the cell that serves it (see
:mod:`edgetwin.sim.radio.geometry`), so the fixed UE–cell association stays meaningful.

* ``static``: UEs never move. ``speed_mps`` still reports ``config.speed_mps``: it is the speed
  that sets the Doppler spread of the small-scale fading (moving scatterers / a UE that moves
  around its position); set ``speed_mps=0`` for a frozen channel.
* ``linear``: constant speed along a random heading (uniform in [0, 2π), one draw per UE),
  specularly reflected at the cell boundary (billiard motion; the ``min_distance_m`` exclusion
  zone applies to drops only and is not a boundary).
* ``random_waypoint``: move at ``speed_mps`` in a straight line to a waypoint drawn uniformly in
  the cell (at least ``min_distance_m`` from the BS), pause ``pause_s``, repeat (Johnson &
  Maltz 1996). Cells are convex, so the straight legs stay inside.

Trajectories are piecewise linear. Segments are generated lazily, in steps that add one segment
(linear) or one leg (random waypoint) for every UE at a time, so the ``k``-th step always draws
the same random numbers: :meth:`positions_at` is a pure function of ``t_s`` for a given
generator, whatever the order of the queries.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
from pydantic import ConfigDict, Field

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.radio.geometry import Layout, sample_in_cells
from edgetwin.sim.types import FloatArray


class MobilityConfig(StrictConfig):
    """How UEs move."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["static", "linear", "random_waypoint"] = "static"
    speed_mps: float = Field(
        0.833, ge=0, le=150, description="UE speed in m/s (3 km/h = 0.833); also sets Doppler."
    )
    pause_s: float = Field(
        0.0, ge=0, le=3600, description="Random waypoint pause at each waypoint."
    )


class Mobility(Protocol):
    """UE trajectories."""

    speed_mps: FloatArray  #: [n_cell, n_ue] current speeds (m/s), used for Doppler

    def positions_at(self, t_s: float) -> FloatArray:
        """UE positions at time ``t_s``, shape [n_cell, n_ue, 3], metres."""
        ...


class StaticMobility:
    """UEs stay at their drop positions; ``speed_mps`` only sets the Doppler spread.

    Args:
        layout: The network layout.
        speed_mps: Doppler speed reported for every UE, m/s.
    """

    def __init__(self, layout: Layout, speed_mps: float) -> None:
        self._pos = layout.ue_position_m.copy()
        self.speed_mps: FloatArray = np.full(self._pos.shape[:2], float(speed_mps))

    def positions_at(self, t_s: float) -> FloatArray:
        """UE positions at time ``t_s``, shape [n_cell, n_ue, 3], metres."""
        return self._pos.copy()


class _PiecewiseLinearMobility:
    """Trajectories made of linear segments ``p(t) = p0 + v (t − t0)`` on ``[t0, t1)``."""

    def __init__(self, layout: Layout, speed_mps: float) -> None:
        self._layout = layout
        self._shape = layout.ue_position_m.shape[:2]
        self._height_m = layout.ue_position_m[..., 2].reshape(-1).copy()
        self._speed = float(speed_mps)
        n = int(np.prod(self._shape))
        # Segment k of UE i: start time t0[k][i], start point p0[k][i], velocity v[k][i].
        self._t0: list[FloatArray] = []
        self._p0: list[FloatArray] = []
        self._v: list[FloatArray] = []
        self._t_end = np.zeros(n)  # end time of the last segment of each UE
        self._p_end = layout.ue_position_m[..., :2].reshape(n, 2).copy()
        self._stack: tuple[FloatArray, FloatArray, FloatArray] | None = None
        self.speed_mps: FloatArray = np.full(self._shape, self._speed)

    def _extend(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _append(self, t0: FloatArray, p0: FloatArray, v: FloatArray, dur: FloatArray) -> None:
        self._t0.append(t0)
        self._p0.append(p0)
        self._v.append(v)
        self._t_end = t0 + dur
        self._p_end = p0 + v * np.where(np.isfinite(dur), dur, 0.0)[:, None]
        self._stack = None

    def positions_at(self, t_s: float) -> FloatArray:
        """UE positions at time ``t_s`` (≥ 0), shape [n_cell, n_ue, 3], metres.

        Also sets :attr:`speed_mps` to the speeds at ``t_s``.
        """
        t = max(float(t_s), 0.0)
        while not self._t0 or np.min(self._t_end) <= t:
            self._extend()
        if self._stack is None:
            self._stack = (np.stack(self._t0), np.stack(self._p0), np.stack(self._v))
        t0, p0, v = self._stack  # [k, n], [k, n, 2], [k, n, 2]
        k = np.maximum((t0 <= t).sum(axis=0) - 1, 0)  # current segment of each UE
        i = np.arange(t0.shape[1])
        vel = v[k, i]
        xy = p0[k, i] + vel * (t - t0[k, i])[:, None]
        self.speed_mps = np.hypot(vel[:, 0], vel[:, 1]).reshape(self._shape)
        out = np.empty((*self._shape, 3))
        out[..., :2] = xy.reshape(*self._shape, 2)
        out[..., 2] = self._height_m.reshape(self._shape)
        return out


class LinearMobility(_PiecewiseLinearMobility):
    """Constant speed on a random heading, reflected specularly at the cell boundary.

    Args:
        layout: The network layout (cell areas bound the motion).
        speed_mps: Speed of every UE, m/s.
        rng: Random generator (one heading per UE).
    """

    def __init__(self, layout: Layout, speed_mps: float, rng: np.random.Generator) -> None:
        super().__init__(layout, speed_mps)
        n = self._p_end.shape[0]
        heading = rng.uniform(0.0, 2.0 * np.pi, n)
        self._v_next = self._speed * np.stack([np.cos(heading), np.sin(heading)], axis=1)
        cell = np.repeat(np.arange(layout.n_cell), layout.n_ue)
        self._bs_xy = layout.bs_position_m[cell, :2]  # [n, 2]
        self._normal = layout.cell_normal[cell] if layout.cell_normal.size else np.zeros((n, 0, 2))
        self._offset = layout.cell_offset_m[cell] if layout.cell_offset_m.size else np.zeros((n, 0))
        self._radius = (
            layout.cell_radius_m[cell] if layout.cell_radius_m.size else np.full(n, np.inf)
        )

    def _extend(self) -> None:
        p, v = self._p_end, self._v_next
        rel = p - self._bs_xy  # [n, 2]
        # --- time to each half-plane: n·(rel + v τ) = offset, for n·v > 0 -----------------
        nv = np.einsum("nex,nx->ne", self._normal, v)
        gap = self._offset - np.einsum("nex,nx->ne", self._normal, rel)
        with np.errstate(divide="ignore", invalid="ignore"):
            tau_plane = np.where(nv > 1e-12, np.maximum(gap, 0.0) / nv, np.inf)
        # --- time to the bounding circle: |rel + v τ| = R, the positive root ----------------
        a = np.einsum("nx,nx->n", v, v)
        b = np.einsum("nx,nx->n", rel, v)
        c = np.einsum("nx,nx->n", rel, rel) - self._radius**2
        with np.errstate(divide="ignore", invalid="ignore"):
            disc = np.maximum(b * b - a * c, 0.0)
            tau_circ = np.where(
                (a > 0) & np.isfinite(self._radius), (-b + np.sqrt(disc)) / a, np.inf
            )
        tau_circ = np.maximum(tau_circ, 0.0)
        taus = np.concatenate([tau_plane, tau_circ[:, None]], axis=1)  # [n, n_edge + 1]
        j = np.argmin(taus, axis=1) if taus.shape[1] else np.zeros(len(p), dtype=np.int64)
        tau = taus[np.arange(len(p)), j]
        self._append(self._t_end.copy(), p, v, tau)
        # --- specular reflection at the hit point: v' = v − 2 (v·n̂) n̂ ----------------------
        hit = self._p_end - self._bs_xy
        n_edge = self._normal.shape[1]
        idx = np.minimum(j, max(n_edge - 1, 0))
        n_plane = self._normal[np.arange(len(p)), idx] if n_edge else np.zeros((len(p), 2))
        norm = np.hypot(hit[:, 0], hit[:, 1])[:, None]
        n_circ = np.divide(hit, norm, out=np.zeros_like(hit), where=norm > 0)
        n_hat = np.where((j < n_edge)[:, None], n_plane, n_circ)
        self._v_next = v - 2.0 * np.einsum("nx,nx->n", v, n_hat)[:, None] * n_hat


class RandomWaypointMobility(_PiecewiseLinearMobility):
    """Random waypoint: straight legs to uniform waypoints in the cell, then a pause.

    Args:
        layout: The network layout (waypoints are drawn in each UE's serving cell).
        speed_mps: Travel speed, m/s.
        pause_s: Pause at each waypoint, s.
        rng: Random generator (waypoints).
    """

    def __init__(
        self, layout: Layout, speed_mps: float, pause_s: float, rng: np.random.Generator
    ) -> None:
        super().__init__(layout, speed_mps)
        self._pause = float(pause_s)
        self._rng = rng

    def _extend(self) -> None:
        n = self._p_end.shape[0]
        target = sample_in_cells(self._layout, self._shape[1], self._rng).reshape(n, 2)
        p = self._p_end
        delta = target - p
        dist = np.hypot(delta[:, 0], delta[:, 1])
        dur = dist / self._speed
        v = np.divide(delta, dur[:, None], out=np.zeros_like(delta), where=dur[:, None] > 0)
        self._append(self._t_end.copy(), p, v, dur)
        if self._pause > 0:
            self._append(self._t_end.copy(), self._p_end, np.zeros_like(v), np.full(n, self._pause))


def make_mobility(config: MobilityConfig, layout: Layout, rng: np.random.Generator) -> Mobility:
    """Build the mobility model (UEs stay in the area of the cell that serves them).

    Args:
        config: Mobility configuration.
        layout: The network layout (initial positions and cell areas).
        rng: The ``"mobility"`` random stream.
    """
    if config.kind == "static" or config.speed_mps == 0.0:
        if config.kind != "static":
            # Nothing moves: the same trajectories, but with zero Doppler.
            return StaticMobility(layout, 0.0)
        return StaticMobility(layout, config.speed_mps)
    if config.kind == "linear":
        return LinearMobility(layout, config.speed_mps, rng)
    return RandomWaypointMobility(layout, config.speed_mps, config.pause_s, rng)


__all__ = [
    "LinearMobility",
    "Mobility",
    "MobilityConfig",
    "RandomWaypointMobility",
    "StaticMobility",
    "make_mobility",
]
