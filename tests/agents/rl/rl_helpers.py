"""Helpers of the trained-agent tests (a module with a unique name, imported by the tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgetwin.agents.rl.checkpoint import save_policy_checkpoint
from edgetwin.agents.rl.features import N_UE_FEATURES, RunningMeanStd
from edgetwin.agents.rl.networks import FlatActor, PerUEActor

#: nr_cell: 20 UEs, 51 PRBs.
NR_MAX_UE, NR_N_PRB = 20, 51


def random_checkpoint(
    path: Path, max_ue: int, n_prb: int, seed: int = 0, scale: float = 0.5
) -> Path:
    """A checkpoint of randomly initialized actors: PRB per-UE, power flat (joint slice)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    prb = PerUEActor(N_UE_FEATURES, hidden=16)
    power = FlatActor(max_ue * N_UE_FEATURES, 2 * max_ue, hidden=(16,))
    with torch.no_grad():
        for p in [*prb.parameters(), *power.parameters()]:
            p.normal_(0.0, scale)  # large weights: actions far from the all-equal baseline
    rms_ue = RunningMeanStd((N_UE_FEATURES,))
    rms_ue.update(rng.normal(0.5, 2.0, (64, N_UE_FEATURES)))
    rms_flat = RunningMeanStd((max_ue * N_UE_FEATURES,))
    rms_flat.update(rng.normal(0.5, 2.0, (64, max_ue * N_UE_FEATURES)))
    actors = {
        "prb": {
            "kind": "per_ue",
            "kwargs": {"n_features": N_UE_FEATURES, "hidden": 16},
            "state_dict": prb.state_dict(),
            "obs_rms": rms_ue.state_dict(),
            "clip_obs": 10.0,
            "slice": [0, max_ue],
            "zero_prb_count": False,
        },
        "power": {
            "kind": "flat",
            "kwargs": {"in_dim": max_ue * N_UE_FEATURES, "out_dim": 2 * max_ue, "hidden": [16]},
            "state_dict": power.state_dict(),
            "obs_rms": rms_flat.state_dict(),
            "clip_obs": 10.0,
            "slice": [max_ue, 2 * max_ue],
            "zero_prb_count": True,
        },
    }
    return save_policy_checkpoint(
        path, max_ue=max_ue, n_prb=n_prb, actors=actors, meta={"command": "random (test)"}
    )
