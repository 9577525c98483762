from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgetwin.sim.workload.traces import (
    MOONCAKE_BLOCK_TOKENS,
    TRACE_COLUMNS,
    TraceOrderWarning,
    block_reuse_fraction,
    load_azure_llm_2023,
    load_mooncake,
    load_request_csv,
    shared_data_dir,
)

AZURE = shared_data_dir() / "azure_llm_2023"


@pytest.mark.parametrize(("kind", "n_rows"), [("conv", 19_366), ("code", 8_819)])
def test_azure_2023(kind: str, n_rows: int) -> None:
    if not (AZURE / f"AzureLLMInferenceTrace_{kind}.csv").is_file():
        pytest.skip("Azure 2023 trace not present")
    df = load_azure_llm_2023(AZURE, kind)  # type: ignore[arg-type]
    assert tuple(df.columns) == TRACE_COLUMNS
    assert len(df) == n_rows
    t = df["arrival_s"].to_numpy()
    assert t[0] == 0.0
    assert np.all(np.diff(t) >= 0)
    assert 3000 < t[-1] < 3700  # about one hour
    assert (df["prompt_tokens"] >= 1).all()
    assert (df["output_tokens"] >= 1).all()
    if kind == "conv":  # MANIFEST: 5.53 req/s, input median 1020, output median 129
        assert len(df) / t[-1] == pytest.approx(5.53, rel=0.01)
        assert df["prompt_tokens"].median() == 1020
        assert df["output_tokens"].median() == 129
        assert df.iloc[0].tolist() == [0.0, 374, 44]
        assert df["arrival_s"].iloc[1] == pytest.approx(4.3145790)


def test_missing_files_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        load_request_csv(missing)
    with pytest.raises(FileNotFoundError, match=r"AzureLLMInferenceTrace_code\.csv"):
        load_azure_llm_2023(tmp_path, "code")


def test_generic_csv(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    pd.DataFrame(
        {"arrival_s": [10.0, 12.5, 11.0], "prompt_tokens": [5, 6, 7], "output_tokens": [1, 2, 3]}
    ).to_csv(p, index=False)
    with pytest.warns(UserWarning, match="line 4.*re-sorted"):  # never silently
        df = load_request_csv(p)
    np.testing.assert_allclose(df["arrival_s"], [0.0, 1.0, 2.5])
    assert df["prompt_tokens"].tolist() == [5, 7, 6]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"arrival_s": [0.0], "prompt_tokens": [1]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="output_tokens"):
        load_request_csv(bad)
    zero = tmp_path / "zero.csv"
    pd.DataFrame({"arrival_s": [0.0], "prompt_tokens": [0], "output_tokens": [1]}).to_csv(
        zero, index=False
    )
    with pytest.raises(ValueError, match=r"zero\.csv.*prompt_tokens.*line 2.*>= 1"):
        load_request_csv(zero)


MOONCAKE = shared_data_dir() / "mooncake_fast25"


@pytest.mark.parametrize(
    ("kind", "n_rows", "rate", "mean_in", "mean_out"),
    [("conversation", 12_031, 3.40, 12_035, 343), ("synthetic", 3_993, 3.91, 15_325, 149)],
)
def test_mooncake(kind: str, n_rows: int, rate: float, mean_in: int, mean_out: int) -> None:
    path = MOONCAKE / f"{kind}_trace.jsonl"
    if not path.is_file():
        pytest.skip("Mooncake trace not present")
    df = load_mooncake(path)
    assert len(df) == n_rows
    t = df["arrival_s"].to_numpy()
    assert t[0] == 0.0
    assert np.all(np.diff(t) >= 0)
    # MANIFEST A2 statistics
    assert len(df) / t[-1] == pytest.approx(rate, rel=0.01)
    assert df["prompt_tokens"].mean() == pytest.approx(mean_in, rel=1e-3)
    assert df["output_tokens"].mean() == pytest.approx(mean_out, rel=2e-3)


@pytest.mark.parametrize(("kind", "reuse"), [("conversation", 0.366), ("synthetic", 0.640)])
def test_mooncake_hash_ids_block_reuse(kind: str, reuse: float) -> None:
    path = MOONCAKE / f"{kind}_trace.jsonl"
    if not path.is_file():
        pytest.skip("Mooncake trace not present")
    df = load_mooncake(path)
    assert "hash_ids" in df.columns
    ids = df["hash_ids"]
    assert all(isinstance(h, tuple) for h in ids)
    # one 512-token block per started block of the prompt
    n_blocks = ids.map(len).to_numpy()
    need = -(-df["prompt_tokens"].to_numpy() // MOONCAKE_BLOCK_TOKENS)
    assert np.mean(n_blocks == need) > 0.99
    # MANIFEST A2 (3 decimals): fraction of prefix blocks already seen earlier in the trace
    assert block_reuse_fraction(ids) == pytest.approx(reuse, abs=1e-3)


def test_block_reuse_fraction_and_hash_ids_follow_rows(tmp_path: Path) -> None:
    assert block_reuse_fraction([(1, 2), (1, 3), (1, 2, 4)]) == pytest.approx(3 / 7)
    assert block_reuse_fraction([]) == 0.0
    p = tmp_path / "m.jsonl"
    p.write_text(
        '{"timestamp": 20, "input_length": 5, "output_length": 1, "hash_ids": [7, 8]}\n'
        '{"timestamp": 10, "input_length": 3, "output_length": 2, "hash_ids": [7]}\n'
    )
    with pytest.warns(TraceOrderWarning, match=r"m\.jsonl.*'timestamp', line 2.*re-sorted"):
        df = load_mooncake(p)
    assert df["hash_ids"].tolist() == [(7,), (7, 8)]
    assert df["prompt_tokens"].tolist() == [3, 5]
