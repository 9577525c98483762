"""The profiles predict a real SmolLM-135M forward on the machine that took them (issue 16).

The test profiles the operators the cost model composes (quick grid, cache-cold, one thread) on
the machine running it, then times a Hugging Face model of SmolLM-135M's dimensions (random
weights) at three cells and compares. Bound: |error| <= 35 % per cell. The justification: on the
full grid with the shipped profiles (kernels/README.md, "Whole-model validation") every cell
of batch <= 4 at context <= 512 is within 23 %; the quick profile's coarser token grid (1, 8,
64: batch 4 is interpolated) and three repeats add up to ~10 % more. Before cache-cold timing,
the batch-1 decode was predicted 85 % short, so the bound catches a regression of that kind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgetwin.kernels.models import get_model
from edgetwin.kernels.profile import profile
from edgetwin.sim.compute.table_cost import ELEMENTWISE_CALLS, LAYER_GEMMS

BOUND_PCT = 35.0
OPS = [*LAYER_GEMMS, "lm_head", "attn_prefill", "attn_decode", *ELEMENTWISE_CALLS, "sampler"]


def test_quick_profile_predicts_smollm_135m_within_bound(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from edgetwin.kernels import validate as val

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = get_model("smollm-135m")
        profile(spec, "cpu", tmp_path, ops=OPS, quick=True)
        cells = val.validate(
            spec, "cpu", tmp_path, batches=[1, 4], contexts=[128], quick=True, repeats=3
        )
    finally:
        torch.set_num_threads(threads)
    assert set(zip(cells["kind"], cells["batch"], strict=True)) == {
        ("decode", 1),
        ("decode", 4),
        ("prefill", 1),
        ("prefill", 4),
    }
    print(cells[["kind", "batch", "context", "measured_ms", "predicted_ms", "error_pct"]])  # noqa: T201
    assert (cells["error_pct"].abs() <= BOUND_PCT).all(), cells["error_pct"].tolist()
