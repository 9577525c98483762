"""Loading one LoRA adapter's weights from a file into device memory.

The adapter targets ``q_proj`` and ``v_proj`` of every layer (PEFT's default for Llama-style
models), so it holds ``L r ((d + H d_h) + (d + H_kv d_h))`` values (Hu et al. 2021, LoRA §4).
The file is written once per shape to a temporary folder, then each timed call loads it. It is
a ``safetensors`` file when the ``safetensors`` package is installed, otherwise a
``torch.save`` file read back with ``torch.load(weights_only=True)``; the OS page cache is warm
after the first read, so this measures deserialization + copy, not a cold disk read.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import torch

from edgetwin.kernels.models import ModelSpec
from edgetwin.kernels.ops.base import OpSpec, Shape, randn

RANKS_FULL = (2, 4, 8, 16, 24, 32, 48, 64, 96, 128)
RANKS_QUICK = (4, 16)
HAS_SAFETENSORS = importlib.util.find_spec("safetensors") is not None
#: File format used by the runner (recorded in profile metadata).
FILE_FORMAT = "safetensors" if HAS_SAFETENSORS else "torch.save"


def adapter_tensors_shapes(model: ModelSpec, rank: int) -> dict[str, tuple[int, int]]:
    """Name -> shape of every LoRA matrix of the adapter (A: ``[r, d_in]``, B: ``[d_out, r]``)."""
    d = model.hidden_size
    shapes: dict[str, tuple[int, int]] = {}
    for layer in range(model.n_layers):
        for proj, d_out in (("q_proj", model.q_size), ("v_proj", model.kv_size)):
            shapes[f"layers.{layer}.{proj}.lora_A"] = (rank, d)
            shapes[f"layers.{layer}.{proj}.lora_B"] = (d_out, rank)
    return shapes


def adapter_n_bytes(model: ModelSpec, rank: int, elt_bytes: int) -> int:
    """Payload bytes ``e L r (2 d + H d_h + H_kv d_h)`` of an adapter (Hu et al. 2021)."""
    d = model.hidden_size
    return elt_bytes * model.n_layers * rank * (2 * d + model.q_size + model.kv_size)


def _grid(model: ModelSpec, quick: bool) -> list[Shape]:
    # n_bytes is filled by the profiler once the dtype is known (it scales with elt_bytes).
    return [Shape(rank=r) for r in (RANKS_QUICK if quick else RANKS_FULL)]


def _flops(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
    """No arithmetic: loading is pure data movement."""
    return 0.0


def _bytes(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
    """``n_bytes`` read from the file and written to device memory (``2 n_bytes``)."""
    return 2.0 * adapter_n_bytes(model, shape.rank, elt_bytes)


def _runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
) -> Callable[[], object]:
    tensors = {
        name: randn(s, torch.device("cpu"), dtype)
        for name, s in adapter_tensors_shapes(model, shape.rank).items()
    }
    path = workdir / f"adapter_{model.model_id}_r{shape.rank}_{str(dtype).split('.')[-1]}"
    if HAS_SAFETENSORS:
        from safetensors.torch import load_file, save_file

        save_file(tensors, str(path))
        dev = str(device)
        return lambda: load_file(str(path), device=dev)
    torch.save(tensors, path)
    return lambda: torch.load(path, map_location=device, weights_only=True)


SPECS = (OpSpec("adapter_load", _grid, _flops, _bytes, _runner),)
