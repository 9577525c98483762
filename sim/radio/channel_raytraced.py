"""Channel backend ``"raytraced"``: paths from a ``sionna.rt`` scene (optional extra).

Needs Dr.Jit with a working backend: CUDA, or LLVM on the CPU, which needs the system library
libLLVM 19 (``make install-rt``, i.e. ``apt-get install -y libllvm19``). An older LLVM is
tried by a probe trace in a child process first (:mod:`edgetwin.sim.radio.llvm_probe`), since
LLVM 15/16 abort the process inside the path solver. Nothing here imports drjit, mitsuba or
sionna at module import time.

How the ChannelBatch is produced:

* The layout's coordinates are the scene's (metres, ``z`` up, ground at ``z ≈ 0``): every cell
  is a transmitter at its BS position, every UE a receiver at its position at the start of a
  batch. Every cell's area must lie inside the scene's bounding box.
* One ray trace (``PathSolver(deterministic=True)``: LOS, specular reflections and refraction
  up to :data:`MAX_DEPTH` bounces, seed drawn from ``rng``) per distinct set of UE positions:
  static UEs are traced once, moving UEs at every batch start. Each trace is cached on disk as
  ``<sha256>.npz`` in ``config.cache_dir`` (default ``~/.cache/edgetwin/rt``), keyed by the
  scene name, the sionna-rt version, the carrier frequency, the solver settings and seed, and
  the BS/UE positions; a second run loads it instead of tracing. The PRB frequencies are not
  part of the key: the cache stores paths, and the responses are computed from them.
* Serving links: ``H(f_p, t) = Σ_i a_i e^{j2π f_D,i (t − t_trace)} e^{−j2π (f_c + f_p) τ_i}``
  with the path gains/delays of the trace (sionna.rt's ``a_i`` exclude the carrier phase) and
  the Doppler shift ``f_D,i = k_i · v / λ`` of each path (``k_i`` its arrival direction, ``v``
  the UE velocity: the direction of motion of the UE, or a fixed random heading when it does
  not move, at the speed its mobility model reports). ``gain = G_ant |H|²``. Between two
  traces this is the Doppler extrapolation of the paths, so consecutive batches join
  continuously to first order.
* Large scale: ``Σ_i |a_i|²`` of every cell–UE link times the BS antenna gain. Both ends use
  isotropic antennas in the ray tracer; the sector pattern is ours
  (:func:`edgetwin.sim.radio.geometry.antenna_gain_db`, applied per link, not per path) so
  that all backends share one antenna model. ``pathloss_db`` is ``−10 log10 Σ|a_i|²`` of the
  serving link and ``los`` says whether it has a direct path. There is no extra shadowing (the
  scene is deterministic); links without any path get the floor gain :data:`MIN_GAIN`.
* UEs inside buildings (a ray cast straight up from the UE hits scene geometry) are rejected
  with a clear error; :func:`outdoor_layout` re-draws them (bounded number of rounds) and is
  meant to run before the mobility model is built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import os
from pathlib import Path
from typing import Any

import numpy as np

from edgetwin.sim.radio.channel import ChannelBackendBase, ChannelBatch, ChannelConfig
from edgetwin.sim.radio.geometry import Layout, antenna_gain_db, sample_in_cells
from edgetwin.sim.radio.llvm_probe import llvm_trace_problem
from edgetwin.sim.radio.mobility import Mobility
from edgetwin.sim.types import BoolArray, FloatArray
from edgetwin.sim.units import SPEED_OF_LIGHT_MPS

#: Maximum number of interactions (reflections / refractions) per path.
MAX_DEPTH = 3
#: Rays shot per transmitter.
SAMPLES_PER_SRC = 100_000
#: Gain given to links without any path (−300 dB).
MIN_GAIN = 1e-30

_LLVM_HINT = (
    "Dr.Jit could not initialise its LLVM backend, which the ray-traced channel needs on a "
    "machine without CUDA: install the system library libLLVM 19 (`make install-rt`, i.e. "
    "`apt-get install -y libllvm19`), or use channel.backend='statistical' or 'sionna'"
)


class RayTracingUnavailableError(RuntimeError):
    """Dr.Jit has no backend that can ray-trace on this machine (the message says why)."""


def _require_rt() -> Any:
    """Import sionna.rt, or raise one clear error if Dr.Jit has no usable backend."""
    try:
        import drjit as dr
    except ImportError as exc:  # pragma: no cover - drjit ships with sionna
        raise RayTracingUnavailableError(f"{_LLVM_HINT} (drjit is not installed: {exc})") from exc
    try:
        problem = "" if dr.has_backend(dr.JitBackend.CUDA) else llvm_trace_problem()
    except Exception as exc:  # any failure here means the same thing
        raise RayTracingUnavailableError(f"{_LLVM_HINT} ({exc})") from exc
    if problem:
        raise RayTracingUnavailableError(f"{_LLVM_HINT} ({problem})")
    try:
        import sionna.rt as rt
    except Exception as exc:  # pragma: no cover - depends on the system
        raise RayTracingUnavailableError(f"{_LLVM_HINT} (import sionna.rt failed: {exc})") from exc
    return rt


def rt_status() -> tuple[bool, str]:
    """Whether the ray-traced backend can run here, and why not.

    Returns:
        ``(True, "")`` if Dr.Jit has a CUDA or LLVM backend and sionna.rt imports, else
        ``(False, reason)``.
    """
    try:
        _require_rt()
    except RayTracingUnavailableError as exc:
        return False, str(exc)
    return True, ""


def scene_names() -> list[str]:
    """Built-in sionna.rt scenes (for ``ChannelConfig.scene``)."""
    rt = _require_rt()
    return sorted(
        n
        for n in dir(rt.scene)
        if not n.startswith("_")
        and isinstance(getattr(rt.scene, n), str)
        and str(getattr(rt.scene, n)).endswith(".xml")
    )


def _load_scene(name: str, carrier_hz: float) -> Any:
    rt = _require_rt()
    path = getattr(rt.scene, name, None)
    if not isinstance(path, str) or not path.endswith(".xml"):
        raise ValueError(
            f"channel.scene={name!r} is not a sionna.rt scene; choose from {scene_names()}"
        )
    scene = rt.load_scene(path)
    scene.frequency = carrier_hz
    scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    return scene


def indoor_mask(scene: Any, position_m: FloatArray) -> BoolArray:
    """Whether each point is covered by scene geometry (a ray cast straight up hits it).

    Args:
        scene: A loaded ``sionna.rt.Scene``.
        position_m: Points, shape [..., 3], metres.

    Returns:
        Boolean array of shape [...].
    """
    import mitsuba as mi

    p = np.asarray(position_m, dtype=np.float32).reshape(-1, 3)
    origin = mi.Point3f(p[:, 0], p[:, 1], p[:, 2])
    ray = mi.Ray3f(origin, mi.Vector3f(0.0, 0.0, 1.0))
    hit = np.array(scene.mi_scene.ray_test(ray), dtype=bool).reshape(-1)
    out: BoolArray = hit.reshape(np.shape(position_m)[:-1])
    return out


def outdoor_layout(
    layout: Layout, scene_name: str, rng: np.random.Generator, *, max_rounds: int = 200
) -> Layout:
    """Re-draw (uniformly in their cell) the UEs of ``layout`` that are inside buildings.

    Args:
        layout: The dropped network.
        scene_name: Built-in sionna.rt scene (``ChannelConfig.scene``).
        rng: Random generator (for the new drops).
        max_rounds: Bound on the re-draw rounds.

    Returns:
        A layout whose UEs are all outdoors (other fields unchanged).

    Raises:
        ValueError: If some UE is still indoors after ``max_rounds`` rounds.
    """
    scene = _load_scene(scene_name, 3.5e9)
    pos = layout.ue_position_m.copy()
    for _ in range(max_rounds):
        bad = indoor_mask(scene, pos)
        if not bad.any():
            return dataclasses.replace(layout, ue_position_m=pos)
        fresh = sample_in_cells(layout, layout.n_ue, rng)
        pos[..., :2] = np.where(bad[..., None], fresh, pos[..., :2])
    raise ValueError(
        f"{int(indoor_mask(scene, pos).sum())} UEs are still inside buildings of scene "
        f"{scene_name!r} after {max_rounds} re-draws: the cells are (almost) all indoors"
    )


class RayTracedChannel(ChannelBackendBase):
    """Channel batches from a sionna.rt scene (see the module docstring).

    Args:
        config: Channel configuration (``backend="raytraced"``, ``scene``, ``cache_dir``).
        layout: Cells and UE drops, in scene coordinates.
        mobility: UE trajectories (positions and speeds are read at every batch start).
        carrier_hz: Carrier frequency, Hz.
        prb_frequencies_hz: PRB centre frequency offsets from the carrier, shape [n_prb], Hz.
        slot_s: Slot duration, s.
        bs_antenna_gain_dbi: Maximum BS antenna gain, dBi.
        rng: The ``"channel"`` random stream (solver seed and UE headings).

    Raises:
        RayTracingUnavailableError: If Dr.Jit has no backend that can ray-trace here.
        ValueError: If the scene is unknown, the cells do not fit in it, or UEs are indoors.
    """

    def __init__(
        self,
        config: ChannelConfig,
        layout: Layout,
        mobility: Mobility,
        *,
        carrier_hz: float,
        prb_frequencies_hz: FloatArray,
        slot_s: float,
        bs_antenna_gain_dbi: float,
        rng: np.random.Generator,
    ) -> None:
        self._rt = _require_rt()
        self._init_common(
            config, layout, mobility, carrier_hz, prb_frequencies_hz, slot_s, bs_antenna_gain_dbi
        )
        self.n_traced = 0  #: ray traces run by this instance
        self.n_cache_hits = 0  #: traces loaded from the cache
        self._lambda_m = SPEED_OF_LIGHT_MPS / self.carrier_hz
        self._seed = int(rng.integers(0, 2**31 - 1))
        heading = rng.uniform(0.0, 2.0 * np.pi, (self.n_cell, self.n_ue))
        self._heading = np.stack([np.cos(heading), np.sin(heading), np.zeros_like(heading)], -1)
        self._cache_dir = Path(config.cache_dir or Path.home() / ".cache" / "edgetwin" / "rt")
        self._version = importlib.metadata.version("sionna-rt")
        self._scene = _load_scene(config.scene, self.carrier_hz)
        self._check_fits(layout)
        pos0 = mobility.positions_at(0.0)
        indoor = indoor_mask(self._scene, pos0)
        if indoor.any():
            raise ValueError(
                f"{int(indoor.sum())} UEs are inside buildings of scene {config.scene!r}; "
                "re-draw them with edgetwin.sim.radio.channel_raytraced.outdoor_layout(layout, "
                "scene, rng) before building the mobility model"
            )
        for c in range(self.n_cell):
            x, y, z = (float(v) for v in layout.bs_position_m[c])
            self._scene.add(self._rt.Transmitter(name=f"tx{c}", position=[x, y, z]))
        self._rx_added = False
        self._solver: Any = None
        self._trace_pos: FloatArray | None = None
        self._trace_t0 = 0.0
        self._trace: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------------------------
    def _check_fits(self, layout: Layout) -> None:
        bbox = self._scene.mi_scene.bbox()
        lo = np.array([bbox.min[0], bbox.min[1]], dtype=np.float64)
        hi = np.array([bbox.max[0], bbox.max[1]], dtype=np.float64)
        r = layout.bounding_radius_m[:, None]
        xy = layout.bs_position_m[:, :2]
        if np.any(xy - r < lo) or np.any(xy + r > hi):
            raise ValueError(
                f"the cells do not fit in scene {self.config.scene!r} (x in [{lo[0]:.0f}, "
                f"{hi[0]:.0f}] m, y in [{lo[1]:.0f}, {hi[1]:.0f}] m): reduce "
                "topology.cell_radius_m / isd_m or move the cells"
            )

    def _key(self, rx: FloatArray) -> str:
        h = hashlib.sha256()
        meta = f"{self.config.scene}|{self._version}|{self.carrier_hz!r}|{MAX_DEPTH}|"
        meta += f"{SAMPLES_PER_SRC}|{self._seed}"
        h.update(meta.encode())
        h.update(np.round(self.layout.bs_position_m, 4).astype(np.float64).tobytes())
        h.update(np.round(rx, 4).astype(np.float64).tobytes())
        return h.hexdigest()

    def _run_trace(self, rx: FloatArray) -> dict[str, np.ndarray]:
        """Ray-trace every cell to every UE; per-path data of the serving links."""
        rt = self._rt
        scene = self._scene
        for n, p in enumerate(rx):
            pos = [float(p[0]), float(p[1]), float(p[2])]
            if self._rx_added:
                scene.receivers[f"rx{n}"].position = pos
            else:
                scene.add(rt.Receiver(name=f"rx{n}", position=pos))
        self._rx_added = True
        if self._solver is None:
            self._solver = rt.PathSolver(deterministic=True)
        paths = self._solver(
            scene,
            max_depth=MAX_DEPTH,
            samples_per_src=SAMPLES_PER_SRC,
            max_num_paths_per_src=SAMPLES_PER_SRC,
            seed=self._seed,
        )
        a_re, a_im = paths.a
        n_rx, n_tx = rx.shape[0], self.n_cell
        a = (np.array(a_re) + 1j * np.array(a_im)).reshape(n_rx, n_tx, -1)
        valid = np.array(paths.valid, dtype=bool).reshape(n_rx, n_tx, -1)
        a = np.where(valid, a, 0.0)
        inter = np.array(paths.interactions).reshape(-1, n_rx, n_tx, a.shape[-1])
        direct = valid & np.all(inter == 0, axis=0)
        tau = np.array(paths.tau).reshape(n_rx, n_tx, -1)
        theta = np.array(paths.theta_r).reshape(n_rx, n_tx, -1)
        phi = np.array(paths.phi_r).reshape(n_rx, n_tx, -1)
        serving = np.repeat(np.arange(self.n_cell), self.n_ue)
        i = np.arange(n_rx)
        th, ph = theta[i, serving], phi[i, serving]
        return {
            "power": (np.abs(a) ** 2).sum(axis=-1),  # [n_rx, n_tx]
            "los": direct.any(axis=-1),  # [n_rx, n_tx]
            "a": a[i, serving].astype(np.complex128),  # [n_rx, n_path]
            "tau": np.where(valid[i, serving], tau[i, serving], 0.0).astype(np.float64),
            "k": np.stack(
                [np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=-1
            ).astype(np.float64),  # [n_rx, n_path, 3] arrival directions
        }

    def _get_trace(self, rx: FloatArray) -> dict[str, np.ndarray]:
        path = self._cache_dir / f"{self._key(rx)}.npz"
        if path.exists():
            with np.load(path) as f:
                self.n_cache_hits += 1
                return {k: f[k] for k in f.files}
        data = self._run_trace(rx)
        self.n_traced += 1
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(
            tmp, power=data["power"], los=data["los"], a=data["a"], tau=data["tau"], k=data["k"]
        )
        os.replace(tmp, path)
        return data

    def _velocity(self, t0: float) -> tuple[FloatArray, FloatArray]:
        """UE positions at ``t0`` and velocity vectors, each [n_cell, n_ue, 3]."""
        ahead = self.mobility.positions_at(t0 + self.slot_s)
        pos = self.mobility.positions_at(t0)  # last call: speed_mps refers to t0
        speed = np.asarray(self.mobility.speed_mps, dtype=np.float64)
        step = ahead - pos
        norm = np.linalg.norm(step, axis=-1, keepdims=True)
        direction = np.where(norm > 0, step / np.where(norm > 0, norm, 1.0), self._heading)
        return pos, direction * speed[..., None]

    # ------------------------------------------------------------------------------------
    def next_batch(self) -> ChannelBatch:
        """The batch following the previous one (the first starts at slot 0)."""
        first = self._next_slot
        n_slot = self.config.batch_slots
        self._next_slot += n_slot
        C, U, P = self.n_cell, self.n_ue, self.n_prb
        t0 = first * self.slot_s
        pos, vel = self._velocity(t0)
        if self._trace_pos is None or not np.array_equal(pos, self._trace_pos):
            self._trace = self._get_trace(pos.reshape(C * U, 3))
            self._trace_pos = pos
            self._trace_t0 = t0
        tr = self._trace
        g_ant = 10.0 ** (
            antenna_gain_db(self.layout, pos, max_gain_dbi=self.bs_antenna_gain_dbi) / 10.0
        )
        power = tr["power"].reshape(C, U, C)
        ls: FloatArray = np.maximum(power * g_ant, MIN_GAIN)
        cells = np.arange(C)
        serving_power = np.maximum(power[cells, :, cells], MIN_GAIN)
        if self.config.fading == "none":
            gain = np.empty((n_slot, C, U, P))
            gain[...] = ls[cells, :, cells][None, :, :, None]
        else:
            # [n_link, n_path] Doppler shifts, [n_slot] times since the trace
            f_d = np.einsum("npx,nx->np", tr["k"], vel.reshape(C * U, 3)) / self._lambda_m
            t = t0 - self._trace_t0 + self.slot_s * np.arange(n_slot)
            rot = np.exp(2j * np.pi * f_d[:, None, :] * t[None, :, None])  # [n, n_slot, n_path]
            # sionna.rt's path coefficients exclude the carrier phase: e^{−j2π (f_c + f_p) τ_i}.
            rf_hz = self.carrier_hz + self.prb_frequencies_hz
            resp = tr["a"][:, :, None] * np.exp(
                -2j * np.pi * tr["tau"][:, :, None] * rf_hz
            )  # [n_link, n_path, n_prb]
            h = np.matmul(rot, resp)  # [n_link, n_slot, n_prb]
            fade = (h.real**2 + h.imag**2).reshape(C, U, n_slot, P).transpose(2, 0, 1, 3)
            gain = np.maximum(fade * g_ant[cells, :, cells][None, :, :, None], MIN_GAIN)
        return ChannelBatch(
            first_slot=first,
            gain=gain,
            large_scale_gain=ls,
            pathloss_db=-10.0 * np.log10(serving_power),
            los=tr["los"].reshape(C, U, C)[cells, :, cells].copy(),
        )


__all__ = [
    "MAX_DEPTH",
    "MIN_GAIN",
    "RayTracedChannel",
    "indoor_mask",
    "outdoor_layout",
    "rt_status",
    "scene_names",
]
