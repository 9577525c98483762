"""Bad trace CSV files: each is one ``edgetwin: error:`` line, exit 2, nothing touched."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_harness import expect_one_line_error

from edgetwin.sim.workload.traces import TraceOrderWarning, load_request_csv

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
    ("zero_tokens", H + "0,0,5\n", ["bad.csv", "token count", ">= 1"]),
    ("negative_tokens", H + "0,5,-3\n", ["bad.csv", "token count"]),
    ("bool_tokens", H + "0,true,5\n", ["prompt_tokens", "true"]),
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
