"""The schema of kernel profiles, shared by ``kernels/`` (writer) and the cost models (readers).

One tidy CSV per operator: ``profiles/<device>/<model>/<op>.csv``, one row per measured shape,
plus a sidecar ``meta.json`` per ``<device>/<model>`` folder (device name, dtype, torch/CUDA
versions, thread count, commit, date). Public profiles (Vidur's ``mlp.csv``, LLMServingSim's
vLLM profiles, Splitwise's ``perf_model.csv``) are imported into the same schema, with
``source`` naming where a row came from.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

#: ``source`` of the rows ``edgetwin kernels profile`` measures (the others are imported).
KERNELS_SOURCE: Final[str] = "edgetwin.kernels"

#: Operators and what their shape columns mean.
OPS: Final[dict[str, str]] = {
    "linear_qkv": "QKV projection GEMM over n_tokens tokens (one layer)",
    "linear_o": "attention output projection GEMM over n_tokens tokens (one layer)",
    "linear_gate_up": "MLP gate+up projection GEMM over n_tokens tokens (one layer)",
    "linear_down": "MLP down projection GEMM over n_tokens tokens (one layer)",
    "lm_head": "LM head GEMM over batch_size sequences (last token each)",
    "attn_prefill": "causal attention of an n_tokens chunk over context_len cached tokens",
    "attn_decode": "decode attention of batch_size sequences over context_len KV tokens each",
    "lora_shrink": "LoRA A (d -> rank) for n_tokens tokens with batch_size distinct adapters",
    "lora_expand": "LoRA B (rank -> d) for n_tokens tokens with batch_size distinct adapters",
    "kv_quantize": "quantize context_len tokens of one layer's KV cache to `bits` bits",
    "kv_dequantize": "dequantize context_len tokens of one layer's KV cache from `bits` bits",
    "adapter_load": "load one adapter of n_bytes from a safetensors file (to the device)",
    "rmsnorm": "one RMSNorm over n_tokens tokens (2 per layer, 1 final)",
    "rope": "rotary embedding of one layer's q and k over n_tokens tokens",
    "silu_mul": "one layer's SwiGLU activation silu(gate) * up over n_tokens tokens",
    "residual_add": "one residual add over n_tokens tokens (2 per layer)",
    "embedding": "token-embedding lookup of n_tokens tokens (once per pass)",
    "sampler": "temperature, softmax and token pick over batch_size sequences' logits",
    "decoder_layer": "one whole decoder layer as a framework runs it (meta.json `framework`): a "
    "decode step of batch_size sequences over context_len cached tokens (n_tokens == "
    "batch_size), or one n_tokens prefill chunk over context_len cached tokens",
    "decoder_pass": "a one-layer model pass as a framework runs it (embedding, decoder_layer's "
    "layer, final norm, LM head on the last positions, sampler), decoder_layer's shapes",
    "elementwise": "all norms, RoPE, activations, residual adds and embedding of one iteration "
    "over n_tokens tokens (whole model; imported public profiles)",
    "iteration": "a whole model iteration (imported public profiles without a breakdown)",
}

#: Column -> dtype of a profile table (the order is the canonical column order).
PROFILE_COLUMNS: Final[dict[str, str]] = {
    "op": "string",
    "model": "string",
    "device": "string",
    "dtype": "string",
    "n_tokens": "int64",
    "batch_size": "int64",
    "context_len": "int64",
    "rank": "int64",
    "bits": "int64",
    "n_bytes": "int64",
    "tp": "int64",
    "flops": "float64",
    "bytes_moved": "float64",
    "time_median_s": "float64",
    "time_p90_s": "float64",
    "n_repeats": "int64",
    "source": "string",
}


class ProfileSchemaError(ValueError):
    """A profile table that does not follow the schema."""


def validate_profile(df: pd.DataFrame, *, where: str = "profile") -> pd.DataFrame:
    """Check columns, dtypes, operators and values; return the table in canonical form.

    Args:
        df: A profile table.
        where: Name used in error messages (e.g. the file path).

    Raises:
        ProfileSchemaError: Naming the missing columns, unknown operators or bad values.
    """
    missing = [c for c in PROFILE_COLUMNS if c not in df.columns]
    if missing:
        expected = ",".join(PROFILE_COLUMNS)
        raise ProfileSchemaError(
            f"{where}: missing columns {', '.join(missing)}"
            + ("" if len(missing) < len(PROFILE_COLUMNS) else f"; a profile has {expected}")
        )
    if df.empty:
        raise ProfileSchemaError(f"{where}: no rows (a profile has one row per measured shape)")
    unknown = sorted(str(o) for o in set(df["op"]) - set(OPS))
    if unknown:
        raise ProfileSchemaError(f"{where}: unknown op(s) {unknown}; allowed: {sorted(OPS)}")
    for column, dtype in PROFILE_COLUMNS.items():
        if dtype == "string":
            continue
        values = pd.to_numeric(df[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
        if dtype == "int64":
            bad |= values.fillna(0) % 1 != 0
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            kind = "an integer" if dtype == "int64" else "a finite number"
            got = df[column].iloc[row]
            raise ProfileSchemaError(
                f"{where}: line {row + 2}, column {column}: expected {kind}, got "
                f"{got.item() if isinstance(got, np.generic) else got!r}"
            )
    out = df[list(PROFILE_COLUMNS)].astype(PROFILE_COLUMNS)
    if (out["time_median_s"] <= 0).any():
        raise ProfileSchemaError(f"{where}: time_median_s must be > 0 on every row")
    return out


def read_profile(path: str | Path) -> pd.DataFrame:
    """Read and validate one profile CSV (a missing file raises naming the path)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"profile file not found: {str(p)!r}")
    try:
        df = pd.read_csv(p)
    except UnicodeDecodeError as exc:
        raise ProfileSchemaError(
            f"{str(p)!r}: not UTF-8 text (byte offset {exc.start}); a profile is a CSV file"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = " ".join(str(exc).split())
        raise ProfileSchemaError(f"{str(p)!r}: not a readable CSV ({reason})") from None
    return validate_profile(df, where=repr(str(p)))


def write_profile(df: pd.DataFrame, path: str | Path) -> Path:
    """Validate and write a profile CSV atomically (temp file + ``os.replace``)."""
    p = Path(path)
    table = validate_profile(df, where=str(p))
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            table.to_csv(f, index=False)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
