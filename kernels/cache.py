"""Cache-cold operator timing: the last-level cache size and how many operand sets to rotate.

Every timed call should stream its operands from memory, as inside a model. Timing an operator
repeatedly on the same tensors measures it with its operands resident in the last-level cache
(LLC) whenever they fit: a SmolLM-135M gate/up GEMV (7 MB of weights) runs several times faster
than inside a forward pass, where 30 layers' weights stream through the cache between two uses
of the same matrix (issue 16). Building ``n`` independent operand sets whose bytes add up to at
least :data:`ROTATION_FACTOR` × the LLC and calling them in turn evicts each set before its next
use (an LRU-like cache cannot keep data touched more than its size ago).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import torch

__all__ = [
    "ASSUMED_CACHE_BYTES",
    "MAX_OPERAND_SETS",
    "POOL_BUDGET_BYTES",
    "ROTATION_FACTOR",
    "CacheMode",
    "last_level_cache_bytes",
    "operand_sets",
]

CacheMode = Literal["cold", "hot"]

#: Bytes rotated per LLC byte: twice the cache, so that a set is surely evicted (caches are
#: not perfectly LRU, and other data — activations, the interpreter — share them).
ROTATION_FACTOR = 2.0
#: Cache size assumed when the machine does not report one: at least the last-level cache of
#: common server and laptop CPUs (32 MiB on this project's AMD EPYC build machine), so the
#: rotation still evicts; recorded as ``cache_bytes_source: assumed``.
ASSUMED_CACHE_BYTES = 64 * 2**20
#: Most operand sets built per shape (tiny shapes would otherwise need thousands).
MAX_OPERAND_SETS = 64
#: Most bytes of operands built per shape; a single larger set is already cache-cold.
POOL_BUDGET_BYTES = 2 * 2**30

_SYSFS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")


def _cpu_llc_bytes(root: Path = _SYSFS_CACHE) -> int | None:
    """Size of the highest-level data or unified cache of CPU 0 from Linux sysfs, bytes."""
    best: tuple[int, int] | None = None
    for index in sorted(root.glob("index[0-9]*")):
        try:
            level = int((index / "level").read_text().strip())
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        if kind == "Instruction" or not size:
            continue
        unit = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1].upper(), 1)
        try:
            n = int(size.rstrip("KMGkmg")) * unit
        except ValueError:
            continue
        if best is None or level > best[0]:
            best = (level, n)
    return best[1] if best else None


def last_level_cache_bytes(device: torch.device | str = "cpu") -> tuple[int | None, str]:
    """The last-level cache of ``device`` in bytes and where the figure comes from.

    CPU: the highest cache level in Linux sysfs (``/sys/devices/system/cpu/cpu0/cache``), else
    ``sysconf(SC_LEVEL3_CACHE_SIZE)``; CUDA: the L2 of the device properties. ``(None,
    "unknown")`` when the machine does not say (give ``--cache-bytes``).
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        return int(torch.cuda.get_device_properties(dev).L2_cache_size), "cuda L2"
    n = _cpu_llc_bytes()
    if n:
        return n, "sysfs"
    try:
        n = os.sysconf("SC_LEVEL3_CACHE_SIZE")
    except (ValueError, OSError, AttributeError):
        n = 0
    return (int(n), "sysconf") if n and n > 0 else (None, "unknown")


def operand_sets(set_bytes: float, cache_bytes: int | None, mode: CacheMode) -> int:
    """How many independent operand sets to rotate through for one shape.

    ``ceil(ROTATION_FACTOR × cache_bytes / set_bytes)``, at least 1, at most
    :data:`MAX_OPERAND_SETS` and :data:`POOL_BUDGET_BYTES` in all; 1 in ``"hot"`` mode or when
    the cache size is unknown.

    Args:
        set_bytes: Bytes one call touches (the operator's minimum traffic), > 0.
        cache_bytes: Last-level cache size in bytes, or ``None``.
        mode: ``"cold"`` or ``"hot"``.
    """
    if mode not in ("cold", "hot"):
        raise ValueError(f"cache mode must be 'cold' or 'hot', got {mode!r}")
    if mode == "hot" or not cache_bytes or set_bytes <= 0:
        return 1
    wanted = math.ceil(ROTATION_FACTOR * cache_bytes / set_bytes)
    affordable = max(1, int(POOL_BUDGET_BYTES // set_bytes))
    return max(1, min(wanted, MAX_OPERAND_SETS, affordable))
