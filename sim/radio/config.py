"""Configuration of the NR cell's radio, link adaptation and HARQ (consumed by ``cell.py``)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.radio.tdd import TddConfig, check_tdd_numerology
from edgetwin.sim.radio.traffic import PoissonTraffic
from edgetwin.sim.radio.ul_grant import UlGrantConfig
from edgetwin.sim.radio.uplink_power import UplinkPowerConfig


class HarqConfig(StrictConfig):
    """Hybrid ARQ."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_processes: int = Field(16, ge=1, le=16, description="HARQ processes per UE (TS 38.321).")
    max_transmissions: int = Field(
        4, ge=1, le=8, description="First transmission + retransmissions."
    )
    rtt_slots: int = Field(
        8, ge=1, le=64, description="Slots from a transmission to its retransmission."
    )
    chase_combining: bool = Field(True, description="Accumulate effective SINR over transmissions.")


class LinkAdaptationConfig(StrictConfig):
    """Inner-loop MCS selection, OLLA and CQI reporting."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bler_target: float = Field(0.1, gt=0, lt=1, description="Target first-transmission BLER.")
    olla: bool = Field(True, description="Outer-loop link adaptation on HARQ feedback.")
    olla_step_up_db: float = Field(
        0.5, gt=0, le=10, description="Offset increase on NACK; Δ_down = Δ_up·target/(1−target)."
    )
    olla_max_offset_db: float = Field(20.0, gt=0, le=60, description="|offset| bound.")
    cqi_delay_slots: int = Field(
        4, ge=0, le=1000, description="Report delay (CSI processing + feedback)."
    )
    cqi_period_slots: int = Field(
        5, ge=1, le=1000, description="Slots between CSI reports (periodic CSI-RS, TS 38.331)."
    )
    cqi_quantization: Literal["cqi", "none"] = Field(
        "cqi", description="'cqi': 4-bit CQI per PRB (TS 38.214 §5.2.2.1); 'none': exact SINR."
    )


class CellConfig(StrictConfig):
    """An NR downlink carrier and its gNB."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    numerology: Literal[0, 1, 2, 3] = Field(1, description="μ: SCS = 15 kHz · 2^μ (TS 38.211).")
    bandwidth_hz: float = Field(20e6, gt=0, le=400e6, description="Channel bandwidth (TS 38.101).")
    carrier_hz: float = Field(3.5e9, ge=0.5e9, le=100e9, description="Carrier frequency.")
    max_power_dbm: float = Field(46.0, ge=-30, le=60, description="gNB transmit power per cell.")
    ue_noise_figure_db: float = Field(7.0, ge=0, le=30, description="UE receiver noise figure.")
    n_symbols: int = Field(13, ge=1, le=14, description="PDSCH symbols per slot (N_symb^sh).")
    n_layers: Literal[1, 2, 3, 4] = Field(1, description="MIMO layers (ν in TS 38.214 §5.1.3.2).")
    dmrs_re_per_prb: int = Field(12, ge=0, le=72, description="DM-RS REs per PRB per slot.")
    overhead_re_per_prb: Literal[0, 6, 12, 18] = Field(0, description="xOverhead (TS 38.214).")
    mcs_table: Literal[1, 2, 3] = Field(1, description="TS 38.214 Table 5.1.3.1-1/2/3.")
    cqi_table: Literal[1, 2, 3] = Field(1, description="TS 38.214 Table 5.2.2.1-2/3/4.")
    harq: HarqConfig = HarqConfig()
    link_adaptation: LinkAdaptationConfig = LinkAdaptationConfig()
    avg_beta: float = Field(
        0.98, gt=0, lt=1, description="Smoothing of the observed per-UE throughput (obs/metrics)."
    )
    idle_skip: bool = Field(True, description="Skip idle slots with an exact catch-up.")
    tdd: TddConfig | None = Field(
        None,
        description="Duplexing: a TDD slot pattern shared with the uplink (e.g. {pattern: "
        "DDDSU}); null or {duplex: fdd}: every slot carries downlink (paired spectrum).",
    )

    @model_validator(mode="after")
    def _check_bandwidth(self) -> CellConfig:
        from edgetwin.sim.radio.numerology import n_prb_for_bandwidth

        n_prb_for_bandwidth(self.bandwidth_hz, self.numerology)  # raises naming allowed values
        if self.tdd is not None:
            check_tdd_numerology(self.tdd, self.numerology, field="cell.tdd.pattern")
        return self


#: Link-adaptation fields of the downlink's CSI that an uplink (SRS-based) does not use.
_CQI_FIELDS = ("cqi_delay_slots", "cqi_period_slots", "cqi_quantization")


class UplinkConfig(StrictConfig):
    """The NR uplink (PUSCH) of a cell group; carrier, numerology and TDD come from the DL."""

    grant: UlGrantConfig = Field(
        default_factory=UlGrantConfig, description="SR, K2, BSR and configured-grant timing."
    )
    power: UplinkPowerConfig = Field(
        default_factory=UplinkPowerConfig, description="PUSCH power control (TS 38.213 §7.1.1)."
    )
    gnb_noise_figure_db: float = Field(
        5.0, ge=0, le=30, description="gNB receiver noise figure (TR 36.814 Annex A.2: 5 dB)."
    )
    n_symbols: int = Field(
        14, ge=1, le=14, description="PUSCH symbols per slot (≤ grant.pusch_min_symbols)."
    )
    dmrs_re_per_prb: int = Field(12, ge=0, le=72, description="DM-RS REs per PRB per slot.")
    mcs_table: Literal[1, 2, 3] = Field(
        1, description="TS 38.214 Table 5.1.3.1-1/2/3 (PUSCH without transform precoding)."
    )
    harq: HarqConfig = Field(
        default_factory=HarqConfig,
        description="UL HARQ; rtt_slots: from a PUSCH to the earliest PUSCH of its retransmission.",
    )
    link_adaptation: LinkAdaptationConfig = Field(
        default_factory=LinkAdaptationConfig,
        description="BLER target and OLLA (its cqi_* fields do not apply: see srs_*).",
    )
    srs_period_slots: Literal[1, 2, 4, 5, 8, 10, 16, 20, 32, 40, 64, 80, 160, 320] = Field(
        10, description="Period of the SRS the gNB estimates the UL channel from (TS 38.331)."
    )
    srs_delay_slots: int = Field(
        2, ge=0, le=1000, description="Slots from an SRS to the first grant that uses it."
    )
    sr_grant_prb: int = Field(
        4, ge=1, le=275, description="PRBs of the grant answering an SR (buffer still unknown)."
    )
    configured_grant_prb: int = Field(
        4, ge=1, le=275, description="PRBs of a configured-grant occasion (if configured)."
    )
    cap_grant_to_buffer: bool = Field(
        True, description="Trim a UE's PRBs to those its gNB-known buffer needs (+1 PRB)."
    )
    cap_grant_to_power_headroom: bool = Field(
        True,
        description="Trim a power-limited UE's PRBs to those its P_CMAX can fill at the open-loop "
        "power per PRB (power headroom, TS 38.321 §5.4.6).",
    )
    avg_beta: float = Field(
        0.98, gt=0, lt=1, description="Smoothing of the observed per-UE throughput (obs/metrics)."
    )
    idle_skip: bool = Field(True, description="Skip idle slots with an exact catch-up.")
    traffic: PoissonTraffic | None = Field(
        None,
        description="Other users' uplink traffic: Poisson packets into the background UEs' "
        "buffers ({kind: poisson, packet_rate_hz, packet_bits}); null: none.",
    )

    @model_validator(mode="after")
    def _check(self) -> UplinkConfig:
        if self.n_symbols > self.grant.pusch_min_symbols:
            raise ValueError(
                f"n_symbols={self.n_symbols} exceeds grant.pusch_min_symbols="
                f"{self.grant.pusch_min_symbols}: every PUSCH slot must hold the whole PUSCH"
            )
        if self.dmrs_re_per_prb >= 12 * self.n_symbols:
            raise ValueError(
                f"dmrs_re_per_prb={self.dmrs_re_per_prb} leaves no data RE in {self.n_symbols} "
                "symbols (12 REs per symbol)"
            )
        if self.power.delta_mcs:
            raise ValueError("power.delta_mcs=true (Δ_TF) is not supported by the uplink yet")
        # compared with the defaults (not "given") so that a dumped config validates again
        default = LinkAdaptationConfig()
        given = [f for f in _CQI_FIELDS if getattr(self.link_adaptation, f) != getattr(default, f)]
        if given:
            raise ValueError(
                f"link_adaptation.{', '.join(given)} do not apply to the uplink; use "
                "srs_period_slots / srs_delay_slots"
            )
        return self
