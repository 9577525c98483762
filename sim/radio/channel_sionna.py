"""Channel backend ``"sionna"``: Sionna's TR 38.901 system-level models (UMa, UMi, RMa, InH).

Nothing here imports torch or sionna at module import time; they are imported when a
:class:`SionnaChannel` is built (``import sionna.phy`` takes seconds).

How the ChannelBatch is produced:

* **Large scale**: one Sionna model with every cell as a base station and every UE as a user
  terminal (``set_topology`` with our positions, co-sited sectors sharing a ``bs_site_id``)
  draws the LOS state of every link, the shadow fading (Sionna's spatially and cross-correlated
  LSPs) and the O2I penetration loss, once, at construction. The basic path loss is recomputed
  from the UE positions at every batch start that follows a move (Sionna's ``basic_pathloss``
  at the current positions, with the LOS states kept). The BS antenna gain is ours
  (:func:`edgetwin.sim.radio.geometry.antenna_gain_db`, TR 38.901 Table 7.3-1 horizontal cut):
  Sionna sees single-element omnidirectional antennas at both ends, so that both backends
  share one antenna model.
* **Small scale** on serving links: a second Sionna model, one batch example per cell (the cell
  and its UEs), with path loss and shadowing disabled and the LOS states forced to those of the
  large-scale model, gives clusters/rays (drawn once) and the channel impulse response over the
  batch's slots; the PRB gains are ``|H(f_p)|²`` at the PRB centre frequencies
  (``cir_to_ofdm_channel``), mean ≈ 1 (Rician for LOS links, with Sionna's K-factor).
  The Doppler phases of the rays (and of the LOS path) are carried from one batch to the next,
  so the fading is continuous across batch boundaries. Each UE moves along a fixed random
  heading (for the Doppler direction) at the speed its mobility model reports at the batch
  start; the rays keep the geometry of the initial drop (no spatial consistency).

Randomness: the backend draws one seed from the ``rng`` it is given and seeds Sionna's global
random generators with it (``sionna.phy.config.seed``) while it builds its models; torch's
default generator is restored afterwards. All random draws happen at construction.

Differences from the statistical backend, by design of the two models: Sionna's O2I loss uses
the TR 38.901 Table 7.4.3-3 model (20 dB wall loss) below 6 GHz for UMa/UMi, where the
statistical backend uses the low-loss model; Sionna's shadow fading of O2I links uses the O2I
σ_SF (7 dB) and its RMa LOS σ_SF is 8 dB; its fading is a full cluster/ray model with a
Rician K-factor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgetwin.sim.radio.channel import ChannelBackendBase, ChannelBatch, ChannelConfig
from edgetwin.sim.radio.geometry import Layout, antenna_gain_db
from edgetwin.sim.radio.mobility import Mobility
from edgetwin.sim.types import BoolArray, FloatArray
from edgetwin.sim.units import SPEED_OF_LIGHT_MPS


@contextlib.contextmanager
def _seeded_sionna(seed: int) -> Iterator[None]:
    """Seed Sionna's generators; restore torch's default generator on exit."""
    import torch
    from sionna.phy import config as sionna_config

    cpu_state = torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    sionna_config.seed = seed
    try:
        yield
    finally:
        torch.random.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _model(scenario: str, carrier_hz: float, *, pathloss: bool, shadowing: bool) -> Any:
    """A Sionna TR 38.901 system-level channel model with omni single-element arrays."""
    from sionna.phy.channel import tr38901

    def array() -> Any:
        return tr38901.PanelArray(
            num_rows_per_panel=1,
            num_cols_per_panel=1,
            polarization="single",
            polarization_type="V",
            antenna_pattern="omni",
            carrier_frequency=carrier_hz,
        )

    kw: dict[str, Any] = {
        "carrier_frequency": carrier_hz,
        "ut_array": array(),
        "bs_array": array(),
        "direction": "downlink",
        "enable_pathloss": pathloss,
        "enable_shadow_fading": shadowing,
    }
    if scenario == "uma":
        return tr38901.UMa(o2i_model="low", **kw)
    if scenario == "umi":
        return tr38901.UMi(o2i_model="low", **kw)
    if scenario == "rma":
        return tr38901.RMa(**kw)
    if scenario == "inh":
        if not hasattr(tr38901, "InH"):
            raise ValueError(
                "channel.backend='sionna' with scenario='inh' needs "
                "sionna.phy.channel.tr38901.InH, which this Sionna version does not have; "
                "use backend='statistical'"
            )
        return tr38901.InH(indoor_scenario="mixed", **kw)
    raise ValueError(f"scenario must be one of ('uma', 'umi', 'rma', 'inh'), got {scenario!r}")


class SionnaChannel(ChannelBackendBase):
    """Channel batches from Sionna's TR 38.901 UMa/UMi/RMa/InH models (see module docstring).

    Args:
        config: Channel configuration (``backend="sionna"``).
        layout: Cells and UE drops.
        mobility: UE trajectories (positions and speeds are read at every batch start).
        carrier_hz: Carrier frequency, Hz.
        prb_frequencies_hz: PRB centre frequency offsets from the carrier, shape [n_prb], Hz.
        slot_s: Slot duration, s.
        bs_antenna_gain_dbi: Maximum BS antenna gain, dBi.
        rng: The ``"channel"`` random stream (one seed and the UE headings are drawn from it).
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
        import torch
        from sionna.phy.channel import tr38901

        self._init_common(
            config, layout, mobility, carrier_hz, prb_frequencies_hz, slot_s, bs_antenna_gain_dbi
        )
        self._torch = torch
        self._topology_cls = tr38901.Topology
        C, U = self.n_cell, self.n_ue
        scenario = config.scenario
        seed = int(rng.integers(0, 2**31 - 1))
        heading = rng.uniform(0.0, 2.0 * np.pi, (C, U))
        self._heading_xyz = np.stack([np.cos(heading), np.sin(heading), np.zeros_like(heading)], -1)
        indoor = np.ones((C, U), dtype=bool) if scenario == "inh" else layout.indoor
        pos0 = mobility.positions_at(0.0)

        with _seeded_sionna(seed):
            self._dtype = torch.float32
            # --- large scale: all cells x all UEs --------------------------------------------
            self._full = _model(
                scenario, self.carrier_hz, pathloss=True, shadowing=config.shadowing
            )
            if config.los == "probabilistic":
                los_arg: Any = "random"
            else:
                los_arg = config.los == "los"
            self._full_kw: dict[str, Any] = {}
            if scenario == "rma":
                self._full_kw["in_car"] = torch.zeros(1, C * U, dtype=torch.bool)
            self._full.set_topology(
                ut_loc=self._t(pos0.reshape(1, C * U, 3)),
                bs_loc=self._t(layout.bs_position_m[None]),
                ut_orientations=self._t(np.zeros((1, C * U, 3))),
                bs_orientations=self._t(np.zeros((1, C, 3))),
                ut_velocities=self._t(np.zeros((1, C * U, 3))),
                in_state=torch.as_tensor(indoor.reshape(1, C * U)),
                los=los_arg,
                bs_site_ids=torch.as_tensor(np.asarray(layout.site_of_cell, dtype=np.int64)),
                **self._full_kw,
            )
            sc = self._full._scenario
            lsp = self._full._lsp
            # [1, n_cell (tx), C*U] -> [C, U, n_cell (tx)]
            self._los_all = self._links(sc.los).astype(bool)
            pl_total = self._links(lsp.pathloss)
            basic = self._links(sc.basic_pathloss)
            self._extra_db = pl_total - basic  # O2I (and RMa car) penetration, fixed per link
            self._sf_gain_db = (
                10.0 * np.log10(self._links(lsp.sf)) if config.shadowing else np.zeros_like(basic)
            )
            self._basic_db = basic
            self._basic_pos = pos0

            # --- small scale: one batch example per cell, its UEs only ------------------------
            cells = np.arange(C)
            self._los_serving: BoolArray = self._los_all[cells, :, cells]  # [C, U]
            self._fade = _model(scenario, self.carrier_hz, pathloss=False, shadowing=False)
            fade_kw: dict[str, Any] = {}
            if scenario == "rma":
                fade_kw["in_car"] = torch.zeros(C, U, dtype=torch.bool)
            self._fade.set_topology(
                ut_loc=self._t(pos0),
                bs_loc=self._t(layout.bs_position_m[:, None, :]),
                ut_orientations=self._t(np.zeros((C, U, 3))),
                bs_orientations=self._t(np.zeros((C, 1, 3))),
                ut_velocities=self._t(self._heading_xyz),
                in_state=torch.as_tensor(indoor),
                los=torch.as_tensor(self._los_serving[:, None, :]),
                **fade_kw,
            )
            fsc = self._fade._scenario
            self._fade_lsp = self._fade._lsp
            self._rays = self._fade._ray_sampler(self._fade_lsp)
            cir = self._fade._cir_sampler
            phases = getattr(self._rays, "phases", None)
            self._phi0 = phases if phases is not None else cir._step_10(self._rays.aoa.shape)
            self._c_ds = fsc.get_param("cDS") * 1e-9
            self._d3d0 = fsc.distance_3d.clone()
        self._lambda_m = SPEED_OF_LIGHT_MPS / self.carrier_hz
        self._ray_phase = np.zeros(tuple(self._phi0.shape[:-1]))
        self._los_phase = np.zeros(tuple(self._d3d0.shape))
        self._freqs = self._t(self.prb_frequencies_hz)

    # ------------------------------------------------------------------------------------
    def _t(self, x: FloatArray) -> Any:
        return self._torch.as_tensor(np.asarray(x), dtype=self._dtype)

    def _np(self, x: Any) -> FloatArray:
        out: FloatArray = x.detach().cpu().numpy().astype(np.float64)
        return out

    def _links(self, x: Any) -> FloatArray:
        """Sionna [1, n_cell (tx), n_cell * n_ue] -> ours [n_cell, n_ue, n_cell (tx)]."""
        a = x.detach().cpu().numpy()[0].astype(np.float64)
        out: FloatArray = a.reshape(self.n_cell, self.n_cell, self.n_ue).transpose(1, 2, 0)
        return out

    def _basic_pathloss_db(self, pos: FloatArray) -> FloatArray:
        if not np.array_equal(pos, self._basic_pos):
            C, U = self.n_cell, self.n_ue
            self._full.set_topology(
                ut_loc=self._t(pos.reshape(1, C * U, 3)),
                los=self._torch.as_tensor(self._los_all.transpose(2, 0, 1).reshape(1, C, C * U)),
                **self._full_kw,
            )
            self._basic_db = self._links(self._full._scenario.basic_pathloss)
            self._basic_pos = pos
        return self._basic_db

    def _topology(self, speed_mps: FloatArray) -> Any:
        from sionna.phy.channel.utils import deg_2_rad

        sc = self._fade._scenario
        return self._topology_cls(
            velocities=self._t(self._heading_xyz * speed_mps[..., None]),
            moving_end="rx",
            los_aoa=deg_2_rad(sc.los_aoa),
            los_aod=deg_2_rad(sc.los_aod),
            los_zoa=deg_2_rad(sc.los_zoa),
            los_zod=deg_2_rad(sc.los_zod),
            los=sc.los,
            distance_3d=self._d3d0,
            tx_orientations=sc.bs_orientations,
            rx_orientations=sc.ut_orientations,
        )

    def _fading(self, n_slot: int, speed_mps: FloatArray) -> FloatArray:
        """|H(f_p)|² of the serving links, shape [n_slot, n_cell, n_ue, n_prb]."""
        from sionna.phy.channel import cir_to_ofdm_channel

        torch = self._torch
        cir = self._fade._cir_sampler
        topo = self._topology(speed_mps)
        t = torch.arange(n_slot, dtype=self._dtype) * self.slot_s
        with torch.no_grad():
            # Rays: initial phases plus the Doppler phase accumulated over earlier batches.
            # LOS path: exp(−j2π d/λ)·e^{jθ} = exp(−j2π (d − θλ/2π)/λ).
            phi = self._phi0 + self._t(self._ray_phase)[..., None]
            topo.distance_3d = self._d3d0 - self._t(self._los_phase * self._lambda_m / (2 * np.pi))
            h, delays = cir._step_11(phi, topo, self._fade_lsp.k_factor, self._rays, t, self._c_ds)
            # As SystemLevelChannel.__call__ (downlink): [C, U, 1, 1, 1, n_path, n_slot]
            h = h.permute(0, 2, 4, 1, 5, 3, 6)
            delays = delays.permute(0, 2, 1, 3)
            hf = cir_to_ofdm_channel(self._freqs, h, delays)  # [C, U, 1, 1, 1, n_slot, n_prb]
            # --- carry the Doppler phases to the next batch (accumulated in float64) -------
            r = self._rays
            dur = torch.tensor([n_slot * self.slot_s], dtype=self._dtype)
            rot = cir._step_11_doppler_matrix(topo, r.aoa, r.aod, r.zoa, r.zod, dur)
            rot_los = cir._step_11_doppler_matrix(
                topo,
                topo.los_aoa[..., None, None],
                topo.los_aod[..., None, None],
                topo.los_zoa[..., None, None],
                topo.los_zod[..., None, None],
                dur,
            )
        two_pi = 2.0 * np.pi
        self._ray_phase = np.mod(self._ray_phase + self._np(torch.angle(rot[..., 0])), two_pi)
        self._los_phase = np.mod(
            self._los_phase + self._np(torch.angle(rot_los[..., 0, 0, 0])), two_pi
        )
        power = (hf.abs() ** 2)[:, :, 0, 0, 0].detach().cpu().numpy().astype(np.float64)
        out: FloatArray = power.transpose(2, 0, 1, 3)
        return out

    def next_batch(self) -> ChannelBatch:
        """The batch following the previous one (the first starts at slot 0)."""
        first = self._next_slot
        n_slot = self.config.batch_slots
        self._next_slot += n_slot
        pos = self.mobility.positions_at(first * self.slot_s)
        speed = np.asarray(self.mobility.speed_mps, dtype=np.float64)
        pl = self._basic_pathloss_db(pos) + self._extra_db  # [C, U, C]
        g_db = (
            antenna_gain_db(self.layout, pos, max_gain_dbi=self.bs_antenna_gain_dbi)
            - pl
            + self._sf_gain_db
        )
        ls: FloatArray = 10.0 ** (g_db / 10.0)
        cells = np.arange(self.n_cell)
        ls_serving = ls[cells, :, cells]
        if self.config.fading == "none":
            gain = np.empty((n_slot, self.n_cell, self.n_ue, self.n_prb))
            gain[...] = ls_serving[None, :, :, None]
        else:
            gain = self._fading(n_slot, speed) * ls_serving[None, :, :, None]
        return ChannelBatch(
            first_slot=first,
            gain=gain,
            large_scale_gain=ls,
            pathloss_db=pl[cells, :, cells],
            los=self._los_serving.copy(),
        )


__all__ = ["SionnaChannel"]
