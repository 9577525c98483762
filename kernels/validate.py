"""Whole-model validation: a real model's step times against the table cost model's prediction.

The cost models of ``sim/compute/table_cost.py`` add up operators that ``kernels/`` timed one at
a time. Whether that sum is the time of a real forward pass is checked here: a Hugging Face
``LlamaForCausalLM`` is built from a config with the dimensions of a registered model
(:class:`~edgetwin.kernels.models.ModelSpec`; random weights, no download) and timed over a
(batch, context) grid, cell by cell:

* **decode step** ``(b, c)``: ``b`` sequences with a KV cache of ``c`` tokens each feed one new
  token (the attention reads ``c + 1`` keys). The cache is built with one prefill of one
  sequence of ``c`` random tokens, repeated ``b`` times along the batch; each timed step is
  followed by ``cache.crop(-1)`` so that every step starts from ``c`` cached tokens.
* **prefill** ``(b, c)``: ``b`` sequences of ``c`` tokens from an empty cache (the KV cache is
  written, as a serving engine does).

Both pass ``logits_to_keep=1`` (``num_logits_to_keep`` in older transformers), so only the
last position of each sequence goes through the LM head, as in a serving engine, and then pick
one token per sequence (temperature softmax and argmax, the ``sampler`` operator). Each cell is
the median of ``repeats`` timed calls after warm-up
(:func:`~edgetwin.kernels.timing.time_callable`, no time budget). The prediction of each cell is
:meth:`~edgetwin.sim.compute.table_cost.TableCostModel.breakdown_s` of the profile's cost model
(a decode step: ``b`` decodes of KV length ``c + 1``; a prefill: ``b`` chunks of ``c`` tokens
with no cached context); the error is ``(predicted - measured) / measured``.

What the measurement includes beyond the operators: transformers' Python per-layer overhead,
its unfused q/k/v and gate/up projections, and ``DynamicCache``'s append, which concatenates
(copies) each layer's whole K/V cache on every decode step (a paged serving engine writes the
new token in place). The prediction covers them with the per-layer framework overhead fitted
on whole layers (``decoder_layer``, ``sim/compute/framework_overhead.py``) when the profiles
were taken with ``--framework transformers``.

``transformers`` is an optional dependency (``pip install 'edgetwin[validate]'``); without it
:func:`validate` raises :class:`TransformersMissingError`.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
import torch

from edgetwin.kernels import hf
from edgetwin.kernels.hf import TransformersMissingError
from edgetwin.kernels.models import ModelSpec, get_model
from edgetwin.kernels.profile import DEFAULT_DTYPE
from edgetwin.kernels.timing import TimingResult, device_name, time_callable

Kind = Literal["decode", "prefill"]
KINDS: Final[tuple[Kind, ...]] = ("decode", "prefill")

DEFAULT_BATCHES: Final[tuple[int, ...]] = (1, 4, 16)
DEFAULT_CONTEXTS: Final[tuple[int, ...]] = (128, 512, 2048)
#: Largest context (tokens) a grid may name.
MAX_CONTEXT: Final[int] = 32768
#: Largest batch a grid may name.
MAX_BATCH: Final[int] = 1024
#: ``--quick`` times only the prefill cells with ``batch * context`` up to this many tokens.
QUICK_PREFILL_TOKENS: Final[int] = 2048
#: Timed calls per cell (median), without / with ``quick``.
DEFAULT_REPEATS: Final[int] = 5
QUICK_REPEATS: Final[int] = 3
#: The issue's goal for the whole grid: median and max of |error| in percent.
GOAL_MEDIAN_PCT: Final[float] = 10.0
GOAL_MAX_PCT: Final[float] = 20.0
#: ``profiles`` value naming the profiles shipped with the package (``kernels/profiles``).
SHIPPED: Final[str] = "shipped"
#: Columns of :func:`validate`'s table before the per-operator ``pred_<op>_ms`` columns.
COLUMNS: Final[tuple[str, ...]] = (
    "model",
    "device",
    "dtype",
    "threads",
    "kind",
    "batch",
    "context",
    "new_tokens",
    "measured_ms",
    "measured_p90_ms",
    "n_repeats",
    "predicted_ms",
    "error_pct",
)


def _forward_kwargs(model: torch.nn.Module) -> tuple[str, dict[str, int]]:
    """Name of the KV-cache argument of ``model.forward`` and the "last logits only" argument.

    Recent transformers 5.x call the cache ``cache`` (``past_key_values`` is deprecated there),
    4.x ``past_key_values``; ``logits_to_keep`` was ``num_logits_to_keep`` in older 4.x.
    """
    return hf.cache_kwarg(model.forward), hf.last_logits_kwarg(model.forward)


def _new_cache(model: torch.nn.Module) -> Any:
    """An empty ``DynamicCache`` for ``model``."""
    return hf.new_cache(model.config)


def _cache_len(cache: Any) -> int:
    return int(cache.get_seq_length())


# ---------------------------------------------------------------------------------- model
def build_model(
    spec: ModelSpec | str,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    seed: int = 0,
    max_context: int = MAX_CONTEXT,
) -> torch.nn.Module:
    """A Hugging Face ``LlamaForCausalLM`` of ``spec``'s dimensions with random weights.

    The config is built from the :class:`ModelSpec` (no download): width, layers, heads, KV
    heads, head width, MLP width, vocabulary, ``tie_word_embeddings``; SDPA attention. The
    weights are drawn with transformers' initializer under ``seed`` (values do not affect
    latency); the global torch RNG is left as it was.

    Args:
        spec: The model (or a registered id).
        device: Where the weights live.
        dtype: Weight dtype (default float32 on CPU, float16 on CUDA, as the profiles).
        seed: Seed of the random weights.
        max_context: Longest sequence the model will see (``max_position_embeddings``).

    Returns:
        The model in ``eval()`` mode.

    Raises:
        TransformersMissingError: transformers is not installed.
    """
    cls = hf.classes().model_cls
    m = spec if isinstance(spec, ModelSpec) else get_model(spec)
    dev = torch.device(device)
    dt = dtype or DEFAULT_DTYPE[dev.type]
    config = hf.llama_config(m, max_context=max_context)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    model = model.to(device=dev, dtype=dt).eval()
    return model  # type: ignore[no-any-return]


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _token_ids(model: torch.nn.Module, batch: int, length: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    vocab = int(model.config.vocab_size)  # type: ignore[union-attr,arg-type]
    ids = torch.randint(0, vocab, (batch, length), generator=gen)
    return ids.to(_device(model))


def prefill_cache(model: torch.nn.Module, context: int, *, seed: int = 0) -> Any:
    """A ``DynamicCache`` holding ``context`` tokens of one sequence (one prefill call)."""
    cache_kw, logits_kw = _forward_kwargs(model)
    cache = _new_cache(model)
    with torch.inference_mode():
        model(
            input_ids=_token_ids(model, 1, context, seed),
            use_cache=True,
            **{cache_kw: cache},
            **logits_kw,
        )
    if _cache_len(cache) != context:
        raise RuntimeError(f"prefill left {_cache_len(cache)} cached tokens, expected {context}")
    return cache


#: Temperature of the sampling step (as ``kernels/ops/elementwise.py``'s ``sampler``).
SAMPLER_TEMPERATURE: Final[float] = 0.8


def _sample(logits: torch.Tensor) -> torch.Tensor:
    """One token per sequence from the last position's logits: temperature softmax, argmax."""
    probs = torch.softmax(logits[:, -1, :] / SAMPLER_TEMPERATURE, dim=-1)
    return torch.argmax(probs, dim=-1)


def _timing_args(quick: bool, repeats: int | None) -> dict[str, Any]:
    n = repeats if repeats is not None else (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    if n < 1:
        raise ValueError(f"repeats must be >= 1, got {n}")
    # exactly n timed calls (no time budget): the median of n repeats
    return {"warmup": 1 if quick else 2, "repeats": n, "min_repeats": n, "max_time_s": math.inf}


def time_decode(
    model: torch.nn.Module,
    batch: int,
    context: int,
    *,
    quick: bool = False,
    repeats: int | None = None,
    seed: int = 0,
    prefix: Any = None,
    sample: bool = True,
) -> TimingResult:
    """Time one decode step of ``batch`` sequences over a KV cache of ``context`` tokens each.

    The cache is ``prefix`` (a one-sequence cache of ``context`` tokens, see
    :func:`prefill_cache`; built here when None) repeated ``batch`` times. Each call feeds one
    new token per sequence (``logits_to_keep=1``) and crops the cache back by that token, so
    every timed step starts from ``context`` cached tokens and attends over ``context + 1``.
    With ``sample`` the step also picks the next token of each sequence (:func:`_sample`), as
    a serving iteration does and as the cost model's ``sampler`` term predicts.

    Returns:
        The step time (median of ``repeats`` calls after warm-up).
    """
    if batch < 1 or context < 1:
        raise ValueError(f"need batch >= 1 and context >= 1, got {batch}, {context}")
    cache_kw, logits_kw = _forward_kwargs(model)
    base = prefix if prefix is not None else prefill_cache(model, context, seed=seed)
    if _cache_len(base) != context:
        raise ValueError(f"prefix cache holds {_cache_len(base)} tokens, expected {context}")
    cache = copy.deepcopy(base)
    if batch > 1:
        cache.batch_repeat_interleave(batch)
    ids = _token_ids(model, batch, 1, seed + 1)
    kwargs = {"input_ids": ids, "use_cache": True, cache_kw: cache, **logits_kw}

    def step() -> object:
        out = model(**kwargs)
        cache.crop(-1)  # back to `context` tokens (transformers 4.4x and 5.x alike)
        return _sample(out.logits) if sample else out

    with torch.inference_mode():
        res = time_callable(step, device=_device(model), **_timing_args(quick, repeats))
    if _cache_len(cache) != context:
        raise RuntimeError(f"decode left {_cache_len(cache)} cached tokens, expected {context}")
    return res


def time_prefill(
    model: torch.nn.Module,
    batch: int,
    context: int,
    *,
    quick: bool = False,
    repeats: int | None = None,
    seed: int = 0,
    sample: bool = True,
) -> TimingResult:
    """Time a prefill of ``batch`` sequences of ``context`` tokens from an empty KV cache.

    The KV cache is written (a fresh one per call); only the last position of each sequence
    goes through the LM head (``logits_to_keep=1``); with ``sample`` the first output token of
    each sequence is then picked (:func:`_sample`).

    Returns:
        The prefill time (median of ``repeats`` calls after warm-up).
    """
    if batch < 1 or context < 1:
        raise ValueError(f"need batch >= 1 and context >= 1, got {batch}, {context}")
    _, logits_kw = _forward_kwargs(model)
    ids = _token_ids(model, batch, context, seed)

    def run() -> object:  # use_cache with no cache given: the model writes a fresh one
        out = model(input_ids=ids, use_cache=True, **logits_kw)
        return _sample(out.logits) if sample else out

    with torch.inference_mode():
        return time_callable(run, device=_device(model), **_timing_args(quick, repeats))


# ---------------------------------------------------------------------------------- prediction
def resolve_profiles(profiles: str | Path) -> Path:
    """The profile root: ``"shipped"`` is the package's ``kernels/profiles`` folder.

    Raises:
        FileNotFoundError: A folder that does not exist.
    """
    if str(profiles) == SHIPPED:
        from edgetwin.scenarios.serve import shipped_profiles_dir

        return shipped_profiles_dir()
    root = Path(profiles)
    if not root.is_dir():
        raise FileNotFoundError(
            f"profile folder not found: {str(profiles)!r} (a root holding <device>/<model>/ "
            f"folders, or {SHIPPED!r} for the profiles shipped with EdgeTwin)"
        )
    return root


def load_predictor(profiles: str | Path, model: ModelSpec, device_type: str) -> Any:
    """The table cost model of ``<profiles>/<device_type>/<model>`` (``load_cost_model``)."""
    from edgetwin.sim.compute.table_cost import load_cost_model

    return load_cost_model(resolve_profiles(profiles), model=model.model_id, hardware=device_type)


def predict(cost_model: Any, kind: Kind, batch: int, context: int) -> dict[str, float]:
    """Predicted seconds of one grid cell, per operator (the values sum to the step time).

    A decode step is ``batch`` decodes each attending over ``context + 1`` keys (the cache plus
    the new token); a prefill is ``batch`` chunks of ``context`` tokens with no cached context.

    Returns:
        The cost model's ``breakdown_s`` (operator -> seconds).
    """
    empty = np.zeros(0, dtype=np.int64)
    if kind == "decode":
        dec = np.full(batch, context + 1, dtype=np.int64)
        parts = cost_model.breakdown_s(empty, empty, dec)
    elif kind == "prefill":
        tok = np.full(batch, context, dtype=np.int64)
        parts = cost_model.breakdown_s(tok, np.zeros(batch, dtype=np.int64), empty)
    else:
        raise ValueError(f"kind must be 'decode' or 'prefill', got {kind!r}")
    return {str(k): float(v) for k, v in parts.items()}


# ---------------------------------------------------------------------------------- the grid
def check_grid(batches: Sequence[int], contexts: Sequence[int]) -> None:
    """Raise one-line ``ValueError`` for an empty, non-positive, too large or repeated value."""
    for what, values, top in (("batch", batches, MAX_BATCH), ("context", contexts, MAX_CONTEXT)):
        if not values:
            raise ValueError(f"the {what} list is empty")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or not 1 <= v <= top:
                raise ValueError(f"each {what} must be an integer in 1..{top}, got {v!r}")
        twice = sorted({int(v) for v in values if list(values).count(v) > 1})
        if twice:
            raise ValueError(f"the {what} list names {twice[0]} twice; give each value once")


@dataclass(frozen=True)
class Cell:
    """One measured and predicted grid cell (a row of :func:`validate`'s table)."""

    kind: Kind
    batch: int
    context: int
    measured_s: float
    measured_p90_s: float
    n_repeats: int
    predicted: dict[str, float]

    @property
    def predicted_s(self) -> float:
        """Sum of the per-operator prediction."""
        return float(sum(self.predicted.values()))

    @property
    def error_pct(self) -> float:
        """``100 * (predicted - measured) / measured``."""
        return 100.0 * (self.predicted_s - self.measured_s) / self.measured_s


def validate(
    model: ModelSpec | str,
    device: str = "cpu",
    profiles: str | Path = SHIPPED,
    *,
    batches: Sequence[int] = DEFAULT_BATCHES,
    contexts: Sequence[int] = DEFAULT_CONTEXTS,
    kinds: Sequence[Kind] = KINDS,
    quick: bool = False,
    repeats: int | None = None,
    max_prefill_tokens: int | None = None,
    seed: int = 0,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    on_cell: Callable[[Cell], None] | None = None,
) -> pd.DataFrame:
    """Time a real model of ``model``'s dimensions over the grid and compare with the profiles.

    Args:
        model: A :class:`ModelSpec` or a registered id.
        device: ``"cpu"`` or ``"cuda[:N]"``; the profiles of ``<profiles>/<device type>/<model>``
            predict.
        profiles: Profile root, or ``"shipped"`` (the package's ``kernels/profiles``).
        batches: Batch sizes of the grid.
        contexts: Context lengths (tokens) of the grid.
        kinds: ``"decode"`` and/or ``"prefill"``.
        quick: Fewer repeats and warm-up, and prefill cells above
            :data:`QUICK_PREFILL_TOKENS` tokens skipped.
        repeats: Timed calls per cell (default 5, quick 3).
        max_prefill_tokens: Skip prefill cells with ``batch * context`` above this (default:
            :data:`QUICK_PREFILL_TOKENS` with ``quick``, no limit otherwise).
        seed: Seed of the weights and token ids.
        on_start: Called once the profiles are found, before any timing, with the run's
            information (the ``df.attrs`` below but ``skipped``).
        on_cell: Called with each cell as soon as it is measured (progress output).

    Returns:
        One row per cell, columns :data:`COLUMNS` then ``pred_<op>_ms`` per operator of the
        prediction. ``df.attrs`` holds ``model`` (the spec's id), ``device``, ``threads``,
        ``profile_dir``, ``profile_meta`` (its ``meta.json``, or {}), ``device_name``,
        ``torch_version``, ``transformers_version``, ``max_prefill_tokens`` and ``skipped``
        (the prefill cells over that budget, as ``(batch, context)``).

    Raises:
        ValueError: Bad grid, device, kind or model id, or no profiles of the model/device.
        FileNotFoundError: A profile folder that does not exist.
        TransformersMissingError: transformers is not installed.
    """
    spec = model if isinstance(model, ModelSpec) else get_model(model)
    check_grid(batches, contexts)
    bad_kinds = [k for k in kinds if k not in KINDS]
    if bad_kinds or not kinds:
        raise ValueError(f"kinds must name 'decode' and/or 'prefill', got {list(kinds)!r}")
    if not re.fullmatch(r"cpu|cuda(:[0-9]+)?", str(device)):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    if repeats is not None and repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    budget = max_prefill_tokens
    if budget is None and quick:
        budget = QUICK_PREFILL_TOKENS
    if budget is not None and budget < 1:
        raise ValueError(f"max_prefill_tokens must be >= 1, got {budget}")

    hf_version = hf.version()  # fail before any work without transformers
    root = resolve_profiles(profiles)
    cost_model = load_predictor(root, spec, dev.type)
    profile_dir = root / dev.type / spec.model_id
    info: dict[str, Any] = {
        "model": spec.model_id,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "profile_dir": str(profile_dir),
        "profile_meta": _read_meta(profile_dir / "meta.json"),
        "device_name": device_name(dev),
        "torch_version": torch.__version__,
        "transformers_version": hf_version,
        "max_prefill_tokens": budget,
    }
    if on_start is not None:
        on_start(dict(info))

    dt = DEFAULT_DTYPE[dev.type]
    net = build_model(spec, device=dev, dtype=dt, seed=seed, max_context=max(contexts))
    cells: list[Cell] = []
    skipped: list[tuple[int, int]] = []

    def record(kind: Kind, b: int, c: int, res: TimingResult) -> None:
        cell = Cell(
            kind, b, c, res.median_s, res.p90_s, res.n_repeats, predict(cost_model, kind, b, c)
        )
        cells.append(cell)
        if on_cell is not None:
            on_cell(cell)

    if "decode" in kinds:
        for c in contexts:
            prefix = prefill_cache(net, c, seed=seed)
            for b in batches:
                res = time_decode(net, b, c, quick=quick, repeats=repeats, seed=seed, prefix=prefix)
                record("decode", b, c, res)
                gc.collect()
            del prefix
            gc.collect()
    if "prefill" in kinds:
        for c in contexts:
            for b in batches:
                if budget is not None and b * c > budget:
                    skipped.append((b, c))
                    continue
                res = time_prefill(net, b, c, quick=quick, repeats=repeats, seed=seed)
                record("prefill", b, c, res)
                gc.collect()
    del net
    gc.collect()

    df = _table(cells, spec, dev.type, str(dt).removeprefix("torch."))
    df.attrs.update(info, skipped=skipped)
    return df


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _table(cells: Sequence[Cell], spec: ModelSpec, device: str, dtype: str) -> pd.DataFrame:
    ops: list[str] = []
    for cell in cells:
        ops.extend(op for op in cell.predicted if op not in ops)
    rows = [
        {
            "model": spec.model_id,
            "device": device,
            "dtype": dtype,
            "threads": torch.get_num_threads(),
            "kind": cell.kind,
            "batch": cell.batch,
            "context": cell.context,
            "new_tokens": cell.batch if cell.kind == "decode" else cell.batch * cell.context,
            "measured_ms": 1e3 * cell.measured_s,
            "measured_p90_ms": 1e3 * cell.measured_p90_s,
            "n_repeats": cell.n_repeats,
            "predicted_ms": 1e3 * cell.predicted_s,
            "error_pct": cell.error_pct,
            **{f"pred_{op}_ms": 1e3 * cell.predicted.get(op, 0.0) for op in ops},
        }
        for cell in cells
    ]
    return pd.DataFrame(rows, columns=[*COLUMNS, *(f"pred_{op}_ms" for op in ops)])


# ---------------------------------------------------------------------------------- reporting
def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Median and max of |error| (percent) per kind and over all cells.

    Returns:
        Index ``decode``, ``prefill`` (those present) and ``all``; columns ``cells``,
        ``median_abs_error_pct``, ``max_abs_error_pct``.
    """
    rows: dict[str, dict[str, float]] = {}
    groups = [(k, df[df["kind"] == k]) for k in KINDS] + [("all", df)]
    for name, sub in groups:
        if len(sub) == 0:
            continue
        err = sub["error_pct"].abs()
        rows[name] = {
            "cells": len(sub),
            "median_abs_error_pct": float(err.median()),
            "max_abs_error_pct": float(err.max()),
        }
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["cells", "median_abs_error_pct", "max_abs_error_pct"]
    )


def goal_met(df: pd.DataFrame) -> bool:
    """The issue's goal over all cells: median |error| <= 10 % and max |error| <= 20 %."""
    if len(df) == 0:
        return False
    err = df["error_pct"].abs()
    return bool(err.median() <= GOAL_MEDIAN_PCT and err.max() <= GOAL_MAX_PCT)


HEADER: Final[str] = (
    f"{'kind':<8}{'batch':>6}{'context':>9}{'measured_ms':>13}{'predicted_ms':>14}{'error_%':>9}"
)


def format_cell(cell: Cell) -> str:
    """One table line of a cell (the columns of :data:`HEADER`)."""
    return (
        f"{cell.kind:<8}{cell.batch:>6}{cell.context:>9}{1e3 * cell.measured_s:>13.3f}"
        f"{1e3 * cell.predicted_s:>14.3f}{cell.error_pct:>+9.1f}"
    )


def format_preamble(info: dict[str, Any]) -> list[str]:
    """What is compared with what (``on_start``'s information): the lines above the table."""
    meta = info.get("profile_meta") or {}
    threads = info["threads"]
    lines = [
        f"{info['model']} (random weights) on {info['device']} ({info['device_name']}), "
        f"{threads} torch thread(s), torch {info['torch_version']}, transformers "
        f"{info['transformers_version']}",
        f"predicted by the profiles in {info['profile_dir']}",
    ]
    if meta.get("num_threads") not in (None, threads):
        lines.append(
            f"note: the profiles were taken with {meta['num_threads']} thread(s), this run "
            f"uses {threads}"
        )
    if meta.get("device_name") and meta["device_name"] != info["device_name"]:
        lines.append(f"note: the profiles were taken on {meta['device_name']!r}")
    framework = meta.get("framework")
    if framework is None:
        lines.append(
            "note: the profiles have no whole-layer timings (decoder_layer): the prediction "
            "has no framework overhead"
        )
    elif framework != "transformers":
        lines.append(
            f"note: the profiles' framework overhead is {framework}'s, this run times "
            "transformers (re-profile with --framework transformers to predict it)"
        )
    return lines


def format_summary(df: pd.DataFrame) -> list[str]:
    """Lines after the table: skipped cells, |error| per kind and overall, the goal."""
    lines: list[str] = []
    skipped = df.attrs.get("skipped") or []
    if skipped:
        cells = ", ".join(f"{b}x{c}" for b, c in skipped)
        lines.append(
            f"skipped {len(skipped)} prefill cell(s) above {df.attrs.get('max_prefill_tokens')} "
            f"tokens (batch x context): {cells}"
        )
    for name, row in summary(df).iterrows():
        lines.append(
            f"{name}: median |error| {row['median_abs_error_pct']:.1f} %, max |error| "
            f"{row['max_abs_error_pct']:.1f} % over {int(row['cells'])} cell(s)"
        )
    verdict = "met" if goal_met(df) else "missed"
    lines.append(
        f"goal (median |error| <= {GOAL_MEDIAN_PCT:g} %, max |error| <= {GOAL_MAX_PCT:g} %, "
        f"all cells): {verdict}"
    )
    return lines


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the table atomically: a temporary file beside ``path``, then ``os.replace``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            df.to_csv(fh, index=False, float_format="%.6g")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


__all__ = [
    "DEFAULT_BATCHES",
    "DEFAULT_CONTEXTS",
    "GOAL_MAX_PCT",
    "GOAL_MEDIAN_PCT",
    "MAX_BATCH",
    "MAX_CONTEXT",
    "QUICK_PREFILL_TOKENS",
    "Cell",
    "TransformersMissingError",
    "build_model",
    "check_grid",
    "format_cell",
    "format_preamble",
    "format_summary",
    "goal_met",
    "predict",
    "prefill_cache",
    "summary",
    "time_decode",
    "time_prefill",
    "validate",
    "write_csv",
]
