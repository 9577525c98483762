from __future__ import annotations

import pytest
import torch

from edgetwin.kernels.timing import run_metadata, time_callable


def test_tiny_shape_timing_positive():
    a = torch.randn(8, 8)
    res = time_callable(lambda: a @ a, warmup=1, repeats=5, max_time_s=1.0)
    assert res.n_repeats == 5
    assert res.median_s > 0
    assert res.p90_s >= res.median_s
    assert len(res.samples_s) == 5


def test_time_budget_stops_early():
    res = time_callable(lambda: sum(range(20000)), repeats=1000, min_repeats=3, max_time_s=0.0)
    assert res.n_repeats == 3


def test_bad_repeats():
    with pytest.raises(ValueError, match="min_repeats"):
        time_callable(lambda: None, repeats=2, min_repeats=3)


def test_metadata_fields():
    meta = run_metadata("cpu", torch.float32, extra_field=1)
    for key in ("device_name", "dtype", "torch_version", "num_threads", "git_commit", "date_utc"):
        assert key in meta
    assert meta["dtype"] == "float32"
    assert meta["extra_field"] == 1


@pytest.mark.gpu
def test_cuda_event_timing():
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    a = torch.randn(256, 256, device="cuda")
    res = time_callable(lambda: a @ a, device="cuda", warmup=2, repeats=5)
    assert res.median_s > 0
    assert res.p90_s >= res.median_s
