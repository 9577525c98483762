"""``compare`` killed with SIGKILL resumes from its finished runs and gives the same tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from edgetwin.scenarios.cli import main

EDGETWIN = str(Path(sys.executable).with_name("edgetwin"))
ARGS = [
    "compare",
    "small_cell",
    "--set",
    "duration_s=0.2",
    "--policies",
    "prb=pf,prb=rr,prb=maxrate",
]
ARGS += ["--seeds", "4", "--workers", "1", "--no-plots", "--no-progress"]


def _entries(partial: Path) -> list[Path]:
    """Finished runs in a resume cache (``<key>/row.json``)."""
    return list(partial.glob("*/row.json")) if partial.is_dir() else []


def test_sigkill_then_rerun_resumes_and_equals_uninterrupted(tmp_path, monkeypatch):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.Popen([EDGETWIN, *ARGS, "--out", "x"], cwd=tmp_path, env=env)
    partial = tmp_path / "x.partial"
    deadline = time.time() + 120
    while len(_entries(partial)) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    finished = len(_entries(partial))
    assert 1 <= finished < 12, finished  # killed mid-run
    assert not (tmp_path / "x").exists()

    monkeypatch.chdir(tmp_path)
    assert main([*ARGS, "--out", "x"]) == 0
    assert main([*ARGS, "--out", "fresh"]) == 0
    assert json.loads((tmp_path / "x" / "summary.json").read_text())["runs_reused"] >= finished
    assert json.loads((tmp_path / "fresh" / "summary.json").read_text())["runs_reused"] == 0
    resumed = pd.read_parquet(tmp_path / "x" / "comparison.parquet")
    fresh = pd.read_parquet(tmp_path / "fresh" / "comparison.parquet")
    # wall_s is the one column that differs between any two runs (wall-clock time).
    pd.testing.assert_frame_equal(resumed.drop(columns="wall_s"), fresh.drop(columns="wall_s"))
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "x" / "comparison_ue.parquet"),
        pd.read_parquet(tmp_path / "fresh" / "comparison_ue.parquet"),
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "x"]  # caches removed
    assert len(list((tmp_path / "x" / "runs").glob("*/seed*/ue.parquet"))) == 12
