"""Measure every operator of a model on a device and write the profile CSVs + ``meta.json``.

Output layout (schema of ``edgetwin.sim.compute.profiles``)::

    out_dir/<device>/<model>/<op>.csv    one row per shape
    out_dir/<device>/<model>/meta.json   device name, dtype, versions, threads, commit, date
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from edgetwin.kernels import hf
from edgetwin.kernels.cache import (
    ASSUMED_CACHE_BYTES,
    ROTATION_FACTOR,
    CacheMode,
    last_level_cache_bytes,
    operand_sets,
)
from edgetwin.kernels.models import ModelSpec, get_model
from edgetwin.kernels.ops import OP_SPECS, adapter_io, layer
from edgetwin.kernels.timing import TimingResult, run_metadata, time_callable
from edgetwin.sim.compute.profiles import KERNELS_SOURCE, PROFILE_COLUMNS, write_profile
from edgetwin.sim.fsio import check_creatable

#: Default dtype per device type (CPU GEMMs in bf16/fp16 are not representative of serving).
DEFAULT_DTYPE = {"cpu": torch.float32, "cuda": torch.float16}
SOURCE = KERNELS_SOURCE


def _resolve_ops(ops: Sequence[str] | None) -> list[str]:
    if ops is None:
        return list(OP_SPECS)
    unknown = [o for o in ops if o not in OP_SPECS]
    if unknown:
        raise ValueError(f"unknown op(s) {unknown}; known: {sorted(OP_SPECS)}")
    return list(dict.fromkeys(ops))


def profile(
    model_id: str | ModelSpec,
    device: str,
    out_dir: str | Path,
    ops: Sequence[str] | None = None,
    quick: bool = False,
    *,
    dtype: torch.dtype | None = None,
    repeats: int | None = None,
    max_time_s: float | None = None,
    cache: CacheMode = "cold",
    cache_bytes: int | None = None,
    framework: str = "auto",
) -> dict[str, Path]:
    """Time each operator over its shape grid and write one CSV per operator.

    By default each shape is timed **cache-cold**: the runner is built for several independent
    operand sets whose bytes add up to twice the last-level cache, and the timed calls rotate
    through them, so each call streams its weights and KV from memory as inside a forward pass
    (:mod:`edgetwin.kernels.cache`). ``cache="hot"`` times one operand set over and over (the
    operator with its operands cache-resident when they fit). Adapter loading (disk I/O) is
    always timed on one file. The ``decoder_layer`` operator (a whole layer) is timed as
    ``framework`` runs it (:mod:`edgetwin.kernels.ops.layer`).

    Args:
        model_id: Registry id (``"smollm-135m"``) or a :class:`ModelSpec`.
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:N"`` allowed; the folder is the device type).
        out_dir: Root folder; files go to ``out_dir/<device>/<model>/``.
        ops: Operators to measure (default all of ``OP_SPECS``).
        quick: Small grids and few repeats (tests, smoke runs).
        dtype: Tensor dtype (default float32 on CPU, float16 on CUDA).
        repeats: Maximum timed calls per shape (default 3 if quick else 10).
        max_time_s: Timing budget per shape in seconds (default 0.05 if quick else 0.5).
        cache: ``"cold"`` (default) or ``"hot"``.
        cache_bytes: Last-level cache size in bytes (default: read from the machine, see
            :func:`~edgetwin.kernels.cache.last_level_cache_bytes`).
        framework: Framework of the ``decoder_layer`` operator: ``transformers``, ``torch``
            or ``auto`` (``transformers`` when it is installed, else ``torch``).

    Returns:
        Operator -> path of the CSV written (plus ``"meta"`` -> ``meta.json``).

    Raises:
        ValueError: Unknown model id, operator, device or framework, or an ``out_dir`` that
            cannot be made.
        TransformersMissingError: ``framework="transformers"`` without transformers.
    """
    model = model_id if isinstance(model_id, ModelSpec) else get_model(model_id)
    op_names = _resolve_ops(ops)
    fw = layer.resolve_framework(framework)
    fw_version = hf.version() if fw == "transformers" else str(torch.__version__)
    framework_ops = layer.framework_specs(fw)
    if not re.fullmatch(r"cpu|cuda(:[0-9]+)?", str(device)):  # torch also takes 'cpu:5'
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    dt = dtype or DEFAULT_DTYPE[dev.type]
    elt = torch.empty((), dtype=dt).element_size()
    n_rep = repeats or (3 if quick else 10)
    budget = max_time_s if max_time_s is not None else (0.05 if quick else 0.5)
    folder = Path(out_dir) / dev.type / model.model_id
    check_creatable(folder, "--out")
    dtype_name = str(dt).removeprefix("torch.")
    if cache_bytes is not None and not (isinstance(cache_bytes, int) and cache_bytes > 0):
        raise ValueError(f"cache_bytes must be a positive integer, got {cache_bytes!r}")
    llc, llc_source = (
        (cache_bytes, "given") if cache_bytes is not None else last_level_cache_bytes(dev)
    )
    if cache == "cold" and llc is None:  # e.g. macOS: no sysfs, no SC_LEVEL3_CACHE_SIZE
        llc, llc_source = ASSUMED_CACHE_BYTES, "assumed"
        warnings.warn(
            f"the last-level cache size of this machine is unknown; assuming "
            f"{ASSUMED_CACHE_BYTES // 2**20} MiB for cache-cold timing (give --cache-bytes N)",
            stacklevel=2,
        )

    tables: dict[str, pd.DataFrame] = {}
    with tempfile.TemporaryDirectory(prefix="edgetwin-kernels-") as tmp, torch.inference_mode():
        for op in op_names:
            spec = framework_ops.get(op) or OP_SPECS[op]
            rows: list[dict[str, Any]] = []
            for grid_shape in spec.grid(model, quick):
                shape = grid_shape
                if op == "adapter_load":
                    nb = adapter_io.adapter_n_bytes(model, shape.rank, elt)
                    shape = dataclasses.replace(shape, n_bytes=nb)
                n_sets = 1
                if op != "adapter_load":  # disk I/O: its cold state is the page cache's
                    n_sets = operand_sets(spec.footprint_bytes(model, shape, elt), llc, cache)
                runners = [
                    spec.make_runner(model, shape, dev, dt, Path(tmp)) for _ in range(n_sets)
                ]
                turn = itertools.cycle(runners)

                def fn(turn: itertools.cycle[Any] = turn) -> object:
                    return next(turn)()

                res: TimingResult = time_callable(
                    fn,
                    device=dev,
                    warmup=max(1 if quick else 2, n_sets),  # each set touched once first
                    repeats=n_rep,
                    max_time_s=budget,
                )
                del fn, runners, turn
                rows.append(
                    {
                        "op": op,
                        "model": model.model_id,
                        "device": dev.type,
                        "dtype": dtype_name,
                        **dataclasses.asdict(shape),
                        "flops": spec.flops(model, shape, elt),
                        "bytes_moved": spec.bytes_moved(model, shape, elt),
                        "time_median_s": res.median_s,
                        "time_p90_s": res.p90_s,
                        "n_repeats": res.n_repeats,
                        "source": SOURCE,
                    }
                )
            tables[op] = pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))

    # No file output until every measurement has finished.
    written = {op: write_profile(df, folder / f"{op}.csv") for op, df in tables.items()}
    meta = run_metadata(
        dev,
        dt,
        model=dataclasses.asdict(model),
        ops=op_names,
        # a folder built up over several runs: every operator table it now holds
        ops_in_folder=sorted(p.stem for p in folder.glob("*.csv")),
        quick=quick,
        max_repeats=n_rep,
        max_time_per_shape_s=budget,
        adapter_file_format=adapter_io.FILE_FORMAT,
        cache_mode=cache,
        cache_bytes=llc,
        cache_bytes_source=llc_source,
        cache_rotation_factor=ROTATION_FACTOR if cache == "cold" else None,
        framework=fw,
        framework_version=fw_version,
    )
    meta_path = folder / "meta.json"
    meta["runs"] = [*_earlier_runs(meta_path, meta), _run_record(meta)]
    part = meta_path.with_name(meta_path.name + ".part")  # a kill never leaves half a meta.json
    part.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    part.replace(meta_path)
    written["meta"] = meta_path
    return written


#: The fields of a run kept in ``meta.json``'s ``runs`` (a folder built over several runs).
RUN_FIELDS = ("date_utc", "git_commit", "ops", "quick", "cache_mode", "framework", "device_name")


def _run_record(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta.get(k) for k in RUN_FIELDS}


def _earlier_runs(path: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs recorded in an existing ``meta.json`` of the same model and device, oldest first.

    A folder filled over several runs keeps which operators each run measured, when and how;
    a ``meta.json`` of another model or device, or an unreadable one, starts a new history.
    """
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    if not isinstance(old, dict) or old.get("model") != meta["model"]:
        return []
    if old.get("device_name") != meta.get("device_name") or old.get("dtype") != meta.get("dtype"):
        return []
    runs = old.get("runs")
    if isinstance(runs, list) and all(isinstance(r, dict) for r in runs):
        return runs
    return [_run_record(old)]  # written before ``runs`` existed
