"""Cell batch: joint channel generation and member checks."""

from __future__ import annotations

import numpy as np
import pytest

from edgetwin.scenarios.builder import build
from edgetwin.scenarios.load import load_scenario
from edgetwin.sim.radio.cell_batch import CellBatch
from edgetwin.sim.radio.channel import next_batches


def _cell(seed: int, overrides: dict | None = None):
    return build(load_scenario("nr_cell", overrides or {"duration_s": 0.02}), seed=seed).components[
        "radio"
    ]


def test_joint_channel_batches_equal_each_channel_alone():
    alone = [_cell(s).channel for s in range(3)]
    joint = [_cell(s).channel for s in range(3)]
    for _ in range(2):  # the second batch checks the carried phases
        for a, b in zip([c.next_batch() for c in alone], next_batches(joint), strict=True):
            assert a.first_slot == b.first_slot
            np.testing.assert_array_equal(a.gain, b.gain)
            np.testing.assert_array_equal(a.large_scale_gain, b.large_scale_gain)


def test_members_must_share_the_configuration():
    with pytest.raises(ValueError, match="at least one member"):
        CellBatch([])
    other = _cell(1, {"duration_s": 0.02, "topology.ues_per_cell": 10})
    with pytest.raises(ValueError, match="must share the cell configuration"):
        CellBatch([_cell(0), other])
    multi = build(load_scenario("multi_cell_57", {"duration_s": 0.001}), seed=0).components["radio"]
    with pytest.raises(ValueError, match="must have one cell, got 57"):
        CellBatch([multi])


def test_a_batch_run_delivers_what_the_scenario_run_delivers():
    # PF + equal power decided member by member through the members' own policies: the batch's
    # per-UE delivered bits equal the inline scenario runs of the same seeds.
    from edgetwin.agents.baselines.power import equal_power
    from edgetwin.agents.registry import make_policy

    seeds = [3, 4]
    batch = CellBatch([_cell(s) for s in seeds])
    policies = [make_policy("prb/pf") for _ in seeds]
    rows = np.arange(len(seeds))
    batch.prepare(rows)
    while not batch.done.all():
        obs = batch.observation()
        alloc = np.stack(
            [
                p.act({k: (int(v[b]) if k == "slot" else v[b : b + 1]) for k, v in obs.items()})[0]
                for b, p in enumerate(policies)
            ]
        )
        batch.transmit(rows, alloc, equal_power(alloc, batch.max_power_w))
        batch.prepare(rows)
    for b, seed in enumerate(seeds):
        sim = build(load_scenario("nr_cell", {"duration_s": 0.02}), seed=seed)
        sim.run()
        cell = sim.components["radio"]
        np.testing.assert_array_equal(batch.m_ue[b], cell.m_ue[0])
        assert batch.n_active_slots[b] == cell.n_active_slots
