"""Sections of a scenario that join the radio and LLM serving: ``network``, ``nodes``, ``workload``.

They are optional sections of the one :class:`~edgetwin.scenarios.schema.ScenarioConfig`
(``DESIGN.md``, "One scenario model"): a radio-only scenario leaves them out; an edge–cloud
scenario gives ``nodes`` (where requests can run), ``workload`` (who sends them) and
``network`` (the wired hops behind the gNB). Example::

    nodes:
      device: {model: smollm-360m, hardware: cpu}      # every LLM UE's own compute
      edge: {model: llama-3.1-8b, hardware: l40s}      # a GPU server at the site
      cloud: {model: llama-3.1-8b, hardware: h100, replicas: 4}
    network:
      backhaul: {latency_s: 0.0005, bandwidth_bps: 10e9}   # gNB <-> edge server
      wan: {latency_s: 0.030, bandwidth_bps: 1e9}          # gNB <-> cloud region
    workload:
      llm_ues_per_cell: 20                              # the rest carry background traffic
      sessions: {think_time_mean_s: 20, output_tokens_mean: 250}
    speculative:                                        # draft on the UE, verify in the cloud
      mode: distributed
      payload: ids
      acceptance: {kind: iid, task: overall, k_max: 8}

``speculative`` (:class:`~edgetwin.sim.compute.specdec.SpecDecConfig`, defined next to the
rounds it configures) turns the cloud's requests into speculative ones and adds the ``draft``
decision family (``policies.draft``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from edgetwin.scenarios.serving_schema import ServingSpec, WorkloadAdapters, WorkloadSpec
from edgetwin.sim.compute.specdec import SpecDecConfig
from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.net.journey import JourneyConfig
from edgetwin.sim.net.link import LinkConfig
from edgetwin.sim.workload.sessions import ChatSessionConfig

__all__ = [
    "DeviceSpec",
    "NetworkConfig",
    "NodesConfig",
    "SpecDecConfig",
    "UeWorkloadConfig",
    "device_hardware_ids",
]


def device_hardware_ids() -> list[str]:
    """Hardware ids a :class:`DeviceSpec` accepts: ``cpu`` and the Jetson devices."""
    from edgetwin.sim.compute.device_roofline import EDGE_DEVICES

    return ["cpu", *sorted(EDGE_DEVICES)]


class _Frozen(StrictConfig):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeviceSpec(_Frozen):
    """The compute of every LLM UE: a small model, its runtime's cost model, power, memory.

    ``hardware: cpu`` times the model with the CPU profiles measured by ``kernels/`` (shipped,
    or ``profiles``); a Jetson id (``jetson-orin-nano-8gb``, ``jetson-orin-nano-super``) uses
    the roofline fitted to the Jetson AI Lab table (``device_roofline``).
    """

    model: str = Field("smollm-360m", min_length=1, description="Model id run on the device.")
    hardware: str = Field(
        "cpu",
        min_length=1,
        description="'cpu' (measured profiles) or a Jetson id: jetson-orin-nano-8gb, "
        "jetson-orin-nano-super.",
    )
    profiles: str = Field(
        "shipped", min_length=1, description="Profile folder for 'cpu', or 'shipped'."
    )
    memory_bytes: float = Field(
        4e9, gt=0, le=1e13, description="Memory the model may use (weights + KV), bytes."
    )
    active_power_w: float = Field(
        4.0, ge=0, le=1e4, description="SoC power while computing, W (phone SoC: 3–6 W)."
    )
    idle_power_w: float = Field(0.3, ge=0, le=1e4, description="SoC power while idle, W.")
    battery_j: float | None = Field(
        None, gt=0, le=1e9, description="Energy available per UE, J; null: mains powered."
    )
    tx_power_efficiency: float = Field(
        0.3,
        gt=0,
        le=1,
        description="RF power / DC power of the UE's transmitter (PA efficiency), for the "
        "transmit energy of the uplink.",
    )

    @field_validator("hardware")
    @classmethod
    def _known_hardware(cls, value: str) -> str:
        allowed = device_hardware_ids()
        if value not in allowed:
            raise ValueError(f"unknown device hardware {value!r}; allowed: {', '.join(allowed)}")
        return value


class NodesConfig(_Frozen):
    """Where a request can run: on the UE, at the site's edge server, in the cloud."""

    device: DeviceSpec | None = Field(None, description="Every LLM UE's own compute.")
    edge: ServingSpec | None = Field(None, description="GPU server(s) at the site.")
    cloud: ServingSpec | None = Field(None, description="Replicas in a cloud region.")

    @model_validator(mode="after")
    def _at_least_one(self) -> NodesConfig:
        if self.device is None and self.edge is None and self.cloud is None:
            raise ValueError("nodes needs at least one of device, edge, cloud")
        return self


class NetworkConfig(_Frozen):
    """The hops of a request: the radio, the wired links behind the gNB, the message sizes.

    ``radio: ideal`` and a ``null`` link make that hop instantaneous (no delay, no limit): the
    serving-only replay is the special case with everything ideal.
    """

    radio: Literal["nr", "ideal"] = Field(
        "nr", description="'nr': the NR uplink/downlink carry the messages; 'ideal': no delay."
    )
    backhaul: LinkConfig | None = Field(
        default_factory=lambda: LinkConfig(latency_s=0.0005, bandwidth_bps=10e9),
        description="gNB <-> edge server, per direction (null: ideal).",
    )
    wan: LinkConfig | None = Field(
        default_factory=lambda: LinkConfig(latency_s=0.030, bandwidth_bps=1e9),
        description="gNB <-> cloud region, per direction (null: ideal).",
    )
    journey: JourneyConfig = Field(
        default_factory=JourneyConfig, description="Bytes per token, overheads, token chunking."
    )


class UeWorkloadConfig(_Frozen):
    """Who sends LLM requests: the first ``llm_ues_per_cell`` UEs of each cell.

    Either closed-loop chat ``sessions`` (one per UE: a turn waits for the previous answer and
    a think time), or an open-loop ``trace`` (a trace file, ``azure-conv``, ``azure-code``, or a
    generated arrival process, as in a serving scenario) whose requests are dealt to the LLM
    UEs in turn (request i to UE i mod n). The other UEs of the cell carry the scenario's
    ``traffic`` (background users); the LLM UEs carry only their own messages.
    """

    llm_ues_per_cell: int = Field(..., ge=1, le=10_000, description="LLM UEs per cell.")
    sessions: ChatSessionConfig = Field(
        default_factory=ChatSessionConfig, description="Chat turns, think time, token counts."
    )
    trace: WorkloadSpec | None = Field(
        None, description="Open-loop requests instead of sessions (serving workload syntax)."
    )

    adapters: WorkloadAdapters | None = Field(
        None,
        description="LoRA tasks of the UEs' requests: each request reaching an edge server "
        "brings a task and a context and is routed there by adapters.router (needs "
        "nodes.edge.lora with the same n_adapters).",
    )

    @model_validator(mode="after")
    def _sessions_or_trace(self) -> UeWorkloadConfig:
        if self.trace is not None and "sessions" in self.model_fields_set:
            raise ValueError("give either sessions or trace, not both")
        return self

    ttft_slo_s: float = Field(1.0, gt=0, le=1e4, description="TTFT SLO at the UE, s.")
    tpot_slo_s: float = Field(0.1, gt=0, le=1e3, description="TPOT SLO at the UE, s.")
