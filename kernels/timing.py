"""Timing of a callable (warm-up, repeats, median and p90) and the metadata of a profile run.

On CUDA each call is bracketed by ``torch.cuda.Event``s (device time, no host sync inside the
loop); on CPU by ``time.perf_counter``.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class TimingResult:
    """Summary of repeated timings.

    Attributes:
        median_s: Median wall (CPU) or device (CUDA) time of one call, seconds.
        p90_s: 90th percentile of the same samples, seconds (>= ``median_s``).
        n_repeats: Number of timed calls.
        samples_s: The timed samples, seconds.
    """

    median_s: float
    p90_s: float
    n_repeats: int
    samples_s: tuple[float, ...]


def time_callable(
    fn: Callable[[], object],
    *,
    device: torch.device | str = "cpu",
    warmup: int = 2,
    repeats: int = 10,
    min_repeats: int = 3,
    max_time_s: float = 1.0,
) -> TimingResult:
    """Time ``fn``: ``warmup`` untimed calls, then up to ``repeats`` timed calls.

    Timing stops early (after at least ``min_repeats`` calls) once ``max_time_s`` of timed calls
    has elapsed, so that large shapes stay affordable.

    Args:
        fn: Zero-argument callable running the operator once.
        device: Where ``fn`` runs; CUDA devices are timed with CUDA events.
        warmup: Untimed calls first (allocator, caches, kernel selection).
        repeats: Maximum number of timed calls, >= 1.
        min_repeats: Minimum number of timed calls, 1 <= min_repeats <= repeats.
        max_time_s: Budget of timed calls in seconds.

    Returns:
        Median and p90 over the samples.
    """
    if repeats < 1 or not 1 <= min_repeats <= repeats:
        raise ValueError(f"need 1 <= min_repeats <= repeats, got {min_repeats}, {repeats}")
    dev = torch.device(device)
    for _ in range(max(warmup, 0)):
        fn()
    samples: list[float] = []
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        total = 0.0
        while len(samples) < repeats:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1e3)  # ms -> s
            total += samples[-1]
            if len(samples) >= min_repeats and total >= max_time_s:
                break
    else:
        total = 0.0
        while len(samples) < repeats:
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
            total += samples[-1]
            if len(samples) >= min_repeats and total >= max_time_s:
                break
    arr = np.asarray(samples)
    # Guard against a zero reading from a coarse clock (profiles require time > 0).
    arr = np.maximum(arr, 1e-9)
    return TimingResult(
        median_s=float(np.median(arr)),
        p90_s=float(np.percentile(arr, 90)),
        n_repeats=len(samples),
        samples_s=tuple(float(s) for s in arr),
    )


def device_name(device: torch.device | str) -> str:
    """Human-readable name of the device (GPU model, or the CPU model string)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_commit(repo: Path | None = None) -> str | None:
    """Current git commit of ``repo`` (default: this package's checkout), or None."""
    where = repo or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_metadata(device: torch.device | str, dtype: torch.dtype, **extra: Any) -> dict[str, Any]:
    """Sidecar metadata of a profile run (device, dtype, versions, threads, commit, date)."""
    dev = torch.device(device)
    meta: dict[str, Any] = {
        "device": dev.type,
        "device_name": device_name(dev),
        "dtype": str(dtype).removeprefix("torch."),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "num_threads": torch.get_num_threads(),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    meta.update(extra)
    return meta
