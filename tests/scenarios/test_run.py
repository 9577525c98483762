"""build / run_scenario / compare: wiring, result writing (atomic), CIs, serial == parallel."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import edgetwin.scenarios.builder as build_mod
import edgetwin.scenarios.run as run_mod
from edgetwin.agents import PolicyRegistryError, make_policy
from edgetwin.scenarios.builder import build, policy_plan
from edgetwin.scenarios.load import load_scenario
from edgetwin.scenarios.run import (
    MARKER,
    atomic_dir,
    compare,
    parse_named_policy_sets,
    parse_policy_sets,
    run_scenario,
    summarize_comparison,
)
from edgetwin.scenarios.schema import PolicyRef
from edgetwin.sim.decision import DecisionPoint
from edgetwin.sim.metrics.summary import RunResult


# ----------------------------------------------------------------------------------------
# A tiny stand-in for the NR cell: same constructor, deterministic tables from the streams.
# ----------------------------------------------------------------------------------------
class FakeCells:
    def __init__(
        self,
        sim,
        *,
        cell,
        topology,
        mobility,
        channel,
        traffic,
        prb_policy,
        power_policy,
        traffic_ue_mask=None,
        name="radio",
    ):
        self.name = name
        self.env = sim.env
        self.n_ue = topology.ues_per_cell
        self.prb_policy = prb_policy
        self.gain = sim.streams.get("channel").exponential(size=(4, self.n_ue))
        self.arrivals = sim.streams.get("traffic").poisson(3.0, size=(4, self.n_ue))
        self.prb_dp = DecisionPoint(sim.env, "prb", prb_policy)
        self.power_dp = DecisionPoint(sim.env, "power", power_policy)
        sim.add_decision_point("prb", self.prb_dp)
        sim.add_decision_point("power", self.power_dp)
        self.n_slot = max(1, round(sim.horizon_s / 1e-3))
        self.ticks = 0

    def start(self):
        self.env.process(self._run())

    def _run(self):
        for _ in range(self.n_slot):
            self.ticks += 1
            yield self.env.timeout(1e-3)

    def finalize(self, now_s):
        pass

    def results(self):
        # Policy-dependent but deterministic "throughput": the scheduler's name sets a factor.
        factor = 1.0 + (len(type(self.prb_policy).__name__) % 5) / 10
        thr = self.gain.mean(axis=0) * factor
        ue = pd.DataFrame(
            {
                "cell": 0,
                "ue": np.arange(self.n_ue),
                "throughput_mbps": thr,
                "delivered_bits": thr * 1e6,
                "n_tx": 10,
                "n_nack": 1,
                "bler": 0.1,
                "mean_mcs": 10.0,
                "mean_sinr_db": 5.0,
                "distance_m": 100.0,
            }
        )
        slot = pd.DataFrame(
            {
                "slot": np.arange(self.ticks),
                "time_s": np.arange(self.ticks) * 1e-3,
                "cell": 0,
                "delivered_bits": 1000.0,
                "n_prb_used": 5,
                "n_tx": 2,
                "n_nack": np.arange(self.ticks) % 2,
                "mean_mcs": 12.0,
            }
        )
        mcs = pd.DataFrame({"mcs": np.arange(28), "count": np.ones(28, dtype=np.int64)})
        summary = {
            "cell_throughput_mbps": float(thr.sum()),
            "jain_index": 0.9,
            "ue_throughput_p5_mbps": float(np.percentile(thr, 5)),
            "bler": 0.1,
            "mean_mcs": float("nan"),
            "n_slots": self.n_slot,
        }
        return RunResult(tables={"ue": ue, "slot": slot, "mcs": mcs}, summary=summary)


@pytest.fixture
def fake_cell(monkeypatch):
    monkeypatch.setattr(build_mod, "CellGroup", FakeCells)


@pytest.fixture
def small():
    return load_scenario("small_cell", {"duration_s": 0.05})


# ----------------------------------------------------------------------------------------
# build
# ----------------------------------------------------------------------------------------
def test_build_uses_config_policies_and_overrides(fake_cell, small):
    sim = build(small)
    assert sim.decision_points["prb"].is_inline
    assert sim.decision_points["power"].is_inline
    assert type(sim.decision_points["prb"].policy).__name__ == "ProportionalFair"
    rr = make_policy("prb/rr")
    sim = build(small, policies={"prb": rr}, seed=7)
    assert sim.decision_points["prb"].policy is rr
    assert sim.seed == 7
    sim = build(small, policies={"prb": "maxrate", "power": PolicyRef(id="power/waterfilling")})
    assert type(sim.decision_points["prb"].policy).__name__ == "MaxRate"
    assert type(sim.decision_points["power"].policy).__name__ == "WaterFilling"


def test_build_detach_leaves_decision_point_external(fake_cell, small):
    sim = build(small, detach={"prb"})
    assert not sim.decision_points["prb"].is_inline
    assert sim.decision_points["power"].is_inline
    sim = build(small, policies={"power": None})
    assert not sim.decision_points["power"].is_inline


def test_build_rejects_bad_families_and_ids(fake_cell, small):
    with pytest.raises(ValueError, match="cache"):
        build(small, policies={"cache": "lru"})
    with pytest.raises(ValueError, match="both given a policy and detached"):
        build(small, policies={"prb": "pf"}, detach={"prb"})
    with pytest.raises(PolicyRegistryError, match=r"prb/pf.*allowed"):
        build(small, policies={"prb": "pff"})
    with pytest.raises(ValueError, match="non-negative"):
        build(small, seed=-1)


def test_policy_plan_resolves_short_names(small):
    plan = policy_plan(small, {"prb": "rr"})
    assert plan == {"prb": PolicyRef(id="prb/rr"), "power": PolicyRef(id="power/equal")}


# ----------------------------------------------------------------------------------------
# run_scenario and result writing (fake cell)
# ----------------------------------------------------------------------------------------
def test_run_writes_all_files(fake_cell, small, tmp_path):
    out = tmp_path / "res"
    res = run_scenario(small, policies={"prb": "rr"}, seed=3, out_dir=out, plots=True)
    assert res.summary["seed"] == 3
    names = {p.name for p in out.iterdir()}
    assert {
        "config.resolved.yaml",
        "summary.json",
        "ue.parquet",
        "slot.parquet",
        "mcs.parquet",
        "ue_throughput_cdf.png",
        "mcs_bler_over_time.png",
        MARKER,
    } <= names
    assert not [n for n in names if n.endswith(".part")]
    resolved = load_scenario(out / "config.resolved.yaml")
    assert resolved.seed == 3
    assert resolved.policies.prb.id == "prb/rr"
    assert resolved == small.model_copy(update={"seed": 3, "policies": resolved.policies})
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policies"] == {"prb": "prb/rr", "power": "power/equal"}
    assert summary["seed"] == 3
    assert {"python", "numpy", "simpy", "edgetwin"} <= set(summary["versions"])
    assert "git_commit" in summary
    assert summary["wall_s"] >= 0
    assert summary["metrics"]["mean_mcs"] is None  # NaN -> null (strict JSON)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "ue.parquet"), res.tables["ue"])
    # No temporary directories left next to the result.
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_failed_write_leaves_nothing_and_keeps_previous(fake_cell, small, tmp_path, monkeypatch):
    out = tmp_path / "res"
    run_scenario(small, out_dir=out, plots=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    calls = {"n": 0}
    real = run_mod._write_table

    def flaky(df, path, csv=False):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real(df, path, csv)

    monkeypatch.setattr(run_mod, "_write_table", flaky)
    with pytest.raises(OSError, match="disk full"):
        run_scenario(small, seed=5, out_dir=out, plots=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["res"]
    # A new target that fails is not created at all.
    calls["n"] = 0
    with pytest.raises(OSError, match="disk full"):
        run_scenario(small, out_dir=tmp_path / "new", plots=False)
    assert not (tmp_path / "new").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not an EdgeTwin result directory"), atomic_dir(tmp_path):
        pass
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_atomic_dir_replaces_previous_result(tmp_path):
    target = tmp_path / "r"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("1")
    with atomic_dir(target) as d:
        (d / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "r.prev"]  # the replaced one
    assert (tmp_path / "r.prev" / "a.txt").read_text() == "1"


# ----------------------------------------------------------------------------------------
# compare (fake cell, serial) and its statistics
# ----------------------------------------------------------------------------------------
def test_parse_policy_sets():
    assert parse_policy_sets("prb=pf,prb=rr") == [{"prb": "pf"}, {"prb": "rr"}]
    assert parse_policy_sets("prb=pf+power=waterfilling, prb=rr") == [
        {"prb": "pf", "power": "waterfilling"},
        {"prb": "rr"},
    ]
    for bad, match in (
        ("pf", "family=policy"),
        ("prb=", "family=policy"),
        ("prb=pf+prb=rr", "twice"),
        (",", "no policy set"),
    ):
        with pytest.raises(ValueError, match=match):
            parse_policy_sets(bad)


def test_parse_named_policy_sets():
    labels, sets = parse_named_policy_sets("B0=prb=pf+power=equal,prb=rr,A1=prb=ppo:x.pt")
    assert labels == ["B0", None, "A1"]
    assert sets == [{"prb": "pf", "power": "equal"}, {"prb": "rr"}, {"prb": "ppo:x.pt"}]
    for bad, match in (("B0=prb=pf,B0=prb=rr", "given twice"), ("=prb=pf", "empty")):
        with pytest.raises(ValueError, match=match):
            parse_named_policy_sets(bad)


def test_compare_uses_given_labels(fake_cell, small):
    runs = compare(small, [{"prb": "pf"}, {"prb": "rr"}], seeds=[0], workers=1, labels=["PF", None])
    assert list(runs["policy_set"]) == ["PF", "prb=rr"]
    with pytest.raises(ValueError, match="2 labels for 1 policy sets"):
        compare(small, [{"prb": "pf"}], seeds=[0], workers=1, labels=["a", "b"])


def test_summarize_comparison_t_interval():
    runs = pd.DataFrame(
        {
            "policy_set": ["a"] * 4 + ["b"],
            "seed": [0, 1, 2, 3, 0],
            "x": [1.0, 2.0, 3.0, 6.0, 5.0],
            "wall_s": 1.0,
        }
    )
    s = summarize_comparison(runs).set_index(["policy_set", "metric"])
    assert list(s.index) == [("a", "x"), ("b", "x")]
    x = np.array([1.0, 2.0, 3.0, 6.0])
    half = stats.t.ppf(0.975, 3) * x.std(ddof=1) / 2.0
    assert s.loc[("a", "x"), "mean"] == pytest.approx(3.0)
    assert s.loc[("a", "x"), "ci95_half_width"] == pytest.approx(half)
    assert s.loc[("b", "x"), "n"] == 1
    assert math.isnan(s.loc[("b", "x"), "ci95_half_width"])


def test_compare_writes_tables_and_uses_common_seeds(fake_cell, small, tmp_path):
    out = tmp_path / "cmp"
    runs = compare(
        small, [{"prb": "pf"}, {"prb": "rr"}], seeds=[0, 1], out_dir=out, workers=1, plots=True
    )
    assert list(runs["policy_set"]) == ["prb=pf", "prb=pf", "prb=rr", "prb=rr"]
    assert list(runs["seed"]) == [0, 1, 0, 1]
    assert set(runs["policy.power"]) == {"power/equal"}
    for name in (
        "comparison.parquet",
        "comparison.csv",
        "comparison_summary.csv",
        "ue_throughput_cdf.png",
        "metrics_ci.png",
        "summary.json",
        MARKER,
    ):
        assert (out / name).exists(), name
    pd.testing.assert_frame_equal(pd.read_parquet(out / "comparison.parquet"), runs)
    summary = pd.read_csv(out / "comparison_summary.csv")
    assert {"policy_set", "metric", "mean", "ci95_half_width", "n"} <= set(summary.columns)
    assert set(summary["policy_set"]) == {"prb=pf", "prb=rr"}
    run_dir = out / "runs" / "prb=rr" / "seed1"
    assert (run_dir / "summary.json").exists()
    assert (run_dir / "ue.parquet").exists()
    assert load_scenario(run_dir / "config.resolved.yaml").policies.prb.id == "prb/rr"
    assert [p.name for p in tmp_path.iterdir()] == ["cmp"]


def test_compare_rejects_bad_input_before_running(fake_cell, small):
    with pytest.raises(PolicyRegistryError, match="allowed"):
        compare(small, [{"prb": "pf"}, {"prb": "nope"}], seeds=[0])
    with pytest.raises(ValueError, match="twice"):
        compare(small, [{"prb": "pf"}, {"prb": "prb/pf"}], seeds=[0])
    with pytest.raises(ValueError, match="seed"):
        compare(small, [{"prb": "pf"}], seeds=[])
    with pytest.raises(ValueError, match="famil"):
        compare(small, [{"cache": "lru"}], seeds=[0])


# ----------------------------------------------------------------------------------------
# The real NR cell, end to end
# ----------------------------------------------------------------------------------------
def test_run_real_small_cell(small, tmp_path):
    res = run_scenario(small, out_dir=tmp_path / "r", plots=True)
    s = res.summary
    for key in ("cell_throughput_mbps", "jain_index", "bler", "prb_utilization", "n_slots"):
        assert key in s
    assert s["cell_throughput_mbps"] > 0
    assert set(res.tables) >= {"ue", "slot", "mcs"}
    assert len(res.tables["ue"]) == small.topology.ues_per_cell
    assert (tmp_path / "r" / "mcs_bler_over_time.png").stat().st_size > 0


def test_compare_real_serial_equals_parallel(small):
    sets = [{"prb": "pf"}, {"prb": "rr"}]
    serial = compare(small, sets, seeds=[0, 1], workers=1)
    parallel = compare(small, sets, seeds=[0, 1], workers=2)
    pd.testing.assert_frame_equal(serial.drop(columns="wall_s"), parallel.drop(columns="wall_s"))
    # Different schedulers, same seed: results differ (the comparison measures something).
    a = serial[serial["policy_set"] == "prb=pf"]["cell_throughput_mbps"].to_numpy()
    b = serial[serial["policy_set"] == "prb=rr"]["cell_throughput_mbps"].to_numpy()
    assert not np.array_equal(a, b)


def test_foreign_out_dir_is_refused_before_running(fake_cell, small, tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")

    def boom(*args, **kwargs):
        raise AssertionError("should not run")

    monkeypatch.setattr(run_mod, "build", boom)
    with pytest.raises(ValueError, match="refusing to replace"):
        run_scenario(small, out_dir=tmp_path)
    with pytest.raises(ValueError, match="refusing to replace"):
        compare(small, [{"prb": "pf"}], seeds=[0], out_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
