"""Examples are tests: every examples/*.py runs to completion in fast mode (SimPy docs idea)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
#: Examples with their own test below (which runs them with checked output): not run twice.
# rllib_prb_power.py: tests/agents/rl/test_rllib_example.py (one Ray session for all its checks).
OWN_TEST = {"adapter_caching.py", "rllib_prb_power.py"}


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if p.name not in OWN_TEST], ids=lambda p: p.name
)
def test_example_runs(path):
    env = {**os.environ, "EDGETWIN_FAST": "1", "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip(), "an example should print what it shows"


NOTEBOOKS = sorted(EXAMPLES[0].parent.glob("*.ipynb")) if EXAMPLES else []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    # each notebook is executed as a user would (a fresh kernel, every cell in order) in fast
    # mode; its own assert cells check what it claims to show
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("EDGETWIN_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
        "commit notebooks with outputs stripped"
    )
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "error"
    ]
    assert not errors


def _adapter_caching(*args):
    env = {**os.environ, "EDGETWIN_FAST": "1", "MPLBACKEND": "Agg"}
    path = EXAMPLES[0].parent / "adapter_caching.py"
    return subprocess.run(
        [sys.executable, str(path), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_adapter_caching_tables_and_checks(tmp_path):
    # examples/adapter_caching.py --quick: every cache × route pair on matched seeds (issue 10)
    import json

    import numpy as np
    import pandas as pd

    from edgetwin.agents import policy_ids
    from edgetwin.sim.compute.adapter_utility import che_hit_ratio, zipf_pmf

    out = tmp_path / "adapter_caching"
    run = _adapter_caching("--quick", "--out", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    seeds = summary["config"]["seeds"]
    pairs = pd.read_parquet(out / "pairs.parquet")
    assert len(pd.read_csv(out / "pairs.csv")) == len(pairs)
    # one row per scenario × cache × route × seed, every registered baseline in it
    key = ["scenario", "cache", "route", "seed"]
    assert not pairs.duplicated(key).any()
    assert len(pairs) == 2 * len(summary["caches"]) * len(summary["routes"]) * seeds
    baselines = set(policy_ids(family="cache")) - {"cache/ppo"}
    assert baselines <= set(pairs.cache)
    assert set(pairs.route) == set(policy_ids(family="route"))
    # the oracle router's regret is 0; every other router's cumulative regret never decreases
    assert summary["oracle_router_max_abs_regret"] < 1e-9
    oracle = pairs[pairs.route == "route/oracle"]
    assert np.abs(oracle.regret).max() < 1e-9
    curves = pd.read_parquet(out / "regret.parquet").sort_values([*key, "t"])
    steps = curves.groupby(key)["regret"].diff().dropna()
    assert (steps > -1e-9).all()
    assert (pairs[pairs.route == "route/fixed"].regret > 0).all()
    # stationary LRU with each request on its own adapter: Che's approximation (Monte-Carlo
    # std of the quick run's hit ratio ≈ 0.005)
    che = che_hit_ratio(zipf_pmf(50, 1.0), 5)
    assert summary["che_hit_ratio"] == pytest.approx(che)
    assert abs(summary["lru_stationary_hit_ratio"] - che) < 0.02, summary
    # paging only adds to TTFT; the oracle router without paging earns at least as much
    assert (pairs.ttft_mean_s >= pairs.ttft_nopaging_s - 1e-12).all()
    assert (oracle.net_reward_nopaging >= oracle.net_reward - 1e-12).all()
    hit_rows = pd.read_parquet(out / "epochs.parquet")
    n_epoch = summary["config"]["requests"] // summary["config"]["epoch_requests"]
    assert len(hit_rows) == len(pairs) * n_epoch
    # drifting popularity, each request on its own adapter: POLAR's hit ratio beats LRU's
    paired = pd.read_parquet(out / "paired.parquet")
    row = paired[
        (paired.scenario == "drifting")
        & (paired.route == "route/fixed")
        & (paired.cache == "cache/polar")
        & (paired.baseline == "cache/lru")
        & (paired.metric == "hit_ratio")
    ]
    assert row.verdict.tolist() == ["higher"], row
    for png in ("regret_loglog", "hit_ratio_over_time", "ttft_paging", "net_utility_paired_ci"):
        assert (out / f"{png}.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--seeds", "1"], "--seeds: must be >= 2"),
        (["--requests", "ten"], "expected an integer"),
        (["--rate", "nan"], "--rate: must be a finite number"),
        (["--epoch", "500", "--requests", "100"], "longer than the run"),
    ],
)
def test_adapter_caching_bad_input_one_line(args, words):
    run = _adapter_caching(*args)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1, run.stderr
    assert words in run.stderr


def test_adapter_caching_out_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    run = _adapter_caching("--out", str(tmp_path / "f" / "sub"))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1, run.stderr
    assert "--out" in run.stderr
