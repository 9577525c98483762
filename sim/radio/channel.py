"""Channel models: generated in batches of many slots, consumed by slot index.

All backends return :class:`ChannelBatch` objects of consecutive slots; a cell asks for the next
batch when its slot index passes the end of the current one (also across idle periods, so that
results are identical with idle-slot skipping on or off).

The default ``"statistical"`` backend (numpy only, :class:`StatisticalChannel`):

* **Large scale**, recomputed from the UE positions at the start of every batch: TR 38.901 path
  loss (:mod:`edgetwin.sim.radio.pathloss`), log-normal shadowing, the BS antenna pattern
  (:func:`edgetwin.sim.radio.geometry.antenna_gain_db`) and O2I penetration (low-loss model)
  for indoor UEs. The LOS state of every UE–site link is drawn once, at construction, from
  the LOS probability at the initial distance (or forced by ``config.los``), and so is a
  standard-normal shadowing variable per UE–site link; co-sited sectors share both. There is
  no spatial consistency: a moving UE keeps its LOS states and shadowing values (only the
  distance-dependent terms change), and two nearby UEs are independent. Inter-cell
  interference uses these large-scale gains only (no fast fading on interfering links).
* **Small scale**, on serving links only: ``n_taps`` taps with an exponential power-delay
  profile whose RMS delay spread is ``config.delay_spread_s`` (default: the TR 38.901
  Table 7.5-6 median ``10^μ_lgDS`` of the scenario and the link's LOS/O2I state). Tap delays
  are drawn once per link on a jittered grid over ``[0, 6 DS]`` (so that the frequency response
  is not periodic) and the decay is solved so that the discrete profile's RMS delay spread is
  exactly ``DS``. Each tap is a Rayleigh process with Clarke's autocorrelation
  ``J0(2π f_D Δt)``, ``f_D = v f_c / c`` from the UE speed, generated as a sum of
  :data:`N_SINUSOIDS` complex sinusoids with random Doppler angles and phases (Zheng & Xiao
  2003; the ensemble autocorrelation is exactly J0 at every lag). The PRB gain is
  ``|Σ_l h_l e^{−j2π f_p τ_l}|²`` at the PRB centre frequency, with mean 1. The phases are
  carried from batch to batch, so the fading is continuous across batch boundaries (also when
  the speed changes). There is no Rician K-factor: LOS links fade like NLOS links.

Why not AR(1) with ρ = J0(2π f_D T_slot): its lag-k correlation is ``J0(2π f_D T)^k``, which
at 3 km/h, 3.5 GHz and 0.5 ms slots decays ~50× slower than ``J0(2π f_D k T)`` (Baddour &
Beaulieu 2005 make the same point and fit high-order AR models instead); CSI ageing would be
badly underestimated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import ConfigDict, Field

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.radio.geometry import Layout, antenna_gain_db, distances_2d_m
from edgetwin.sim.radio.mobility import Mobility
from edgetwin.sim.radio.pathloss import (
    breakpoint_distance_m,
    draw_o2i_low_loss_db,
    los_probability,
    median_delay_spread_s,
    pathloss_db,
    shadow_fading_std_db,
)
from edgetwin.sim.types import BoolArray, FloatArray
from edgetwin.sim.units import SPEED_OF_LIGHT_MPS

#: Sinusoids per tap of the sum-of-sinusoids Rayleigh process.
N_SINUSOIDS = 16
#: Span of the tap delays in units of the RMS delay spread.
TAP_SPAN_DS = 6.0


class ChannelConfig(StrictConfig):
    """Propagation and fading."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["statistical", "sionna", "raytraced"] = Field(
        "statistical",
        description="'statistical' (numpy TR 38.901), 'sionna' (sionna.phy TR 38.901 models), "
        "'raytraced' (sionna.rt scene, optional extra).",
    )
    scenario: Literal["uma", "umi", "rma", "inh"] = Field("uma", description="TR 38.901 scenario.")
    los: Literal["probabilistic", "los", "nlos"] = Field(
        "probabilistic", description="LOS state: drawn from TR 38.901 Table 7.4.2-1, or forced."
    )
    shadowing: bool = Field(True, description="Log-normal shadow fading (TR 38.901 Table 7.4.1-1).")
    fading: Literal["none", "rayleigh"] = Field(
        "rayleigh", description="Small-scale fading: frequency-selective, time-correlated."
    )
    n_taps: int = Field(8, ge=1, le=64, description="Taps of the exponential power-delay profile.")
    delay_spread_s: float | None = Field(
        None, gt=0, le=1e-5, description="RMS delay spread; default: TR 38.901 median of scenario."
    )
    batch_slots: int = Field(100, ge=1, le=100_000, description="Slots generated per batch.")
    scene: str = Field("simple_street_canyon", description="sionna.rt built-in scene (raytraced).")
    cache_dir: str | None = Field(None, description="Cache for ray-traced channels (raytraced).")


@dataclass(frozen=True, slots=True)
class ChannelBatch:
    """Channel of ``n_slot`` consecutive slots starting at ``first_slot``.

    Attributes:
        first_slot: Index of the first slot in the batch.
        gain: Serving-link power gain per PRB (path loss, shadowing, antenna gains and
            small-scale fading), linear, shape [n_slot, n_cell, n_ue, n_prb].
        large_scale_gain: Large-scale power gain (no fast fading) from every cell to every UE,
            linear, shape [n_cell, n_ue, n_cell]; ``[c, u, c]`` is the serving link. Used for
            inter-cell interference.
        pathloss_db: Serving-link path loss, shape [n_cell, n_ue], dB (diagnostics): the basic
            TR 38.901 path loss plus O2I penetration, without shadowing and antenna gain.
        los: Serving-link LOS state, shape [n_cell, n_ue].
    """

    first_slot: int
    gain: FloatArray
    large_scale_gain: FloatArray
    pathloss_db: FloatArray
    los: BoolArray

    @property
    def n_slot(self) -> int:
        """Number of slots in the batch."""
        return int(self.gain.shape[0])


class ChannelModel(Protocol):
    """A channel backend: yields consecutive batches, owns its random stream."""

    n_cell: int
    n_ue: int
    n_prb: int

    def next_batch(self) -> ChannelBatch:
        """The batch following the previous one (the first starts at slot 0)."""
        ...


# ----------------------------------------------------------------------------------------
# Tap profiles
# ----------------------------------------------------------------------------------------
def exponential_tap_profile(
    delay_spread_s: FloatArray, n_taps: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Tap delays and powers of an exponential power-delay profile with a given RMS spread.

    Delays: ``τ_0 = 0`` and ``τ_l = (l + u_l − 1/2) Δ`` with ``u_l ~ U(0, 1)`` and
    ``Δ = 6 DS / (n_taps − 1)``; powers ``∝ exp(−τ_l / β)`` with ``β`` solved by bisection so
    that the RMS delay spread of the discrete profile equals ``DS``.

    Args:
        delay_spread_s: Target RMS delay spread per link, shape [n_link], seconds.
        n_taps: Number of taps.
        rng: Random generator (delay jitter).

    Returns:
        ``(delay_s, power)``, each of shape [n_link, n_taps]; powers sum to 1 per link.
    """
    ds = np.asarray(delay_spread_s, dtype=np.float64)
    n_link = ds.shape[0]
    if n_taps == 1:
        return np.zeros((n_link, 1)), np.ones((n_link, 1))
    step = TAP_SPAN_DS * ds / (n_taps - 1)
    jitter = rng.random((n_link, n_taps))
    grid = np.arange(n_taps) + jitter - 0.5
    grid[:, 0] = 0.0
    delay = grid * step[:, None]  # [n_link, n_taps]
    x = delay / ds[:, None]  # delays in units of DS

    def rms(log_beta: FloatArray) -> FloatArray:
        w = np.exp(-(x - x[:, :1]) / np.exp(log_beta)[:, None])
        w /= w.sum(axis=1, keepdims=True)
        m1 = (w * x).sum(axis=1)
        out: FloatArray = np.sqrt(np.maximum((w * x**2).sum(axis=1) - m1**2, 0.0))
        return out

    lo = np.full(n_link, np.log(1e-3))
    hi = np.full(n_link, np.log(1e3))
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        too_wide = rms(mid) > 1.0
        hi = np.where(too_wide, mid, hi)
        lo = np.where(too_wide, lo, mid)
    beta = np.exp(0.5 * (lo + hi))
    power = np.exp(-x / beta[:, None])
    power /= power.sum(axis=1, keepdims=True)
    return delay, power


def rms_delay_spread_s(delay_s: FloatArray, power: FloatArray) -> FloatArray:
    """RMS delay spread of discrete power-delay profiles.

    Args:
        delay_s: Tap delays, shape [..., n_taps], seconds.
        power: Tap powers, shape [..., n_taps], linear.

    Returns:
        RMS delay spread, shape [...], seconds.
    """
    w = power / power.sum(axis=-1, keepdims=True)
    m1 = (w * delay_s).sum(axis=-1)
    out: FloatArray = np.sqrt(np.maximum((w * delay_s**2).sum(axis=-1) - m1**2, 0.0))
    return out


def sum_of_sinusoids(
    theta_rad: FloatArray, d_theta_rad: FloatArray, n_slot: int
) -> npt.NDArray[np.complex64]:
    """Unit-power Rayleigh processes as sums of complex sinusoids, sampled once per slot.

    ``h_n[s] = M^(−1/2) Σ_m exp(j (θ_mn + s Δθ_mn))``. With ``Δθ_mn = 2π f_D cos(α_mn) T``
    and ``α``, ``θ`` i.i.d. uniform on [0, 2π), ``E[h(t + kT) h*(t)] = J0(2π f_D k T)`` exactly
    (Clarke 1968; sum-of-sinusoids model of Zheng & Xiao 2003).

    Args:
        theta_rad: Phases at slot 0, shape [M, n], radians.
        d_theta_rad: Phase increment per slot, shape [M, n], radians.
        n_slot: Number of slots.

    Returns:
        Complex gains, shape [n_slot, n], complex64 (the phases restart from float64 values on
        every call, so single precision does not accumulate errors across batches).
    """
    n_sin = theta_rad.shape[0]
    z = np.exp(1j * theta_rad.astype(np.float32)) / np.float32(np.sqrt(n_sin))
    rot = np.exp(1j * d_theta_rad.astype(np.float32))
    out = np.empty((n_slot, theta_rad.shape[1]), dtype=np.complex64)
    for s in range(n_slot):
        np.sum(z, axis=0, out=out[s])
        z *= rot
    return out


# ----------------------------------------------------------------------------------------
# Statistical backend
# ----------------------------------------------------------------------------------------
class ChannelBackendBase:
    """What every channel backend keeps: its inputs, the dimensions and the next slot index."""

    config: ChannelConfig
    layout: Layout
    mobility: Mobility
    carrier_hz: float
    prb_frequencies_hz: FloatArray
    slot_s: float
    bs_antenna_gain_dbi: float
    n_cell: int
    n_ue: int
    n_prb: int

    def _init_common(
        self,
        config: ChannelConfig,
        layout: Layout,
        mobility: Mobility,
        carrier_hz: float,
        prb_frequencies_hz: FloatArray,
        slot_s: float,
        bs_antenna_gain_dbi: float,
    ) -> None:
        self.config = config
        self.layout = layout
        self.mobility = mobility
        self.carrier_hz = float(carrier_hz)
        self.prb_frequencies_hz = np.asarray(prb_frequencies_hz, dtype=np.float64).reshape(-1)
        self.slot_s = float(slot_s)
        self.bs_antenna_gain_dbi = float(bs_antenna_gain_dbi)
        self.n_cell, self.n_ue = layout.n_cell, layout.n_ue
        self.n_prb = int(self.prb_frequencies_hz.shape[0])
        self._next_slot = 0


class StatisticalChannel(ChannelBackendBase):
    """TR 38.901 large-scale model plus a sum-of-sinusoids tapped-delay-line fading (numpy).

    See the module docstring for the model and its simplifications.

    Args:
        config: Channel configuration.
        layout: Cells and UE drops.
        mobility: UE trajectories (positions and speeds are read at every batch start).
        carrier_hz: Carrier frequency, Hz.
        prb_frequencies_hz: PRB centre frequency offsets from the carrier, shape [n_prb], Hz.
        slot_s: Slot duration, s.
        bs_antenna_gain_dbi: Maximum BS antenna gain, dBi.
        rng: The ``"channel"`` random stream (all draws happen here, at construction).
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
        self._init_common(
            config, layout, mobility, carrier_hz, prb_frequencies_hz, slot_s, bs_antenna_gain_dbi
        )
        C, U = self.n_cell, self.n_ue
        scenario = config.scenario
        site = np.asarray(layout.site_of_cell, dtype=np.int64)
        n_site = int(site.max()) + 1
        first_cell_of_site = np.array([np.flatnonzero(site == s)[0] for s in range(n_site)])

        # --- LOS state and shadowing per UE-site link (co-sited sectors share them) ------
        pos0 = mobility.positions_at(0.0)
        d_site = distances_2d_m(layout, pos0)[:, :, first_cell_of_site]  # [C, U, n_site]
        u_los = rng.random((C, U, n_site))
        if config.los == "probabilistic":
            p_los = los_probability(scenario, d_site, h_ut_m=pos0[..., 2:3])
            los_site = u_los < p_los
        else:
            los_site = np.full((C, U, n_site), config.los == "los")
        z_sf_site = rng.standard_normal((C, U, n_site))
        self._los: BoolArray = los_site[:, :, site]  # [C, U, C]
        self._z_sf: FloatArray = z_sf_site[:, :, site]  # [C, U, C]
        # --- O2I penetration per UE (TR 38.901 §7.4.3.1, low-loss model) ------------------
        o2i = draw_o2i_low_loss_db(scenario, self.carrier_hz, (C, U), rng)
        self._o2i_db: FloatArray = np.where(layout.indoor, o2i, 0.0)

        # --- small-scale fading per serving link ------------------------------------------
        cells = np.arange(C)
        self._los_serving: BoolArray = self._los[cells, :, cells]  # [C, U]
        n_link = C * U
        L, M = config.n_taps, N_SINUSOIDS
        if config.delay_spread_s is not None:
            ds = np.full(n_link, config.delay_spread_s)
        else:
            ds = median_delay_spread_s(
                scenario,
                self._los_serving,
                fc_hz=self.carrier_hz,
                indoor=layout.indoor & (scenario != "inh"),
            ).reshape(-1)
        self.tap_delay_s, self.tap_power = exponential_tap_profile(ds, L, rng)
        # Tap-to-PRB map with the tap amplitudes folded in, [n_link, L, n_prb]
        phase = -2.0 * np.pi * self.tap_delay_s[:, :, None] * self.prb_frequencies_hz
        self._tap_to_prb = (np.sqrt(self.tap_power)[:, :, None] * np.exp(1j * phase)).astype(
            np.complex64
        )
        # Sum of sinusoids: Doppler cosines cos(α) and phases θ, [M, n_link * L] (the sum over
        # the sinusoids then runs over contiguous rows).
        self._cos_alpha = np.cos(rng.uniform(0.0, 2.0 * np.pi, (M, n_link * L)))
        self._theta = rng.uniform(0.0, 2.0 * np.pi, (M, n_link * L))

        self._ls_key: FloatArray | None = None
        self._ls: tuple[FloatArray, FloatArray] | None = None

    # ------------------------------------------------------------------------------------
    def large_scale(self, position_m: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Large-scale gains and path loss at UE positions.

        Args:
            position_m: UE positions, shape [n_cell, n_ue, 3], metres.

        Returns:
            ``(large_scale_gain, pathloss_db)``: linear gains of shape [n_cell, n_ue, n_cell]
            and path loss incl. O2I penetration, dB, of the same shape.
        """
        cfg, lay = self.config, self.layout
        d2d = distances_2d_m(lay, position_m)  # [C, U, C]
        h_bs = lay.bs_position_m[None, None, :, 2]
        h_ut = position_m[:, :, None, 2]
        pl = pathloss_db(
            cfg.scenario, d2d, fc_hz=self.carrier_hz, h_bs_m=h_bs, h_ut_m=h_ut, los=self._los
        )
        pl = pl + self._o2i_db[:, :, None]
        g_db = antenna_gain_db(lay, position_m, max_gain_dbi=self.bs_antenna_gain_dbi) - pl
        if cfg.shadowing:
            beyond = None
            if cfg.scenario == "rma":
                d_bp = breakpoint_distance_m("rma", fc_hz=self.carrier_hz, h_bs_m=h_bs, h_ut_m=h_ut)
                beyond = d2d > d_bp
            sigma = shadow_fading_std_db(
                cfg.scenario, self._los, beyond_breakpoint=False if beyond is None else beyond
            )
            g_db = g_db - sigma * self._z_sf
        gain: FloatArray = 10.0 ** (g_db / 10.0)
        return gain, pl

    def next_batch(self) -> ChannelBatch:
        """The batch following the previous one (the first starts at slot 0)."""
        return next_batches([self])[0]

    def _begin_batch(self) -> _BatchStart:
        """Advance to the next batch: its first slot, large scale and Doppler inputs."""
        first = self._next_slot
        self._next_slot += self.config.batch_slots
        C = self.n_cell
        pos = self.mobility.positions_at(first * self.slot_s)
        speed = np.asarray(self.mobility.speed_mps, dtype=np.float64)
        # --- large scale (cached while the UEs do not move) --------------------------------
        if self._ls is None or self._ls_key is None or not np.array_equal(pos, self._ls_key):
            self._ls = self.large_scale(pos)
            self._ls_key = pos
        ls, pl = self._ls
        cells = np.arange(C)
        return _BatchStart(first, ls, pl[cells, :, cells], ls[cells, :, cells], speed.reshape(-1))

    def _finish_batch(self, start: _BatchStart, gain: FloatArray) -> ChannelBatch:
        """The batch of ``start`` with its gains, [n_slot, n_link, n_prb] or broadcastable."""
        n_slot, C, U, P = self.config.batch_slots, self.n_cell, self.n_ue, self.n_prb
        return ChannelBatch(
            first_slot=start.first_slot,
            gain=np.broadcast_to(gain, (n_slot, C * U, P)).reshape(n_slot, C, U, P),
            large_scale_gain=start.large_scale_gain,
            pathloss_db=start.pathloss_db,
            los=self._los_serving.copy(),
        )

    def _doppler_step(self, speed_mps: FloatArray) -> FloatArray:
        """Phase increment of every sinusoid over one slot, 2π f_D cos(α) T: [M, n_link · L]."""
        f_d = speed_mps * self.carrier_hz / SPEED_OF_LIGHT_MPS  # [n_link]
        rep: FloatArray = (
            (2.0 * np.pi * self.slot_s)
            * np.repeat(f_d, self.config.n_taps)[None, :]
            * self._cos_alpha
        )
        return rep


@dataclass(frozen=True)
class _BatchStart:
    """What a statistical channel knows at the start of a batch, before the fading."""

    first_slot: int
    large_scale_gain: FloatArray  # [n_cell, n_ue, n_cell]
    pathloss_db: FloatArray  # serving links, [n_cell, n_ue]
    serving_gain: FloatArray  # serving links, [n_cell, n_ue]
    speed_mps: FloatArray  # per serving link, [n_link]


def next_batches(channels: list[StatisticalChannel]) -> list[ChannelBatch]:
    """The next batch of every channel, the fading of all of them in one pass of array calls.

    Why: a batch of independent cells (an env's members, a sweep's seeds) would otherwise pay
    the sum of sinusoids' per-slot numpy calls once per cell. Every channel's links are
    concatenated on the link axis; each link's arithmetic is unchanged (element-wise
    operations, a reduction over the sinusoid axis and one small matrix product per link), so
    each batch is bit-identical to ``channel.next_batch()`` alone (``tests/sim/radio``).

    Args:
        channels: Statistical channels with the same ``batch_slots``, taps, PRBs and fading.

    Returns:
        Their next batches, in order.
    """
    starts = [ch._begin_batch() for ch in channels]
    head = channels[0]
    if head.config.fading == "none":
        return [
            ch._finish_batch(st, st.serving_gain.reshape(1, -1, 1))
            for ch, st in zip(channels, starts, strict=True)
        ]
    n_slot, L = head.config.batch_slots, head.config.n_taps
    d_theta = [ch._doppler_step(st.speed_mps) for ch, st in zip(channels, starts, strict=True)]
    theta = np.concatenate([ch._theta for ch in channels], axis=1)  # [M, Σ n_link · L]
    taps = sum_of_sinusoids(theta, np.concatenate(d_theta, axis=1), n_slot)
    gain = _taps_to_prb_gain(
        taps,
        np.concatenate([ch._tap_to_prb for ch in channels]),
        np.concatenate([st.serving_gain.reshape(-1) for st in starts]),
        L,
    )
    batches = []
    a = 0
    for ch, st, dt in zip(channels, starts, d_theta, strict=True):
        # Carry the phases (exactly, in float64) to the next batch.
        ch._theta = np.mod(ch._theta + n_slot * dt, 2.0 * np.pi)
        n_link = ch.n_cell * ch.n_ue
        batches.append(ch._finish_batch(st, gain[:, a : a + n_link]))
        a += n_link
    return batches


def _taps_to_prb_gain(
    taps: npt.NDArray[np.complex64],
    tap_to_prb: npt.NDArray[np.complex64],
    ls_gain: FloatArray,
    n_taps: int,
) -> FloatArray:
    """Large-scale gain times the fading power (mean 1) per slot, link and PRB.

    Reference: Clarke 1968 (R(τ) = J0(2π f_D τ)); Zheng & Xiao 2003 (sum of sinusoids).

    Args:
        taps: Tap gains, [n_slot, n_link · n_taps], complex64.
        tap_to_prb: Tap-to-PRB map with the tap amplitudes, [n_link, n_taps, n_prb], complex64.
        ls_gain: Large-scale gain per serving link, [n_link], linear.
        n_taps: Taps per link.

    Returns:
        Gain, shape [n_slot, n_link, n_prb], linear.
    """
    n_slot = taps.shape[0]
    n_link, P = ls_gain.shape[0], tap_to_prb.shape[2]
    # PRB response per link, in chunks of links to keep the temporaries in cache.
    taps_l = taps.reshape(n_slot, n_link, n_taps).transpose(1, 0, 2)  # [n_link, n_slot, L]
    out = np.empty((n_slot, n_link, P))
    chunk = 128
    for a in range(0, n_link, chunk):
        b = min(a + chunk, n_link)
        h = np.matmul(np.ascontiguousarray(taps_l[a:b]), tap_to_prb[a:b])
        power = h.real**2
        power += h.imag**2  # [chunk, n_slot, n_prb]
        np.multiply(power.transpose(1, 0, 2), ls_gain[None, a:b, None], out=out[:, a:b])
    return out


def make_channel(
    config: ChannelConfig,
    layout: Layout,
    mobility: Mobility,
    *,
    carrier_hz: float,
    prb_frequencies_hz: FloatArray,
    slot_s: float,
    bs_antenna_gain_dbi: float,
    rng: np.random.Generator,
) -> ChannelModel:
    """Build the configured backend.

    Args:
        config: Channel configuration.
        layout: Cells and UE drops.
        mobility: UE trajectories (positions are re-read at the start of every batch).
        carrier_hz: Carrier frequency.
        prb_frequencies_hz: Centre frequency offset of each PRB from the carrier, shape [n_prb].
        slot_s: Slot duration (time step of the fading process).
        bs_antenna_gain_dbi: Maximum BS antenna gain (sector pattern applied when sectored).
        rng: The ``"channel"`` random stream.
    """
    if config.backend == "sionna":
        # Imported here: the backend pulls in torch and sionna (seconds) only when chosen.
        from edgetwin.sim.radio.channel_sionna import SionnaChannel

        return SionnaChannel(
            config,
            layout,
            mobility,
            carrier_hz=carrier_hz,
            prb_frequencies_hz=prb_frequencies_hz,
            slot_s=slot_s,
            bs_antenna_gain_dbi=bs_antenna_gain_dbi,
            rng=rng,
        )
    if config.backend == "raytraced":
        from edgetwin.sim.radio.channel_raytraced import RayTracedChannel

        return RayTracedChannel(
            config,
            layout,
            mobility,
            carrier_hz=carrier_hz,
            prb_frequencies_hz=prb_frequencies_hz,
            slot_s=slot_s,
            bs_antenna_gain_dbi=bs_antenna_gain_dbi,
            rng=rng,
        )
    return StatisticalChannel(
        config,
        layout,
        mobility,
        carrier_hz=carrier_hz,
        prb_frequencies_hz=prb_frequencies_hz,
        slot_s=slot_s,
        bs_antenna_gain_dbi=bs_antenna_gain_dbi,
        rng=rng,
    )


__all__ = [
    "N_SINUSOIDS",
    "ChannelBatch",
    "ChannelConfig",
    "ChannelModel",
    "StatisticalChannel",
    "exponential_tap_profile",
    "make_channel",
    "next_batches",
    "rms_delay_spread_s",
    "sum_of_sinusoids",
]
