"""Examples are tests: every examples/*.py runs to completion in fast mode (SimPy docs idea)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path):
    env = {**os.environ, "EDGETWIN_FAST": "1", "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip(), "an example should print what it shows"
