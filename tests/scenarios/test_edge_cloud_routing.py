"""UEs' requests routed to LoRA adapters at the edge server of an edge–cloud scenario."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgetwin.envs.adapter_cache import RADIO_OVERRIDES
from edgetwin.scenarios.builder import build
from edgetwin.scenarios.load import load_scenario


def _overrides(**kw: Any) -> dict[str, Any]:
    return {
        **RADIO_OVERRIDES,
        "duration_s": 15.0,
        "nodes.edge.lora.n_adapters": 8,
        "workload.adapters": {"n_adapters": 8, "dim": 4, "router": "cache_aware"},
        **kw,
    }


def test_every_edge_request_is_routed_once_and_the_route_point_is_registered() -> None:
    sim = build(load_scenario("edge_cloud", _overrides()))
    assert "route.edge0" in sim.decision_points
    sim.run()
    res = sim.results()
    system = next(c for c in sim.components.values() if hasattr(c, "servers"))
    edge = system.servers["edge"][0]
    tab = edge.results().tables["requests"]
    assert len(tab) > 20
    assert ((tab["adapter"] >= 0) & (tab["adapter"] < 8)).all()
    assert edge.routing.dp.n_decisions == len(tab)
    pool = edge.adapters
    ran = pool.n_hits + pool.n_misses  # each admitted request counted once, on its adapter
    admitted = tab["first_scheduled_s"].notna()
    np.testing.assert_array_equal(ran, np.bincount(tab["adapter"][admitted], minlength=8))
    servers = res.tables["servers"]
    assert servers.loc[0, "route_decisions"] == len(tab)
    assert np.isfinite(servers.loc[0, "net_utility_mean"])


@pytest.mark.parametrize(
    ("adapters", "match"),
    [
        ({"n_adapters": 8, "dim": 4}, r"workload\.adapters\.router is required"),
        ({"n_adapters": 5, "router": "linucb"}, r"n_adapters=5 differs from nodes\.edge\.lora"),
        ({"n_adapters": 8, "router": "nope"}, r"workload\.adapters\.router"),
    ],
)
def test_bad_workload_adapters_one_clear_line(adapters: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        load_scenario("edge_cloud", _overrides(**{"workload.adapters": adapters}))
    assert "\n" not in str(err.value)
