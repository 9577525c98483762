"""Trace loaders returning one tidy table: ``arrival_s, prompt_tokens, output_tokens``.

``arrival_s`` is relative to the trace's first request, in seconds, non-decreasing.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

#: Columns of every loader's output.
TRACE_COLUMNS: Final[tuple[str, str, str]] = ("arrival_s", "prompt_tokens", "output_tokens")

#: File names of the Azure LLM inference trace 2023 (Patel et al., "Splitwise", ISCA 2024).
AZURE_2023_FILES: Final[dict[str, str]] = {
    "conv": "AzureLLMInferenceTrace_conv.csv",
    "code": "AzureLLMInferenceTrace_code.csv",
}


#: Tokens per Mooncake prefix block (MANIFEST A2).
MOONCAKE_BLOCK_TOKENS: Final[int] = 512


#: Environment variable naming the shared data folder (``shared/data`` of the workspace).
SHARED_DATA_ENV: Final[str] = "EDGETWIN_SHARED_DATA"


def shared_data_dir() -> Path:
    """The workspace's shared data folder (traces and profiles listed in its MANIFEST.md).

    ``$EDGETWIN_SHARED_DATA`` if set, else ``shared/data`` beside the repository checkout (the
    development and CI layout), else ``/work/shared/data``. The folder may not exist: loaders
    raise ``FileNotFoundError`` naming the file they looked for.
    """
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        return Path(env)
    beside_repo = Path(__file__).resolve().parents[3] / "shared" / "data"
    return beside_repo if beside_repo.is_dir() else Path("/work/shared/data")


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"trace file not found: {str(p)!r}")
    return p


def _tidy(
    arrival_s: npt.ArrayLike,
    prompt: npt.ArrayLike,
    output: npt.ArrayLike,
    where: str,
    extra: dict[str, list[object]] | None = None,
) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "arrival_s": np.asarray(arrival_s, dtype=np.float64),
            "prompt_tokens": np.asarray(prompt, dtype=np.int64),
            "output_tokens": np.asarray(output, dtype=np.int64),
        }
    )
    for name, values in (extra or {}).items():  # extra columns travel with their rows
        df[name] = pd.Series(values, dtype=object)
    df = df.sort_values("arrival_s", kind="stable").reset_index(drop=True)
    if len(df):
        df["arrival_s"] -= df["arrival_s"].iloc[0]
    if (df["prompt_tokens"] < 1).any() or (df["output_tokens"] < 1).any():
        bad = (df["prompt_tokens"] < 1) | (df["output_tokens"] < 1)
        row = df[bad].iloc[0]
        prompt, output = int(row["prompt_tokens"]), int(row["output_tokens"])
        raise ValueError(
            f"trace {where!r}: {int(bad.sum())} request(s) with a token count < 1, first "
            f"prompt_tokens={prompt}, output_tokens={output} at arrival_s={row['arrival_s']:g}; "
            "allowed: token counts >= 1"
        )
    return df


def load_azure_llm_2023(
    path: str | Path, kind: Literal["conv", "code"] | None = None
) -> pd.DataFrame:
    """Load an Azure LLM inference trace 2023 CSV (``TIMESTAMP,ContextTokens,GeneratedTokens``).

    Source: Azure/AzurePublicDataset, CC-BY-4.0; cite Patel et al., "Splitwise", ISCA 2024.

    Args:
        path: The CSV file, or the folder holding it when ``kind`` is given.
        kind: ``"conv"`` or ``"code"``: pick that file inside the folder ``path``.

    Returns:
        Table ``arrival_s, prompt_tokens, output_tokens`` (one row per request).

    Raises:
        FileNotFoundError: Naming the missing path.
    """
    p = Path(path) / AZURE_2023_FILES[kind] if kind is not None else Path(path)
    p = _existing(p)
    raw = pd.read_csv(p)
    missing = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} - set(raw.columns)
    if missing:
        raise ValueError(f"{p}: missing column(s) {sorted(missing)}")
    ts = pd.to_datetime(raw["TIMESTAMP"].str.strip(), format="ISO8601")
    t_ns = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    arrival_s = (t_ns - t_ns.min()) / 1e9
    return _tidy(
        arrival_s, raw["ContextTokens"].to_numpy(), raw["GeneratedTokens"].to_numpy(), str(p)
    )


def _read_text_csv(p: Path) -> pd.DataFrame:
    """All cells as text (so a bad cell can be quoted back), any read failure naming ``p``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                p, dtype=str, keep_default_na=False, skipinitialspace=True, index_col=False
            )
    except pd.errors.ParserWarning:  # a row longer than the header: pandas would drop cells
        raise ValueError(
            f"trace {str(p)!r}: a row has more fields than the header {','.join(TRACE_COLUMNS)}"
        ) from None
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"trace {str(p)!r} is empty; expected a header {','.join(TRACE_COLUMNS)}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"trace {str(p)!r} is not UTF-8 text (byte offset {exc.start}); expected a CSV file"
        ) from None
    except (pd.errors.ParserError, OSError) as exc:
        raise ValueError(f"cannot read trace {str(p)!r}: {' '.join(str(exc).split())}") from None


def _numeric_column(raw: pd.DataFrame, column: str, p: Path, *, integer: bool) -> npt.NDArray:
    """One column as finite numbers; the first bad cell is named by file, column, line, value.

    Line numbers count the header as line 1, as an editor shows them.
    """
    text = raw[column]
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    kind = "a whole number" if integer else "a finite number"
    bad = ~np.isfinite(values)
    if integer:
        bad |= np.isfinite(values) & (values != np.round(values))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"trace {str(p)!r}, column {column!r}, line {i + 2}: {text.iloc[i]!r} is not {kind}"
        )
    return values


class TraceOrderWarning(UserWarning):
    """A trace whose rows are not in arrival order was re-sorted (``sort=True``)."""


def _check_arrivals(arrival_s: npt.NDArray, p: Path, *, sort: bool) -> None:
    """Arrivals must be >= 0; out-of-order rows are an error, or re-sorted with a warning."""
    negative = arrival_s < 0
    if negative.any():
        i = int(np.argmax(negative))
        raise ValueError(
            f"trace {str(p)!r}, column 'arrival_s', line {i + 2}: {arrival_s[i]:g} is negative; "
            "allowed: arrival_s >= 0"
        )
    back = np.diff(arrival_s) < 0
    if back.any():
        i = int(np.argmax(back)) + 1
        where = (
            f"trace {str(p)!r}, column 'arrival_s', line {i + 2}: {arrival_s[i]:g} is earlier "
            f"than the line before ({arrival_s[i - 1]:g})"
        )
        if not sort:
            raise ValueError(f"{where}; rows must be sorted by arrival_s")
        warnings.warn(
            f"{where}: {int(back.sum())} row(s) out of order, re-sorted by arrival_s "
            "(sort=False makes this an error)",
            TraceOrderWarning,
            stacklevel=3,
        )


def load_request_csv(path: str | Path, *, sort: bool = True) -> pd.DataFrame:
    """Load a generic CSV with columns ``arrival_s, prompt_tokens, output_tokens``.

    Nothing is repaired silently: a non-numeric, NaN/inf, fractional or < 1 token count, a
    negative arrival, or an empty file is an error naming the file, the column, the line and
    the value. Arrivals are shifted so the first request is at 0 (module docstring).

    Args:
        path: The CSV file.
        sort: Re-sort rows that are out of arrival order, with a :class:`TraceOrderWarning`
            naming the first such line; ``False`` makes it an error (a strictly faithful replay).

    Raises:
        FileNotFoundError: Naming the missing path.
        ValueError: Naming the file and the bad column / line / value.
    """
    p = _existing(path)
    raw = _read_text_csv(p)
    missing = [c for c in TRACE_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(
            f"trace {str(p)!r}: missing column(s) {', '.join(missing)}; expected columns "
            f"{','.join(TRACE_COLUMNS)}"
        )
    if raw.empty:
        raise ValueError(f"trace {str(p)!r} has a header but no requests")
    arrival_s = _numeric_column(raw, "arrival_s", p, integer=False)
    _check_arrivals(arrival_s, p, sort=sort)
    return _tidy(
        arrival_s,
        _numeric_column(raw, "prompt_tokens", p, integer=True),
        _numeric_column(raw, "output_tokens", p, integer=True),
        str(p),
    )


def load_mooncake(path: str | Path) -> pd.DataFrame:
    """Load a Mooncake FAST'25 trace (JSONL), keeping the prefix-block hashes.

    Fields: ``timestamp`` (ms, relative), ``input_length``, ``output_length``, ``hash_ids``
    (remapped hashes of the prompt's 512-token blocks, :data:`MOONCAKE_BLOCK_TOKENS`; equal ids
    mean a reusable KV prefix, MANIFEST A2).

    Source: kvcache-ai/Mooncake, Apache-2.0; cite Qin et al., "Mooncake", FAST 2025.

    Returns:
        Table ``arrival_s, prompt_tokens, output_tokens, hash_ids``; ``hash_ids`` holds one
        ``tuple[int, ...]`` per row (empty when the field is absent), for prefix caching.

    Raises:
        FileNotFoundError: Naming the missing path.
    """
    p = _existing(path)
    raw = pd.read_json(p, lines=True)
    missing = {"timestamp", "input_length", "output_length"} - set(raw.columns)
    if missing:
        raise ValueError(f"{p}: missing field(s) {sorted(missing)}")
    if "hash_ids" in raw.columns:
        hashes: list[object] = [
            tuple(int(h) for h in ids) if isinstance(ids, list) else () for ids in raw["hash_ids"]
        ]
    else:
        hashes = [()] * len(raw)
    return _tidy(
        raw["timestamp"].to_numpy(dtype=np.float64) / 1e3,
        raw["input_length"].to_numpy(),
        raw["output_length"].to_numpy(),
        str(p),
        extra={"hash_ids": hashes},
    )


def block_reuse_fraction(hash_ids: Iterable[Sequence[int]]) -> float:
    """Share of prefix blocks whose hash was already seen earlier in the trace.

    An infinite prefix cache's block hit rate (MANIFEST A2: Mooncake conversation 0.366,
    synthetic 0.640), counting every block of every request in order.

    Args:
        hash_ids: Per request, its block hashes (e.g. ``load_mooncake(...)["hash_ids"]``).

    Returns:
        Reused blocks / all blocks (0.0 for no blocks).
    """
    seen: set[int] = set()
    n_all = n_hit = 0
    for ids in hash_ids:
        for h in ids:
            n_all += 1
            if h in seen:
                n_hit += 1
            else:
                seen.add(h)
    return n_hit / n_all if n_all else 0.0
