"""Bad trace files: each is one ``edgetwin: error:`` line, exit 2, nothing touched.

The generic CSV and the Azure 2023 CSV are reached through ``edgetwin serve --trace``; the
Mooncake JSONL and the ServeGen window files only through the Python loaders, which must raise
the documented ``ValueError`` with one line naming the file, the column / field, the line and
what is allowed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from corpus_harness import expect_one_line_error, snapshot

from edgetwin.sim.workload.servegen import load_servegen_windows, servegen_arrivals
from edgetwin.sim.workload.traces import (
    TraceOrderWarning,
    load_azure_llm_2023,
    load_mooncake,
    load_request_csv,
)

H = "arrival_s,prompt_tokens,output_tokens\n"
SERVE = ["serve", "--trace", "bad.csv", "--hardware", "rtx4090", "--kv-blocks", "1000"]
SERVE += ["--out", "res"]

# (id, CSV text, words the one line must mention)
CASES: list[tuple[str, str, list[str]]] = [
    ("negative_arrival", H + "-1,10,5\n0.1,10,5\n", ["bad.csv", "arrival_s", "line 2", ">= 0"]),
    ("fractional_prompt", H + "0,10.5,5\n", ["bad.csv", "prompt_tokens", "line 2", "10.5"]),
    ("fractional_output", H + "0,10,5\n1,10,2.25\n", ["output_tokens", "line 3", "2.25"]),
    ("non_numeric_tokens", H + "0,abc,5\n", ["bad.csv", "prompt_tokens", "line 2", "abc"]),
    ("non_numeric_arrival", H + "soon,10,5\n", ["arrival_s", "line 2", "soon"]),
    ("nan_tokens", H + "0,nan,5\n", ["prompt_tokens", "nan"]),
    ("inf_arrival", H + "inf,10,5\n", ["arrival_s", "finite"]),
    ("nan_arrival", H + "0,1,1\nNaN,10,5\n", ["arrival_s", "line 3"]),
    ("blank_cell", H + "0,,5\n", ["prompt_tokens", "line 2"]),
    ("short_row", H + "0,10\n", ["output_tokens", "line 2"]),
    ("long_row", H + "0,1,5,9\n", ["bad.csv", "more fields"]),
    ("missing_columns", "arrival_s,prompt\n0,1\n", ["bad.csv", "prompt_tokens", "output_tokens"]),
    ("header_only", H, ["bad.csv", "no requests"]),
    ("empty_file", "", ["bad.csv"]),
    ("zero_tokens", H + "0,0,5\n", ["bad.csv", "prompt_tokens", "line 2", ">= 1"]),
    ("negative_tokens", H + "0,5,-3\n", ["bad.csv", "output_tokens", "'-3'", ">= 1"]),
    ("bool_tokens", H + "0,true,5\n", ["prompt_tokens", "true"]),
    ("after_blank_line", H + "0,1,1\n\n0.5,x,1\n", ["prompt_tokens", "line 4", "'x'"]),
    ("huge_tokens", H + "0,1e19,1\n", ["prompt_tokens", "1e19", "2**53"]),
]


@pytest.mark.parametrize(("text", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_trace_is_one_line(workdir: Path, text: str, words: list[str]) -> None:
    (workdir / "bad.csv").write_text(text, encoding="utf-8")
    expect_one_line_error(workdir, SERVE, words)


def test_binary_trace_names_the_file(workdir: Path) -> None:
    (workdir / "bad.csv").write_bytes(b"\xff\xfe\x00\x01\x02")
    expect_one_line_error(workdir, SERVE, ["bad.csv"])


def test_missing_trace_names_the_file(workdir: Path) -> None:
    expect_one_line_error(workdir, SERVE, ["bad.csv", "not found"])


def test_unsorted_trace_warns_or_errors(tmp_path: Path) -> None:
    """Out-of-order rows: re-sorted with a warning naming the line, or an error (sort=False)."""
    p = tmp_path / "t.csv"
    p.write_text(H + "0.5,10,5\n0.1,10,5\n", encoding="utf-8")
    with pytest.warns(TraceOrderWarning, match="line 3"):
        df = load_request_csv(p)
    assert df["arrival_s"].tolist() == [0.0, 0.4]
    with pytest.raises(ValueError, match=r"t\.csv.*arrival_s.*line 3.*sorted"):
        load_request_csv(p, sort=False)


# ----------------------------------------------------------------------------------------
# Azure LLM inference trace 2023 (CSV): through the CLI and the Python loader
# ----------------------------------------------------------------------------------------
AZ = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
T0, T1 = "2023-11-16 18:15:46.6805900", "2023-11-16 18:15:50.9951690"

AZURE_CASES: list[tuple[str, str, list[str]]] = [
    ("bad_timestamp", AZ + f"{T0},10,5\nyesterday,10,5\n", ["TIMESTAMP", "line 3", "yesterday"]),
    ("blank_timestamp", AZ + ",10,5\n", ["bad.csv", "TIMESTAMP", "line 2", "iso 8601"]),
    ("month_13", AZ + "2023-13-01 00:00:00,10,5\n", ["TIMESTAMP", "2023-13-01", "date-time"]),
    ("fractional_context", AZ + f"{T0},10.5,5\n", ["ContextTokens", "line 2", "whole number"]),
    ("negative_generated", AZ + f"{T0},10,-5\n", ["GeneratedTokens", "'-5'", ">= 1"]),
    ("zero_generated", AZ + f"{T0},10,5\n{T1},10,0\n", ["GeneratedTokens", "line 3", ">= 1"]),
    ("nan_context", AZ + f"{T0},NaN,5\n", ["ContextTokens", "nan", "whole numbers >= 1"]),
    ("text_context", AZ + f"{T0},ten,5\n", ["bad.csv", "ContextTokens", "'ten'"]),
    ("huge_context", AZ + f"{T0},1e30,5\n", ["ContextTokens", "1e30", "2**53"]),
    ("header_only", AZ, ["bad.csv", "no requests"]),
    ("long_row", AZ + f"{T0},10,5,7\n", ["bad.csv", "more fields", "TIMESTAMP,ContextTokens"]),
]


@pytest.mark.parametrize(
    ("text", "words"), [c[1:] for c in AZURE_CASES], ids=[c[0] for c in AZURE_CASES]
)
def test_bad_azure_trace_is_one_line(workdir: Path, text: str, words: list[str]) -> None:
    (workdir / "bad.csv").write_text(text, encoding="utf-8")
    expect_one_line_error(workdir, SERVE, words)


@pytest.mark.parametrize(
    ("text", "words"), [c[1:] for c in AZURE_CASES], ids=[c[0] for c in AZURE_CASES]
)
def test_bad_azure_trace_raises_in_python(tmp_path: Path, text: str, words: list[str]) -> None:
    (tmp_path / "bad.csv").write_text(text, encoding="utf-8")
    _expect_value_error(tmp_path, lambda p: load_azure_llm_2023(p / "bad.csv"), words)


def test_azure_unknown_kind_lists_the_kinds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"kind must be one of conv, code.*'chat'"):
        load_azure_llm_2023(tmp_path, "chat")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------
# Mooncake FAST'25 (JSON Lines): the Python loader
# ----------------------------------------------------------------------------------------
def _mc(timestamp: Any = 0, input_length: Any = 5, output_length: Any = 1, **extra: str) -> str:
    """One JSONL record, values given as JSON text."""
    fields = {
        "timestamp": timestamp,
        "input_length": input_length,
        "output_length": output_length,
        **extra,
    }
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}\n"


MOONCAKE_CASES: list[tuple[str, str, list[str]]] = [
    (
        "garbled_line",
        _mc() + '{"timestamp": 1, "input_length": 5\n',
        ["bad.jsonl", "line 2", "json"],
    ),
    ("trailing_data", _mc() + _mc().strip() + " {}\n", ["line 2", "not valid json"]),
    ("not_an_object", "[0, 5, 1]\n", ["bad.jsonl", "line 1", "json list", "timestamp"]),
    ("missing_field", '{"timestamp": 0, "input_length": 5}\n', ["line 1", "output_length"]),
    (
        "duplicate_key",
        '{"timestamp": 0, "timestamp": 9, "input_length": 5, "output_length": 1}\n',
        ["line 1", "'timestamp'", "twice"],
    ),
    ("negative_timestamp", _mc(timestamp=-5), ["field 'timestamp'", "line 1", "'-5'", ">= 0"]),
    ("string_timestamp", _mc(timestamp='"0"'), ["timestamp", "'\"0\"'", "finite number"]),
    ("nan_timestamp", _mc() + "\n" + _mc(timestamp="NaN"), ["timestamp", "line 3", "nan"]),
    ("infinite_timestamp", _mc(timestamp="Infinity"), ["timestamp", "infinity", "finite"]),
    ("fractional_length", _mc(input_length=5.5), ["input_length", "'5.5'", "whole number"]),
    ("zero_output", _mc(output_length=0), ["output_length", "line 1", ">= 1"]),
    ("bool_length", _mc(input_length="true"), ["input_length", "'true'", "whole numbers"]),
    ("null_length", _mc(output_length="null"), ["output_length", "'null'"]),
    ("hash_ids_string", _mc(hash_ids='"1,2"'), ["hash_ids", "line 1", "list", ">= 0"]),
    ("hash_ids_negative", _mc() + _mc(hash_ids="[1, -2]"), ["hash_ids", "line 2", "[1, -2]"]),
    ("hash_ids_fraction", _mc(hash_ids="[1, 2.5]"), ["hash_ids", "2.5", "whole numbers"]),
    ("hash_ids_bool", _mc(hash_ids="[true]"), ["hash_ids", "[true]"]),
    ("hash_ids_null", _mc(hash_ids="null"), ["hash_ids", "null", "no hash_ids field"]),
    ("empty_file", "", ["bad.jsonl", "empty", "one json object per line"]),
    ("blank_lines_only", "\n \n", ["bad.jsonl", "empty"]),
]


@pytest.mark.parametrize(
    ("text", "words"), [c[1:] for c in MOONCAKE_CASES], ids=[c[0] for c in MOONCAKE_CASES]
)
def test_bad_mooncake_trace_raises_one_line(tmp_path: Path, text: str, words: list[str]) -> None:
    (tmp_path / "bad.jsonl").write_text(text, encoding="utf-8")
    _expect_value_error(tmp_path, lambda p: load_mooncake(p / "bad.jsonl"), words)


def test_binary_mooncake_trace_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_bytes(b'{"timestamp": \xff}\n')
    _expect_value_error(tmp_path, lambda p: load_mooncake(p / "bad.jsonl"), ["bad.jsonl", "utf-8"])


def test_mooncake_extra_fields_and_blank_lines_are_fine(tmp_path: Path) -> None:
    """Other fields are ignored; blank lines are skipped but line numbers stay the file's."""
    p = tmp_path / "ok.jsonl"
    p.write_text(_mc(note='"x"') + "\n" + _mc(timestamp=1500, input_length=7, hash_ids="[]"))
    df = load_mooncake(p)
    assert df["arrival_s"].tolist() == [0.0, 1.5]
    assert df["prompt_tokens"].tolist() == [5, 7]
    assert df["hash_ids"].tolist() == [(), ()]


def test_unsorted_mooncake_warns_or_errors(tmp_path: Path) -> None:
    p = tmp_path / "m.jsonl"
    p.write_text(_mc(timestamp=500) + "\n" + _mc(timestamp=100, input_length=9))
    with pytest.warns(
        TraceOrderWarning, match=r"'timestamp', line 3: '100' is earlier than line 1"
    ):
        df = load_mooncake(p)
    assert df["arrival_s"].tolist() == [0.0, 0.4]
    assert df["prompt_tokens"].tolist() == [9, 5]
    with pytest.raises(ValueError, match=r"m\.jsonl.*timestamp.*line 3.*sorted"):
        load_mooncake(p, sort=False)


def test_unsorted_azure_warns_or_errors(tmp_path: Path) -> None:
    p = tmp_path / "az.csv"
    p.write_text(AZ + f"{T1},10,5\n{T0},20,5\n", encoding="utf-8")
    with pytest.warns(TraceOrderWarning, match=r"'TIMESTAMP', line 3.*earlier than line 2"):
        df = load_azure_llm_2023(p)
    assert df["prompt_tokens"].tolist() == [20, 10]
    assert df["arrival_s"].iloc[1] == pytest.approx(4.314579)
    with pytest.raises(ValueError, match=r"az\.csv.*TIMESTAMP.*line 3.*sorted"):
        load_azure_llm_2023(p, sort=False)


def test_no_warning_before_an_error(tmp_path: Path) -> None:
    """An unsorted trace with a bad value is one error, not a warning and then an error."""
    p = tmp_path / "t.csv"
    p.write_text(H + "0.5,10,5\n0.1,10,x\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", TraceOrderWarning)
        with pytest.raises(ValueError, match=r"output_tokens.*line 3.*'x'"):
            load_request_csv(p)


# ----------------------------------------------------------------------------------------
# ServeGen client windows (CSV): the Python loader and servegen_arrivals
# ----------------------------------------------------------------------------------------
SG = "client_id,window_start_s,rate_rps,iat_cv,iat_dist,dist_param1,dist_param2\n"
ROW = "0,0,1.0,2.0,Gamma,0.25,4.0\n"

SERVEGEN_CASES: list[tuple[str, str, list[str]]] = [
    ("negative_rate", SG + ROW + "0,600,-1,2.0,Gamma,0.25,4.0\n", ["rate_rps", "line 3", ">= 0"]),
    ("nan_rate", SG + "0,0,nan,2.0,Gamma,0.25,4.0\n", ["rate_rps", "'nan'", "finite"]),
    ("zero_cv", SG + "0,0,1.0,0,Gamma,0.25,4.0\n", ["iat_cv", "line 2", "'0'", "> 0"]),
    ("negative_cv", SG + "0,0,1.0,-2,Weibull,0.25,4.0\n", ["iat_cv", "'-2'", "> 0"]),
    ("infinite_cv", SG + "0,0,1.0,inf,Gamma,0.25,4.0\n", ["iat_cv", "'inf'", "finite numbers > 0"]),
    (
        "unknown_dist",
        SG + "0,0,1.0,2.0,Lognormal,0.25,4.0\n",
        ["iat_dist", "lognormal", "gamma, weibull"],
    ),
    (
        "lowercase_dist",
        SG + "0,0,1.0,2.0,gamma,0.25,4.0\n",
        ["iat_dist", "'gamma'", "Gamma, Weibull"],
    ),
    ("zero_param1", SG + "0,0,1.0,2.0,Gamma,0,4.0\n", ["dist_param1", "line 2", "> 0"]),
    ("negative_param2", SG + "0,0,1.0,2.0,Gamma,0.25,-4\n", ["dist_param2", "'-4'", "> 0"]),
    ("fractional_client", SG + "0.5,0,1.0,2.0,Gamma,0.25,4.0\n", ["client_id", "'0.5'", "whole"]),
    ("negative_client", SG + "-1,0,1.0,2.0,Gamma,0.25,4.0\n", ["client_id", "'-1'", ">= 0"]),
    ("negative_window", SG + "0,-600,1.0,2.0,Gamma,0.25,4.0\n", ["window_start_s", ">= 0"]),
    ("text_window", SG + "0,noon,1.0,2.0,Gamma,0.25,4.0\n", ["window_start_s", "'noon'"]),
    (
        "duplicate_window",
        SG + ROW + "1,0,1.0,2.0,Gamma,0.25,4.0\n" + ROW,
        ["bad.csv", "line 4", "client_id 0", "duplicates", "line 2"],
    ),
    (
        "overlapping_window",
        SG + ROW + "0,300,1.0,2.0,Gamma,0.25,4.0\n",
        ["line 3", "300 s overlaps", "0 s on line 2", "600 s apart"],
    ),
    ("short_row", SG + "0,0,1.0,2.0\n", ["iat_dist", "line 2"]),
    ("long_row", SG + "0,0,1.0,2.0,Gamma,0.25,4.0,9\n", ["bad.csv", "more fields"]),
    ("missing_columns", "client_id,window_start_s\n0,0\n", ["rate_rps", "iat_dist", "expected"]),
    ("header_only", SG, ["bad.csv", "no windows"]),
    ("empty_file", "", ["bad.csv", "empty", "client_id,window_start_s"]),
]


@pytest.mark.parametrize(
    ("text", "words"), [c[1:] for c in SERVEGEN_CASES], ids=[c[0] for c in SERVEGEN_CASES]
)
def test_bad_servegen_file_raises_one_line(tmp_path: Path, text: str, words: list[str]) -> None:
    (tmp_path / "bad.csv").write_text(text, encoding="utf-8")
    _expect_value_error(tmp_path, lambda p: load_servegen_windows(p / "bad.csv"), words)
    rng = np.random.default_rng(0)  # the public generator reports the same line
    _expect_value_error(
        tmp_path, lambda p: servegen_arrivals(p / "bad.csv", rng, duration_s=600.0), words
    )


def test_servegen_zero_rate_window_loads_and_yields_nothing(tmp_path: Path) -> None:
    """rate_rps = 0 is allowed (a window without arrivals), as the loader documents."""
    p = tmp_path / "w.csv"
    p.write_text(SG + "3,600,0,2.0,Weibull,0.25,4.0\n" + "3,0,1.0,2.0,Gamma,0.25,4.0\n")
    df = load_servegen_windows(p)
    assert df["client_id"].tolist() == [3, 3]
    assert df["window_start_s"].tolist() == [600, 0]  # file order, not sorted
    t = servegen_arrivals(p, np.random.default_rng(1), start_s=600.0, duration_s=600.0)
    assert t.size == 0


def _expect_value_error(folder: Path, call: Callable[[Path], object], words: list[str]) -> str:
    """``call(folder)`` raises one ``ValueError`` line naming ``words``; ``folder`` unchanged."""
    before = snapshot(folder)
    with pytest.raises(ValueError, match=r"^trace '") as info:  # it names the file first
        call(folder)
    message = str(info.value)
    assert "\n" not in message, message
    assert len(message) <= 600, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    assert snapshot(folder) == before
    return message
