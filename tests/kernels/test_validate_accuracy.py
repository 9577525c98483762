"""The profiles predict a real SmolLM-135M forward on the machine that took them (issue 16).

The test profiles the operators the cost model composes (quick grid, cache-cold, one thread) on
the machine running it, then times a Hugging Face model of SmolLM-135M's dimensions (random
weights) at two cells whose every operator shape is a point of the quick grid — a batch-1
decode over 32 cached tokens and a batch-1 prefill of 8 tokens — so no interpolation or
extrapolation enters, and compares. Bound: |error| <= 50 % per cell. The justification: on the
full grid with the shipped profiles (kernels/README.md, "Whole-model validation") the batch-1
cells are within 12 % (decode within 3 %), and in three runs of this test here the cells were at
-9 to -11 % twice and at -36 % / -24 % once, when the same decode measured 82 ms instead of 63 ms:
a 2-core shared VM's run-to-run spread. The profiles shipped before cache-cold timing predicted
the batch-1 decode 85 % short, so the bound still catches a regression of that kind.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from edgetwin.kernels.models import get_model
from edgetwin.kernels.profile import profile
from edgetwin.sim.compute.table_cost import ELEMENTWISE_CALLS, LAYER_GEMMS

BOUND_PCT = 50.0
OPS = [*LAYER_GEMMS, "lm_head", "attn_prefill", "attn_decode", *ELEMENTWISE_CALLS, "sampler"]


def test_quick_profile_predicts_smollm_135m_within_bound(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from edgetwin.kernels import validate as val

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = get_model("smollm-135m")
        profile(spec, "cpu", tmp_path, ops=OPS, quick=True, repeats=7, max_time_s=0.3)
        run = {"quick": True, "repeats": 5}
        decode = val.validate(
            spec, "cpu", tmp_path, batches=[1], contexts=[32], kinds=["decode"], **run
        )
        prefill = val.validate(
            spec, "cpu", tmp_path, batches=[1], contexts=[8], kinds=["prefill"], **run
        )
    finally:
        torch.set_num_threads(threads)
    cells = pd.concat([decode, prefill], ignore_index=True)
    assert cells[["kind", "batch", "context"]].values.tolist() == [
        ["decode", 1, 32],
        ["prefill", 1, 8],
    ]
    print(cells[["kind", "batch", "context", "measured_ms", "predicted_ms", "error_pct"]])  # noqa: T201
    assert (cells["error_pct"].abs() <= BOUND_PCT).all(), cells["error_pct"].tolist()
