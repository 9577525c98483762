"""The ``edgetwin`` command line, in-process (``main([...])``) and as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from edgetwin.scenarios.cli import main
from edgetwin.scenarios.load import load_scenario

EDGETWIN = shutil.which("edgetwin", path=str(Path(sys.executable).parent)) or "edgetwin"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "120"}
    return subprocess.run(
        [EDGETWIN, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def test_run_subprocess_writes_all_files(tmp_path):
    out = tmp_path / "run1"
    proc = _cli(
        "run",
        "small_cell",
        "--set",
        "duration_s=0.05",
        "--out",
        str(out),
        "--no-progress",
        "--seed",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "cell_throughput_mbps" in proc.stdout
    assert str(out) in proc.stdout
    for name in (
        "config.resolved.yaml",
        "summary.json",
        "ue.parquet",
        "slot.parquet",
        "mcs.parquet",
        "ue_throughput_cdf.png",
        "mcs_bler_over_time.png",
    ):
        assert (out / name).is_file(), name
    assert load_scenario(out / "config.resolved.yaml") == load_scenario(
        "small_cell", {"duration_s": 0.05, "seed": 2}
    )


def test_run_in_process(tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(
        [
            "run",
            "small_cell",
            "--set",
            "duration_s=0.05",
            "--policy",
            "prb=rr",
            "--policy",
            "power=waterfilling",
            "--out",
            str(out),
            "--no-plots",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "jain_index" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert {"scenario", "seed", "policies", "versions", "git_commit", "wall_s", "metrics"} <= set(
        summary
    )
    assert summary["policies"] == {"prb": "prb/rr", "power": "power/waterfilling"}
    assert summary["metrics"]["cell_throughput_mbps"] > 0
    ue = pd.read_parquet(out / "ue.parquet")
    assert {
        "cell",
        "ue",
        "throughput_mbps",
        "bler",
        "mean_mcs",
        "mean_sinr_db",
        "distance_m",
    } <= set(ue.columns)
    assert len(ue) == 4
    assert {
        "slot",
        "time_s",
        "cell",
        "delivered_bits",
        "n_prb_used",
        "n_tx",
        "n_nack",
        "mean_mcs",
    } <= set(pd.read_parquet(out / "slot.parquet").columns)
    assert list(pd.read_parquet(out / "mcs.parquet").columns) == ["mcs", "count"]
    assert not list(out.glob("*.png"))
    resolved = load_scenario(out / "config.resolved.yaml")
    assert resolved == load_scenario(
        "small_cell", ["duration_s=0.05", "policies.prb=rr", "policies.power=waterfilling"]
    )


def test_compare_in_process_writes_comparison_files(tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = main(
        [
            "compare",
            "small_cell",
            "--policies",
            "prb=pf,prb=rr+power=waterfilling",
            "--seed-list",
            "0,1",
            "--workers",
            "1",
            "--duration",
            "0.05",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "prb=rr+power=waterfilling" in captured.out
    assert "±" in captured.out
    for name in (
        "comparison.parquet",
        "comparison.csv",
        "comparison_summary.csv",
        "ue_throughput_cdf.png",
        "metrics_ci.png",
    ):
        assert (out / name).is_file(), name
    runs = pd.read_csv(out / "comparison.csv")
    assert len(runs) == 4
    assert sorted(set(runs["seed"])) == [0, 1]
    assert (out / "runs" / "prb=pf" / "seed1" / "ue.parquet").is_file()


@pytest.mark.parametrize(
    ("args", "snippet"),
    [
        (["run", "small_cell", "--set", "cell.numerology=9"], "cell.numerology"),
        (["run", "small_cell", "--set", "cell.nope=1"], "cell.nope"),
        (["run", "small_cell", "--set", "duration_s"], "key=value"),
        (["run", "small_cell", "--policy", "prb=pff"], "prb/pf"),
        (["run", "small_cell", "--policy", "cache=lru"], "policies.cache"),
        (["run", "small_cell", "--policy", "pf"], "FAMILY=ID"),
        (["run", "no/such/file.yaml"], "built-in scenarios"),
        (["run", "small_cell", "--duration", "-1"], "duration_s"),
        (["compare", "small_cell", "--policies", "prb=nope", "--seeds", "1"], "allowed"),
        (["compare", "small_cell", "--policies", "pf"], "family=policy"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, snippet, capsys, tmp_path):
    rc = main([*args, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("edgetwin: error: "), err
    assert err.count("\n") == 1, err
    assert snippet in err
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_bad_input_subprocess_has_no_traceback(tmp_path):
    for args in (
        ["run", "small_cell", "--policy", "prb=nope"],
        ["run", str(tmp_path / "missing.yaml")],
        ["run", "small_cell", "--set", "bogus.key=1"],
    ):
        proc = _cli(*args, "--out", str(tmp_path / "x"))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("edgetwin: error: ")
        assert "Traceback" not in proc.stderr
    proc = _cli("run", "small_cell", "--seed", "-1")  # argparse-level error
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_list_shows_policies_and_scenarios(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for token in (
        "prb/pf",
        "prb/rr",
        "prb/maxrate",
        "power/equal",
        "power/waterfilling",
        "nr_cell",
        "small_cell",
        "bursty_cell",
        "multi_cell_57",
    ):
        assert token in out


def test_help_and_missing_command(capsys):
    assert main(["--help"]) == 0
    assert "compare" in capsys.readouterr().out
    assert main([]) == 2
