"""Many seeds of one radio scenario run as one cell batch, with the results of one-by-one runs.

``edgetwin compare`` and ``sweep`` run a policy set on several seeds. For a one-cell, radio-only
scenario in which every slot carries data for every seed (full buffer, FDD), the seeds' cells
sit at the same slot throughout, so the set's policies can decide for all of them at once: the
built-in ``prb``/``power`` baselines already act on a leading cell axis (PF keeps one average
per row, round robin one pointer per row), and the members of a
:class:`~edgetwin.sim.radio.cell_batch.CellBatch` are bit-identical to their runs alone. Each
seed's simulation is then closed with the batch's state written back, so its ``results()`` —
tables and summary — equal ``build(...).run()``'s (``tests/scenarios/test_batch_run.py``); only
``wall_s`` is the run's share of the batch's wall time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgetwin.scenarios.builder import PolicyLike, build, policy_label, policy_plan
from edgetwin.scenarios.schema import ScenarioConfig
from edgetwin.sim.metrics.summary import RunResult
from edgetwin.sim.radio.cell import CellGroup
from edgetwin.sim.radio.cell_batch import CellBatch


class NotBatchableError(ValueError):
    """The scenario (or what its build made) cannot run as a cell batch."""


def batchable(config: ScenarioConfig) -> bool:
    """Whether ``config``'s seeds can run as one lock-step cell batch (see the module doc)."""
    tdd = config.cell.tdd
    return (
        config.topology.kind == "single"
        and config.traffic.kind == "full_buffer"
        and (tdd is None or tdd.duplex == "fdd")
        and set(config.model_dump(exclude_none=True)) & _OTHER_PARTS == set()
    )


#: Scenario sections that add components beside the radio (a batch runs the radio only).
_OTHER_PARTS = {"uplink", "nodes", "network", "workload", "serving", "speculative"}


def run_batch(
    config: ScenarioConfig, policies: Mapping[str, PolicyLike], seeds: Sequence[int]
) -> list[tuple[dict[str, PolicyLike], dict[str, str], RunResult]]:
    """Run ``config`` with ``policies`` on every seed as one batch (``batchable`` scenarios).

    Returns:
        Per seed, what :func:`edgetwin.scenarios.run.run_once` returns: the policy plan, its
        labels and the run's result.

    Raises:
        NotBatchableError: A scenario that is not :func:`batchable`, or whose build made components
            other than a radio cell group.
    """
    if not batchable(config):
        raise NotBatchableError(f"scenario {config.name!r} cannot run as a cell batch")
    t0 = time.perf_counter()
    plan = policy_plan(config, dict(policies))
    labels = {f: policy_label(v) for f, v in plan.items()}
    sims = [build(config, plan, int(seed)) for seed in seeds]
    members = []
    for sim in sims:
        cell = sim.components.get("radio")
        if set(sim.components) != {"radio"} or not isinstance(cell, CellGroup):
            raise NotBatchableError(f"scenario {config.name!r} builds more than a radio cell group")
        members.append(cell)
    # The first seed's policy objects decide for the batch (fresh, one row per member).
    prb_dp, power_dp = members[0].prb_dp, members[0].power_dp
    batch = CellBatch(members, record=True)
    rows = np.arange(len(members))
    batch.prepare(rows)
    while not batch.done.all():
        if not (batch.slot == batch.slot[0]).all():
            raise RuntimeError("cell batch members left lock step")  # guarded by batchable
        obs: dict[str, Any] = {**batch.observation(), "slot": int(batch.slot[0])}
        alloc = np.ascontiguousarray(prb_dp.decide(obs), dtype=np.int64)
        if alloc.shape != (batch.n_member, batch.n_prb):
            raise ValueError(
                f"PRB action must have shape {(batch.n_member, batch.n_prb)}, got {alloc.shape}"
            )
        pobs = {**batch.power_observation(alloc), "slot": obs["slot"]}
        batch.transmit(rows, alloc, power_dp.decide(pobs))
        batch.prepare(rows)
    batch.write_back()
    share = (time.perf_counter() - t0) / len(sims)
    out = []
    for sim in sims:
        sim.finish_outside(share)
        out.append((dict(plan), labels, sim.results()))
    return out
