import pandas as pd
import pytest

from edgetwin.sim.compute.profiles import (
    PROFILE_COLUMNS,
    ProfileSchemaError,
    read_profile,
    validate_profile,
    write_profile,
)


def _row(**kw):
    base = {
        "op": "linear_qkv", "model": "smollm-135m", "device": "cpu", "dtype": "float32",
        "n_tokens": 16, "batch_size": 1, "context_len": 0, "rank": 0, "bits": 0, "n_bytes": 0,
        "tp": 1, "flops": 1e6, "bytes_moved": 1e5, "time_median_s": 1e-4, "time_p90_s": 2e-4,
        "n_repeats": 10, "source": "edgetwin-kernels",
    }  # fmt: skip
    return {**base, **kw}


def test_round_trip_is_atomic_and_canonical(tmp_path):
    df = pd.DataFrame([_row(), _row(n_tokens=32, time_median_s=2e-4)])
    path = write_profile(df[list(reversed(df.columns))], tmp_path / "cpu" / "m" / "linear_qkv.csv")
    back = read_profile(path)
    assert list(back.columns) == list(PROFILE_COLUMNS)
    assert back["n_tokens"].tolist() == [16, 32]
    assert [p.name for p in path.parent.iterdir()] == ["linear_qkv.csv"]  # no temp file left


def test_schema_errors_name_the_problem(tmp_path):
    with pytest.raises(ProfileSchemaError, match="missing columns"):
        validate_profile(pd.DataFrame([_row()]).drop(columns=["flops"]))
    with pytest.raises(ProfileSchemaError, match="unknown op"):
        validate_profile(pd.DataFrame([_row(op="softmax")]))
    with pytest.raises(ProfileSchemaError, match="time_median_s must be > 0"):
        validate_profile(pd.DataFrame([_row(time_median_s=0.0)]))
    with pytest.raises(FileNotFoundError, match="profile file not found"):
        read_profile(tmp_path / "absent.csv")
    # A failed write leaves a pre-existing file untouched.
    path = write_profile(pd.DataFrame([_row()]), tmp_path / "p.csv")
    before = path.read_text()
    with pytest.raises(ProfileSchemaError):
        write_profile(pd.DataFrame([_row(op="softmax")]), path)
    assert path.read_text() == before
