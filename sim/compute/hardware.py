"""Declared hardware: what an accelerator offers, as its vendor states it, and the presets.

A server's hardware is declared, never hard-coded: a ``hardware:`` block in a scenario (any
GPU) or the name of a preset below. The roofline cost model reads the dense bf16/fp16 peak and
the memory bandwidth, the KV-cache sizing reads the memory, and the numbers are recorded in the
run's summary. Every preset cites its datasheet; figures are dense (no structured sparsity),
tensor-core peaks for bf16/fp16 with fp32 accumulation unless noted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import Field, ValidationError, model_validator

from edgetwin.sim.configbase import StrictConfig

__all__ = ["HARDWARE_PRESETS", "HardwareSpec", "hardware_name", "resolve_hardware"]

Dtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8"]
_GB = 1e9
_GIB = 1024.0**3


class HardwareSpec(StrictConfig):
    """One accelerator (or a CPU socket) as declared by its vendor.

    Attributes:
        name: Hardware id (profile folders are looked up under it), e.g. ``l40s``.
        memory_bytes: Device memory, bytes.
        mem_bandwidth_bytes_per_s: Peak memory bandwidth, bytes/s.
        peak_flops: Dense peak FLOP/s per dtype; needs ``bf16`` or ``fp16`` (the roofline's).
        interconnect_bandwidth_bytes_per_s: Device-to-device bandwidth per direction (NVLink,
            or the PCIe link when there is none), bytes/s.
        interconnect_latency_s: Device-to-device latency, s (None: not published).
        power_w: Board power (TDP), W.
        source: Where the numbers come from.
    """

    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    memory_bytes: float = Field(..., gt=0, le=1e13)
    mem_bandwidth_bytes_per_s: float = Field(..., gt=0, le=1e14)
    peak_flops: dict[Dtype, float] = Field(..., min_length=1)
    interconnect_bandwidth_bytes_per_s: float | None = Field(None, gt=0, le=1e13)
    interconnect_latency_s: float | None = Field(None, ge=0, le=1.0)
    power_w: float | None = Field(None, gt=0, le=1e5)
    source: str = ""

    @model_validator(mode="after")
    def _check_flops(self) -> HardwareSpec:
        bad = {k: v for k, v in self.peak_flops.items() if not 0 < v <= 1e17}
        if bad:
            raise ValueError(f"peak_flops values must be in (0, 1e17] FLOP/s, got {bad}")
        if "bf16" not in self.peak_flops and "fp16" not in self.peak_flops:
            raise ValueError(
                "peak_flops needs a 'bf16' or 'fp16' entry (the roofline's dtype); "
                f"got {sorted(self.peak_flops)}"
            )
        return self

    @property
    def dense_flops(self) -> float:
        """Dense bf16 (else fp16) peak FLOP/s: what the roofline cost model uses."""
        return self.peak_flops.get("bf16") or self.peak_flops["fp16"]


def _preset(**kw: Any) -> HardwareSpec:
    return HardwareSpec.model_validate(kw)


#: Built-in hardware. Memory of the A100, H100 and RTX 4090 is kept in GiB as in earlier
#: releases (their KV-cache defaults stay the same); the others use the datasheet's GB.
HARDWARE_PRESETS: Final[dict[str, HardwareSpec]] = {
    p.name: p
    for p in (
        _preset(
            name="a100",
            memory_bytes=80 * _GIB,
            mem_bandwidth_bytes_per_s=2.0e12,
            peak_flops={
                "bf16": 312e12,
                "fp16": 312e12,
                "tf32": 156e12,
                "fp32": 19.5e12,
                "int8": 624e12,
            },
            interconnect_bandwidth_bytes_per_s=300e9,
            power_w=400.0,
            source="NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB): 2,039 GB/s (rounded to "
            "2.0 TB/s here), NVLink 600 GB/s bidirectional",
        ),
        _preset(
            name="h100",
            memory_bytes=80 * _GIB,
            mem_bandwidth_bytes_per_s=3.35e12,
            peak_flops={
                "bf16": 989e12,
                "fp16": 989e12,
                "fp8": 1979e12,
                "tf32": 494.5e12,
                "fp32": 67e12,
            },
            interconnect_bandwidth_bytes_per_s=450e9,
            power_w=700.0,
            source="NVIDIA H100 Tensor Core GPU datasheet (SXM5 80GB): NVLink 900 GB/s "
            "bidirectional",
        ),
        _preset(
            name="h200",
            memory_bytes=141 * _GB,
            mem_bandwidth_bytes_per_s=4.8e12,
            peak_flops={"bf16": 989e12, "fp16": 989e12, "fp8": 1979e12, "fp32": 67e12},
            interconnect_bandwidth_bytes_per_s=450e9,
            power_w=700.0,
            source="NVIDIA H200 Tensor Core GPU datasheet (SXM 141GB): NVLink 900 GB/s "
            "bidirectional",
        ),
        _preset(
            name="l40s",
            memory_bytes=48 * _GB,
            mem_bandwidth_bytes_per_s=864e9,
            peak_flops={
                "bf16": 362.05e12,
                "fp16": 362.05e12,
                "fp8": 733e12,
                "fp32": 91.6e12,
            },
            interconnect_bandwidth_bytes_per_s=32e9,
            power_w=350.0,
            source="NVIDIA L40S datasheet: no NVLink, PCIe Gen4 x16 (64 GB/s bidirectional)",
        ),
        _preset(
            name="rtx4090",
            memory_bytes=24 * _GIB,
            mem_bandwidth_bytes_per_s=1.0e12,
            peak_flops={"bf16": 165e12, "fp16": 165e12, "fp32": 82.6e12},
            interconnect_bandwidth_bytes_per_s=32e9,
            power_w=450.0,
            source="NVIDIA Ada Lovelace architecture whitepaper (GeForce RTX 4090): fp16/bf16 "
            "tensor with fp32 accumulate 165.2 TFLOP/s and 1,008 GB/s (165 and 1.0 TB/s here), "
            "PCIe Gen4 x16",
        ),
        _preset(
            name="rtx-pro-6000",
            memory_bytes=96 * _GB,
            mem_bandwidth_bytes_per_s=1.792e12,
            peak_flops={"bf16": 500e12, "fp16": 500e12, "fp32": 125e12},
            interconnect_bandwidth_bytes_per_s=64e9,
            power_w=600.0,
            source="NVIDIA RTX PRO 6000 Blackwell (Workstation/Server Edition) announcement: "
            "96 GB GDDR7, 1,792 GB/s, 125 TFLOP/s fp32, 4,000 AI TOPS (fp4, sparse); bf16 dense "
            "derived as 4,000 / 8; PCIe Gen5 x16",
        ),
        _preset(
            name="a6000",
            memory_bytes=48 * _GB,
            mem_bandwidth_bytes_per_s=768e9,
            peak_flops={"bf16": 154.8e12, "fp16": 154.8e12, "fp32": 38.7e12},
            interconnect_bandwidth_bytes_per_s=56.25e9,
            power_w=300.0,
            source="NVIDIA RTX A6000 datasheet: NVLink 112.5 GB/s bidirectional",
        ),
        _preset(
            name="rtx3090",
            memory_bytes=24 * _GB,
            mem_bandwidth_bytes_per_s=936e9,
            peak_flops={"bf16": 71e12, "fp16": 71e12, "fp32": 35.6e12},
            interconnect_bandwidth_bytes_per_s=56.25e9,
            power_w=350.0,
            source="NVIDIA Ampere GA102 whitepaper (GeForce RTX 3090): fp16/bf16 tensor with "
            "fp32 accumulate, NVLink 112.5 GB/s bidirectional",
        ),
    )
}


def hardware_name(value: str | HardwareSpec) -> str:
    """The hardware id of a preset name, a free id or a declared spec."""
    return value.name if isinstance(value, HardwareSpec) else value


def resolve_hardware(value: str | HardwareSpec | Mapping[str, Any]) -> HardwareSpec | None:
    """A declared spec as is, a mapping validated as one, a preset by name, else None.

    A name that is no preset (``cpu``, or a GPU known only through its profiles) has no
    declared numbers: None.

    Raises:
        ValueError: A mapping that is not a valid :class:`HardwareSpec` (one line per problem).
    """
    if isinstance(value, HardwareSpec):
        return value
    if isinstance(value, Mapping):
        try:
            return HardwareSpec.model_validate(dict(value))
        except ValidationError as exc:
            first = exc.errors()[0]
            msg = str(first["msg"]).removeprefix("Value error, ")
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"hardware block: {where + ': ' if where else ''}{msg}") from None
    return HARDWARE_PRESETS.get(value)
