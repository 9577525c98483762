"""Trace loaders returning one tidy table: ``arrival_s, prompt_tokens, output_tokens``.

``arrival_s`` is relative to the trace's first request, in seconds, non-decreasing.
"""

from __future__ import annotations

import json
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


#: Columns of an Azure LLM inference trace 2023 CSV.
AZURE_2023_COLUMNS: Final[tuple[str, str, str]] = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")

#: Required fields of every Mooncake JSONL record (``hash_ids`` is optional).
MOONCAKE_FIELDS: Final[tuple[str, str, str]] = ("timestamp", "input_length", "output_length")

#: Largest token count or id a trace may hold: integers above 2**53 are not exact as floats.
MAX_TRACE_INT: Final[int] = 2**53


def _existing(path: str | Path) -> Path:
    """``path`` as a ``Path`` if it is a file, else ``FileNotFoundError`` naming it."""
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
    """The output table, sorted by arrival and shifted to start at 0 (module docstring).

    The loaders check every value first; the token check here is a last guard.
    """
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


def _read_text_csv(p: Path, columns: Sequence[str] = TRACE_COLUMNS) -> pd.DataFrame:
    """All cells as text (so a bad cell can be quoted back), any read failure naming ``p``.

    The index holds each row's line number (the header is line 1, as an editor shows it), which
    the checks below quote. ``columns`` is the expected header, named when the file is empty.
    """
    header = ",".join(columns)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            raw = pd.read_csv(
                p, dtype=str, keep_default_na=False, skipinitialspace=True, index_col=False
            )
    except pd.errors.ParserWarning:  # a row longer than the header: pandas would drop cells
        raise ValueError(
            f"trace {str(p)!r}: a row has more fields than the header {header}"
        ) from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"trace {str(p)!r} is empty; expected a header {header}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"trace {str(p)!r} is not UTF-8 text (byte offset {exc.start}); expected a CSV file"
        ) from None
    except (pd.errors.ParserError, OSError) as exc:
        raise ValueError(f"cannot read trace {str(p)!r}: {' '.join(str(exc).split())}") from None
    raw.index = _csv_line_numbers(p, len(raw))
    return raw


def _csv_line_numbers(p: Path, n_rows: int) -> pd.Index:
    """Line number of each of the ``n_rows`` data rows of ``p``, as an editor counts them.

    pandas skips blank lines, so the numbers are those of the non-blank lines after the header;
    when that count differs from ``n_rows`` (a quoted field spanning lines), rows are counted
    from line 2 instead.
    """
    text = p.read_bytes().decode("utf-8-sig", errors="replace")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    filled = [n for n, line in enumerate(lines, start=1) if line.strip()]
    if len(filled) == n_rows + 1:
        return pd.Index(filled[1:])
    return pd.RangeIndex(2, n_rows + 2)


def _check_header(raw: pd.DataFrame, p: Path, columns: Sequence[str], rows: str) -> None:
    """Every column of ``columns`` present and at least one row (``rows`` names what rows are)."""
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise ValueError(
            f"trace {str(p)!r}: missing column(s) {', '.join(missing)}; expected columns "
            f"{','.join(columns)}"
        )
    if raw.empty:
        raise ValueError(f"trace {str(p)!r} has a header but no {rows}")


def _cell(p: Path, column: str, line: object, noun: str = "column") -> str:
    """``trace 'file', column 'name', line 3``: where a bad value is."""
    return f"trace {str(p)!r}, {noun} {column!r}, line {line}"


def _numeric_column(
    raw: pd.DataFrame,
    column: str,
    p: Path,
    *,
    integer: bool,
    minimum: float | None = None,
    above: bool = False,
    noun: str = "column",
) -> npt.NDArray[np.float64]:
    """One column as finite numbers; the first bad cell is named by file, column, line, value.

    Args:
        raw: Text cells, indexed by line number (:func:`_read_text_csv`).
        column: The column to convert.
        p: The file, for messages.
        integer: Only whole numbers (up to :data:`MAX_TRACE_INT`) are allowed.
        minimum: Smallest allowed value (``None``: any).
        above: ``minimum`` itself is not allowed (``> minimum`` rather than ``>= minimum``).
        noun: What a column is called in the file's format (``"field"`` for JSON).

    Raises:
        ValueError: Naming the file, the column, the line, the value and what is allowed.
    """
    text = raw[column]
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    kind = "a whole number" if integer else "a finite number"
    allowed = "whole numbers" if integer else "finite numbers"
    if minimum is not None:
        allowed += f" {'>' if above else '>='} {minimum:g}"
    bad = ~np.isfinite(values)
    if integer:
        bad |= np.isfinite(values) & (values != np.round(values))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{_cell(p, column, text.index[i], noun)}: {text.iloc[i]!r} is not {kind}; "
            f"allowed: {allowed}"
        )
    low = np.zeros(len(values), dtype=bool)
    if minimum is not None:
        low = values <= minimum if above else values < minimum
    high = values > MAX_TRACE_INT if integer else np.zeros(len(values), dtype=bool)
    if (low | high).any():
        i = int(np.argmax(low | high))
        limit = f" up to 2**53 ({MAX_TRACE_INT})" if high[i] else ""
        raise ValueError(
            f"{_cell(p, column, text.index[i], noun)}: {text.iloc[i]!r} is out of range; "
            f"allowed: {allowed}{limit}"
        )
    return values


def _choice_column(
    raw: pd.DataFrame, column: str, p: Path, allowed: Sequence[str]
) -> npt.NDArray[np.object_]:
    """One text column whose cells must be one of ``allowed`` (exact spelling)."""
    text = raw[column].astype(str)
    bad = ~text.isin(list(allowed)).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{_cell(p, column, text.index[i])}: {text.iloc[i]!r} is not a known {column}; "
            f"allowed: {', '.join(allowed)}"
        )
    return text.to_numpy(dtype=object)


def _timestamp_column(raw: pd.DataFrame, column: str, p: Path) -> npt.NDArray[np.int64]:
    """ISO 8601 date-times as nanoseconds since the epoch (UTC when no offset is given)."""
    text = raw[column].astype(str)
    ts = pd.to_datetime(text.str.strip(), format="ISO8601", errors="coerce", utc=True)
    bad = ts.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{_cell(p, column, text.index[i])}: {text.iloc[i]!r} is not a date-time; allowed: "
            "ISO 8601 date-times such as '2023-11-16 18:15:46.6805900'"
        )
    return ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)


class TraceOrderWarning(UserWarning):
    """A trace whose rows are not in arrival order was re-sorted (``sort=True``)."""


def _check_arrivals(
    raw: pd.DataFrame,
    column: str,
    values: npt.NDArray[np.float64] | npt.NDArray[np.int64],
    p: Path,
    *,
    sort: bool,
    noun: str = "column",
) -> None:
    """Out-of-order rows are an error, or re-sorted with a warning naming the first such line.

    Args:
        raw: Text cells, indexed by line number (quoted in the message).
        column: The arrival-time column.
        values: That column as numbers (any unit; only their order matters).
        p: The file, for messages.
        sort: Warn (:class:`TraceOrderWarning`) rather than raise.
        noun: What a column is called in the file's format (``"field"`` for JSON).
    """
    back = np.diff(values) < 0
    if not back.any():
        return
    i = int(np.argmax(back)) + 1
    text, lines = raw[column], raw.index
    where = (
        f"{_cell(p, column, lines[i], noun)}: {text.iloc[i]!r} is earlier than line "
        f"{lines[i - 1]} ({text.iloc[i - 1]!r})"
    )
    if not sort:
        raise ValueError(f"{where}; rows must be sorted by {column}")
    warnings.warn(
        f"{where}: {int(back.sum())} row(s) out of order, re-sorted by {column}",
        TraceOrderWarning,
        stacklevel=3,
    )


def load_azure_llm_2023(
    path: str | Path, kind: Literal["conv", "code"] | None = None, *, sort: bool = True
) -> pd.DataFrame:
    """Load an Azure LLM inference trace 2023 CSV (``TIMESTAMP,ContextTokens,GeneratedTokens``).

    Source: Azure/AzurePublicDataset, CC-BY-4.0; cite Patel et al., "Splitwise", ISCA 2024.
    Checked as :func:`load_request_csv`: an unparseable timestamp, a non-numeric, NaN/inf,
    fractional or < 1 token count, or an empty file is an error naming the file, the column,
    the line and the value.

    Args:
        path: The CSV file, or the folder holding it when ``kind`` is given.
        kind: ``"conv"`` or ``"code"``: pick that file inside the folder ``path``.
        sort: Re-sort rows out of timestamp order with a :class:`TraceOrderWarning`;
            ``False`` makes it an error.

    Returns:
        Table ``arrival_s, prompt_tokens, output_tokens`` (one row per request).

    Raises:
        FileNotFoundError: Naming the missing path.
        ValueError: An unknown ``kind``, or naming the file and the bad column / line / value.
    """
    if kind is not None and kind not in AZURE_2023_FILES:
        raise ValueError(f"kind must be one of {', '.join(AZURE_2023_FILES)} or None, got {kind!r}")
    p = _existing(Path(path) / AZURE_2023_FILES[kind] if kind is not None else path)
    raw = _read_text_csv(p, AZURE_2023_COLUMNS)
    _check_header(raw, p, AZURE_2023_COLUMNS, "requests")
    t_ns = _timestamp_column(raw, "TIMESTAMP", p)
    prompt = _numeric_column(raw, "ContextTokens", p, integer=True, minimum=1)
    output = _numeric_column(raw, "GeneratedTokens", p, integer=True, minimum=1)
    _check_arrivals(raw, "TIMESTAMP", t_ns, p, sort=sort)  # last: no warning before an error
    return _tidy((t_ns - t_ns.min()) / 1e9, prompt, output, str(p))


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
    _check_header(raw, p, TRACE_COLUMNS, "requests")
    arrival_s = _numeric_column(raw, "arrival_s", p, integer=False, minimum=0)
    prompt = _numeric_column(raw, "prompt_tokens", p, integer=True, minimum=1)
    output = _numeric_column(raw, "output_tokens", p, integer=True, minimum=1)
    _check_arrivals(raw, "arrival_s", arrival_s, p, sort=sort)  # last: no warning before an error
    return _tidy(arrival_s, prompt, output, str(p))


class _DuplicateKeyError(Exception):
    """A JSON object names one key twice (``json`` would keep the last silently)."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``object_pairs_hook`` of :func:`json.loads` that refuses a repeated key."""
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKeyError(key)
        obj[key] = value
    return obj


def _json_record(line: str, n: int, p: Path, fields: Sequence[str]) -> dict[str, object]:
    """Line ``n`` as a JSON object holding ``fields``, else an error naming the file and line."""
    where, expected = f"trace {str(p)!r}, line {n}", _jsonl_expected(fields)
    try:
        obj = json.loads(line, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{where}: not valid JSON ({exc.msg}, column {exc.colno}); expected {expected}"
        ) from None
    except _DuplicateKeyError as exc:
        raise ValueError(
            f"{where}: field {exc.args[0]!r} given twice; expected {expected}"
        ) from None
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: a JSON {type(obj).__name__}; expected {expected}")
    missing = [f for f in fields if f not in obj]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}; expected {expected}")
    return obj


def _jsonl_expected(fields: Sequence[str]) -> str:
    """What a JSON Lines trace must hold, for messages."""
    return f"one JSON object per line with fields {', '.join(fields)}"


def _read_text_jsonl(p: Path, fields: Sequence[str]) -> list[tuple[int, dict[str, object]]]:
    """``(line number, object)`` of every non-blank line (:func:`_json_record`)."""
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"trace {str(p)!r} is not UTF-8 text (byte offset {exc.start}); expected "
            f"{_jsonl_expected(fields)}"
        ) from None
    except OSError as exc:
        raise ValueError(f"cannot read trace {str(p)!r}: {' '.join(str(exc).split())}") from None
    records = [
        (n, _json_record(line, n, p, fields))
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    if not records:
        raise ValueError(f"trace {str(p)!r} is empty; expected {_jsonl_expected(fields)}")
    return records


def _json_cells(
    records: list[tuple[int, dict[str, object]]], fields: Sequence[str]
) -> pd.DataFrame:
    """Fields as JSON text indexed by line number, for :func:`_numeric_column`.

    A JSON string stays quoted (``'"12"'``), so only JSON numbers convert.
    """
    return pd.DataFrame(
        {f: [json.dumps(obj[f]) for _, obj in records] for f in fields},
        index=[n for n, _ in records],
    )


def _hash_ids(value: object, p: Path, line: int) -> tuple[int, ...]:
    """A record's ``hash_ids``: a JSON list of whole numbers >= 0, else an error naming it."""
    if not isinstance(value, list) or not all(
        isinstance(h, int) and not isinstance(h, bool) and 0 <= h <= MAX_TRACE_INT for h in value
    ):
        shown = json.dumps(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ValueError(
            f"{_cell(p, 'hash_ids', line, 'field')}: {shown} is not a list of block hashes; "
            "allowed: a JSON list of whole numbers >= 0 (or no hash_ids field)"
        )
    return tuple(value)


def load_mooncake(path: str | Path, *, sort: bool = True) -> pd.DataFrame:
    """Load a Mooncake FAST'25 trace (JSONL), keeping the prefix-block hashes.

    Fields: ``timestamp`` (ms, relative), ``input_length``, ``output_length``, ``hash_ids``
    (remapped hashes of the prompt's 512-token blocks, :data:`MOONCAKE_BLOCK_TOKENS`; equal ids
    mean a reusable KV prefix, MANIFEST A2). Checked as :func:`load_request_csv`: a line that
    is not a JSON object, a missing field, a timestamp that is not a number >= 0, a length that
    is not a whole JSON number >= 1 or ``hash_ids`` that is not a list of whole numbers >= 0 is
    an error naming the file, the field, the line and the value. Other fields are ignored.

    Source: kvcache-ai/Mooncake, Apache-2.0; cite Qin et al., "Mooncake", FAST 2025.

    Args:
        path: The JSONL file.
        sort: Re-sort records out of timestamp order with a :class:`TraceOrderWarning`;
            ``False`` makes it an error.

    Returns:
        Table ``arrival_s, prompt_tokens, output_tokens, hash_ids``; ``hash_ids`` holds one
        ``tuple[int, ...]`` per row (empty when the field is absent), for prefix caching.

    Raises:
        FileNotFoundError: Naming the missing path.
        ValueError: Naming the file and the bad field / line / value.
    """
    p = _existing(path)
    records = _read_text_jsonl(p, MOONCAKE_FIELDS)
    raw = _json_cells(records, MOONCAKE_FIELDS)
    t_ms = _numeric_column(raw, "timestamp", p, integer=False, minimum=0, noun="field")
    prompt = _numeric_column(raw, "input_length", p, integer=True, minimum=1, noun="field")
    output = _numeric_column(raw, "output_length", p, integer=True, minimum=1, noun="field")
    hashes: list[object] = [
        _hash_ids(obj["hash_ids"], p, n) if "hash_ids" in obj else () for n, obj in records
    ]
    _check_arrivals(raw, "timestamp", t_ms, p, sort=sort, noun="field")  # last, as above
    return _tidy(t_ms / 1e3, prompt, output, str(p), extra={"hash_ids": hashes})


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
