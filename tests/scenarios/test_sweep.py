"""edgetwin sweep: grid expansion, run keys, resume, workers 1 == 2, tables, bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from edgetwin.scenarios.cli import main
from edgetwin.scenarios.errors import ScenarioError
from edgetwin.scenarios.load import load_scenario
from edgetwin.scenarios.schema import PolicyRef
from edgetwin.scenarios.sweep import (
    SWEEP_MARKER,
    LocalBackend,
    make_backend,
    plan_sweep,
    run_key,
    sweep,
)

DURATION = "0.03"  # simulated seconds per run: 30 slots of small_cell, ~0.1 s wall


@pytest.fixture
def small():
    return load_scenario("small_cell", {"duration_s": float(DURATION)})


class Recording(LocalBackend):
    """The local backend, in-process, remembering which keys it ran."""

    def __init__(self) -> None:
        super().__init__(1)
        self.keys: list[str] = []
        self.items: list = []

    def run(self, tasks, done):
        self.keys += [k for t in tasks for k in t.keys]
        self.items += list(tasks)
        super().run(tasks, done)


SETS = [("MR", {"prb": "maxrate"}), ("RR", {"prb": "rr"})]
GRID = {"topology.ues_per_cell": [2, 4]}


def _plan(config, grid=GRID, sets=SETS, seeds=(0, 1), baseline=None):
    return plan_sweep(config, grid, sets, list(seeds), baseline)


# ----------------------------------------------------------------------------------------
# The plan and the keys
# ----------------------------------------------------------------------------------------
def test_grid_expansion_count_and_order(small):
    grid = {"cell.bandwidth_hz": [5e6, 10e6, 20e6], "topology.ues_per_cell": [2, 4]}
    plan = _plan(small, grid=grid, seeds=(0, 1, 2))
    assert len(plan.runs) == 3 * 2 * 2 * 3
    assert len({r.key for r in plan.runs}) == len(plan.runs)
    assert plan.axes == ("cell.bandwidth_hz", "topology.ues_per_cell")
    assert [r.point for r in plan.runs[:7:6]] == [(5e6, 2), (5e6, 4)]
    assert plan.runs[0].config.cell.bandwidth_hz == 5e6
    assert plan.runs[-1].config.topology.ues_per_cell == 4
    assert plan.baseline == "MR"  # default: the first set


def test_run_key_is_stable_and_follows_what_changes_results(small):
    refs = {"prb": PolicyRef(id="prb/pf")}
    key = run_key(small, refs, 0)
    assert key == run_key(small, refs, 0)
    assert len(key) == 64
    assert key != run_key(small, refs, 1)
    assert key != run_key(small, {"prb": PolicyRef(id="prb/rr")}, 0)
    longer = load_scenario("small_cell", {"duration_s": 0.04})
    assert key != run_key(longer, refs, 0)
    no_plots = load_scenario("small_cell", {"duration_s": float(DURATION), "output.plots": False})
    assert key == run_key(no_plots, refs, 0)  # output settings change no number


# ----------------------------------------------------------------------------------------
# Running, resuming, tables
# ----------------------------------------------------------------------------------------
def test_sweep_writes_tidy_tables(small, tmp_path):
    plan = _plan(small)
    tidy = sweep(plan, tmp_path / "s", Recording(), plots=True)
    out = tmp_path / "s"
    df = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(df, tidy)
    assert list(df.columns) == [
        "topology.ues_per_cell",
        "policy_set",
        "seed",
        "metric",
        "value",
        "key",
    ]
    n_metrics = df["metric"].nunique()
    assert len(df) == len(plan.runs) * n_metrics
    assert "cell_throughput_mbps" in set(df["metric"])
    assert "wall_s" not in set(df["metric"])  # not a result: differs run to run
    assert len(list((out / "runs").glob("*.json"))) == len(plan.runs)
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 2 * 2 * n_metrics  # grid points x sets x metrics
    assert set(summary["n"]) == {2}
    assert (out / "plots" / "cell_throughput_mbps.png").stat().st_size > 0
    marker = json.loads((out / SWEEP_MARKER).read_text())
    assert "results.parquet" in marker["files"]


def test_paired_difference_sign_rr_below_maxrate(small, tmp_path):
    # Full buffer: max-rate takes the best UE on every PRB, so its cell throughput is at least
    # round robin's on the same channels (seed by seed; seeds 0-3 checked).
    plan = _plan(small, grid={"topology.ues_per_cell": [4]}, seeds=(0, 1, 2, 3), baseline="MR")
    sweep(plan, tmp_path / "s", Recording(), plots=False)
    paired = pd.read_csv(tmp_path / "s" / "paired.csv")
    row = paired[paired["metric"] == "cell_throughput_mbps"].iloc[0]
    assert row["policy_set"] == "RR"
    assert row["baseline"] == "MR"
    assert row["n"] == 4
    assert row["mean_diff"] < 0
    assert row["ci95_half_width"] > 0
    tidy = pd.read_parquet(tmp_path / "s" / "results.parquet")
    thr = tidy[tidy["metric"] == "cell_throughput_mbps"].pivot(
        index="seed", columns="policy_set", values="value"
    )
    assert (thr["RR"] - thr["MR"]).mean() == pytest.approx(row["mean_diff"])


def test_resume_runs_only_missing_keys(small, tmp_path):
    plan = _plan(small)
    out = tmp_path / "s"
    first = Recording()
    sweep(plan, out, first, plots=False)
    before = (out / "results.parquet").read_bytes()
    assert len(first.keys) == len(plan.runs)
    # A killed sweep: some runs never stored (and a half-written one).
    lost = [plan.runs[1].key, plan.runs[5].key, plan.runs[6].key]
    for key in lost:
        (out / "runs" / f"{key}.json").unlink()
    (out / "runs" / f"{plan.runs[0].key}.json").write_text('{"format": "edgetwin-swe')
    again = Recording()
    notes: list[str] = []
    sweep(plan, out, again, plots=False, notify=notes.append)
    assert sorted(again.keys) == sorted([*lost, plan.runs[0].key])
    assert "4 to run" in notes[0]
    assert (out / "results.parquet").read_bytes() == before
    # Nothing missing: nothing runs.
    third = Recording()
    sweep(plan, out, third, plots=False)
    assert third.keys == []


def test_changed_config_reruns(small, tmp_path):
    out = tmp_path / "s"
    sweep(_plan(small), out, Recording(), plots=False)
    longer = load_scenario("small_cell", {"duration_s": 0.04})
    rec = Recording()
    sweep(_plan(longer), out, rec, plots=False)
    assert len(rec.keys) == 8  # every run: the duration is in every key
    assert len(list((out / "runs").glob("*.json"))) == 16  # the old runs are kept
    # A new grid value runs only its own points.
    rec = Recording()
    sweep(_plan(longer, grid={"topology.ues_per_cell": [2, 4, 6]}), out, rec, plots=False)
    assert len(rec.keys) == 4


def test_workers_1_and_2_give_identical_files(small, tmp_path):
    plan = _plan(small)
    sweep(plan, tmp_path / "w1", make_backend("local", 1), plots=False)
    sweep(plan, tmp_path / "w2", make_backend("local", 2), plots=False)
    for name in ("results.parquet", "summary.csv", "paired.csv"):
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes()


def test_cell_batches_store_the_records_of_one_by_one_runs(small, tmp_path):
    # small_cell is a lock-step radio scenario: its seeds run as cell batches by default.
    plan = _plan(small, seeds=(0, 1, 2))
    backend = Recording()
    sweep(plan, tmp_path / "b", backend, plots=False)
    sweep(plan, tmp_path / "one", make_backend("local", 1), plots=False, batch=False)
    assert sorted(backend.keys) == sorted({r.key for r in plan.runs})
    assert all(len(item.keys) == 3 for item in backend.items)  # one batch per point and set
    a = pd.read_parquet(tmp_path / "b" / "results.parquet")
    b = pd.read_parquet(tmp_path / "one" / "results.parquet")
    keep = a["metric"] != "wall_s"
    pd.testing.assert_frame_equal(a[keep].reset_index(drop=True), b[keep].reset_index(drop=True))


# ----------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------
def _cli(*args):
    return main(["sweep", "small_cell", "--duration", DURATION, "--no-plots", *args])


def test_cli_sweep_with_flags_then_resume(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["--grid", "topology.ues_per_cell=2,4", "--policies", "B0=prb=pf+power=equal,RR=prb=rr"]
    args += ["--seeds", "2", "--workers", "1", "--out", str(out)]
    assert _cli(*args) == 0
    assert "8 runs" in capsys.readouterr().out
    df = pd.read_parquet(out / "results.parquet")
    assert set(df["policy_set"]) == {"B0", "RR"}
    assert set(df["seed"]) == {0, 1}
    assert _cli(*args) == 0
    assert "8 of 8 runs already stored" in capsys.readouterr().out


def test_cli_sweep_file(tmp_path, capsys):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        "grid:\n  topology.ues_per_cell: [2, 4]\n"
        "policies:\n  MR: prb=maxrate\n  RR: {prb: rr}\n"
        "seeds: [3, 5]\nbaseline: RR\n"
    )
    out = tmp_path / "s"
    assert _cli("--sweep", str(spec), "--workers", "1", "--out", str(out)) == 0
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired["policy_set"]) == {"MR"}
    assert set(paired["baseline"]) == {"RR"}
    assert set(pd.read_parquet(out / "results.parquet")["seed"]) == {3, 5}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--grid", "cell.bandwith_hz=5e6", "--policies", "prb=pf"], "did you mean 'bandwidth_hz'"),
        (["--grid", "cell.bandwidth_hz=7e6", "--policies", "prb=pf"], "allowed bandwidths"),
        (["--grid", "topology.ues_per_cell=2,x", "--policies", "prb=pf"], ">= 1 and <= 1024"),
        (["--grid", "topology.ues_per_cell=2", "--policies", "prb=nosuch"], "allowed: prb/maxrate"),
        (["--policies", "prb=pf"], "grid is empty"),
        (["--grid", "topology.ues_per_cell=", "--policies", "prb=pf"], "has no values"),
        (["--grid", "topology.ues_per_cell=2,2", "--policies", "prb=pf"], "repeats a value"),
        (["--grid", "seed=1,2", "--policies", "prb=pf"], "--seeds"),
        (["--grid", "topology.ues_per_cell=2"], "no policy sets"),
        (["--grid", "topology.ues_per_cell=2", "--policies", "prb=pf", "--seeds", "0"], "1..10000"),
        (
            ["--grid", "topology.ues_per_cell=2", "--policies", "prb=pf", "--seed-list", "1,1"],
            "distinct",
        ),
        (
            ["--grid", "topology.ues_per_cell=2", "--policies", "prb=pf", "--baseline", "X"],
            "allowed: prb=pf",
        ),
        (
            ["--grid", "topology.ues_per_cell=2", "--policies", "prb=pf", "--backend", "dask"],
            "allowed: local, ray",
        ),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, capsys, args, expected):
    out = tmp_path / "s"
    assert _cli(*args, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgetwin: error:")
    assert err.count("\n") == 1
    assert expected in err
    assert not out.exists()  # refused before anything ran or was written


def test_cli_refuses_a_folder_that_is_not_a_sweep(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    args = ["--grid", "topology.ues_per_cell=2", "--policies", "prb=pf", "--out", str(mine)]
    assert _cli(*args) == 2
    assert "not a sweep folder" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_users_file_in_a_sweep_folder_is_not_overwritten(small, tmp_path):
    out = tmp_path / "s"
    sweep(_plan(small, sets=SETS[:1]), out, Recording(), plots=False)  # one set: no paired.csv
    assert not (out / "paired.csv").exists()
    (out / "paired.csv").write_text("my own table")
    with pytest.raises(ScenarioError, match="did not write"):
        sweep(_plan(small), out, Recording(), plots=False)
    assert (out / "paired.csv").read_text() == "my own table"


def test_cli_bad_sweep_file_is_one_line(tmp_path, capsys):
    spec = tmp_path / "sweep.yaml"
    spec.write_text("grid:\n  topology.ues_per_cell: 4\npolicies: {A: prb=pf}\n")
    assert _cli("--sweep", str(spec), "--out", str(tmp_path / "s")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "grid.topology.ues_per_cell" in err
    assert "list of values" in err
    spec.write_text("grid: {topology.ues_per_cell: [2]}\npolicies: {A: prb=pf}\nseed: 3\n")
    assert _cli("--sweep", str(spec), "--out", str(tmp_path / "s")) == 2
    assert "allowed fields: grid, policies, seeds, baseline" in capsys.readouterr().err
