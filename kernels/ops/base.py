"""What every operator provides: a shape grid, FLOP and byte counts, and a runner to time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from edgetwin.kernels.models import ModelSpec


@dataclass(frozen=True)
class Shape:
    """One measured shape; the fields are the shape columns of a profile row.

    Attributes:
        n_tokens: Tokens processed (GEMM rows, prefill chunk length).
        batch_size: Sequences (decode, LM head) or distinct adapters (LoRA).
        context_len: Cached KV tokens per sequence.
        rank: LoRA rank.
        bits: KV-cache quantization width.
        n_bytes: Adapter file size in bytes.
        tp: Tensor-parallel degree (always 1 here).
    """

    n_tokens: int = 0
    batch_size: int = 1
    context_len: int = 0
    rank: int = 0
    bits: int = 0
    n_bytes: int = 0
    tp: int = 1


#: A runner: builds tensors for a shape and returns the zero-argument callable to time.
RunnerFactory = Callable[[ModelSpec, Shape, torch.device, torch.dtype, Path], Callable[[], object]]


@dataclass(frozen=True)
class OpSpec:
    """One operator: how to enumerate shapes, count work and build a timed callable.

    Attributes:
        name: Operator name, a key of ``edgetwin.sim.compute.profiles.OPS``.
        grid: ``grid(model, quick)`` -> the shapes to measure.
        flops: ``flops(model, shape, elt_bytes)`` -> floating-point operations (float).
        bytes_moved: ``bytes_moved(model, shape, elt_bytes)`` -> minimum DRAM traffic in bytes.
        make_runner: ``make_runner(model, shape, device, dtype, workdir)`` -> callable to time.
        footprint: ``footprint(model, shape, elt_bytes)`` -> bytes one runner allocates, when
            far more than it moves per call (an embedding table gathered a few rows at a
            time); ``None``: ``bytes_moved``. Sizes the cache-cold operand pool.
    """

    name: str
    grid: Callable[[ModelSpec, bool], list[Shape]]
    flops: Callable[[ModelSpec, Shape, int], float]
    bytes_moved: Callable[[ModelSpec, Shape, int], float]
    make_runner: RunnerFactory
    footprint: Callable[[ModelSpec, Shape, int], float] | None = None

    def footprint_bytes(self, model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
        """Bytes one operand set occupies (see ``footprint``)."""
        fn = self.footprint or self.bytes_moved
        return fn(model, shape, elt_bytes)


def randn(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Random normal tensor (values do not affect latency), shape ``shape``."""
    return torch.randn(shape, device=device, dtype=dtype)
