"""``--policy prb=ppo:PATH`` (ID:ARG syntax) in run/compare, and ``edgetwin train``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from edgetwin.scenarios.builder import policy_plan
from edgetwin.scenarios.cli import main
from edgetwin.scenarios.load import load_scenario
from edgetwin.scenarios.schema import PolicyRef, split_policy_string

EDGETWIN = shutil.which("edgetwin", path=str(Path(sys.executable).parent)) or "edgetwin"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "120"}
    return subprocess.run([EDGETWIN, *args], capture_output=True, text=True, env=env, timeout=120)


def test_split_policy_string_and_resolution():
    assert split_policy_string("pf") == ("pf", {})
    assert split_policy_string("ppo:runs/x/model.pt") == ("ppo", {"path": "runs/x/model.pt"})
    assert split_policy_string("prb/ppo:C:/m.pt") == ("prb/ppo", {"path": "C:/m.pt"})
    with pytest.raises(ValueError, match="ID:ARG"):
        split_policy_string("ppo:")
    ref = PolicyRef(id="prb/ppo", kwargs={"path": "runs/x/model.pt"})
    config = load_scenario("nr_cell", {"policies.prb": "ppo:runs/x/model.pt"})
    assert config.policies.prb == ref
    plan = policy_plan(load_scenario("nr_cell"), {"prb": "ppo:runs/x/model.pt"})
    assert plan["prb"] == ref
    assert plan["prb"].label == "prb/ppo(path=runs/x/model.pt)"


def test_run_with_a_checkpoint_writes_summary(tmp_path, nr_checkpoint):
    out = tmp_path / "run"
    proc = _cli(
        "run",
        "nr_cell",
        "--policy",
        f"prb=ppo:{nr_checkpoint}",
        "--policy",
        f"power=ppo:{nr_checkpoint}",
        "--set",
        "duration_s=0.02",
        "--out",
        str(out),
        "--no-plots",
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["cell_throughput_mbps"] > 0
    assert summary["policies"]["prb"].startswith("prb/ppo(path=")
    assert "prb/ppo(path=" in proc.stdout


def test_missing_checkpoint_is_one_line_error(tmp_path, capsys):
    proc = _cli("run", "nr_cell", "--policy", "prb=ppo:/nonexistent.pt", "--no-plots")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("edgetwin: error:")
    assert "/nonexistent.pt" in lines[0]
    # compare, in-process
    status = main(
        [
            "compare",
            "nr_cell",
            "--policies",
            "prb=pf,prb=ppo:/nonexistent.pt+power=equal",
            "--seeds",
            "1",
            "--set",
            "duration_s=0.01",
            "--out",
            str(tmp_path / "cmp"),
            "--no-plots",
            "--workers",
            "1",
        ]
    )
    assert status == 2
    assert "/nonexistent.pt" in capsys.readouterr().err


def test_compare_with_a_checkpoint(tmp_path, nr_checkpoint, capsys):
    status = main(
        [
            "compare",
            "nr_cell",
            "--policies",
            f"prb=pf,prb=ppo:{nr_checkpoint}+power=equal",
            "--seed-list",
            "0",
            "--set",
            "duration_s=0.01",
            "--out",
            str(tmp_path / "cmp"),
            "--no-plots",
            "--no-progress",
            "--workers",
            "1",
        ]
    )
    assert status == 0, capsys.readouterr().err
    assert "prb=ppo(path=" in capsys.readouterr().out


def test_train_ppo_command(tmp_path, capsys):
    out = tmp_path / "m.pt"
    args = ["train", "ppo", "--steps", "64", "--episode-s", "0.01", "--seed", "2"]
    status = main([*args, "--out", str(out), "--set", "traffic.kind=full_buffer"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert out.is_file()
    assert str(out) in captured.out
    assert "--policy prb=ppo:" in captured.out
    assert "per_ue" in captured.out  # the default network


def test_train_ppo_arch_flag(tmp_path, capsys):
    from edgetwin.agents.rl.checkpoint import load_policy_checkpoint

    out = tmp_path / "flat.pt"
    args = ["train", "ppo", "--steps", "32", "--episode-s", "0.01", "--arch", "flat"]
    assert main([*args, "--out", str(out)]) == 0, capsys.readouterr().err
    ckpt = load_policy_checkpoint(out)
    assert ckpt["actors"]["prb"]["kind"] == "flat"
    assert ckpt["meta"]["arch"] == "flat"
    assert "--arch flat" in ckpt["meta"]["command"]
    assert main(["train", "ppo", "--arch", "gnn", "--out", str(tmp_path / "x.pt")]) == 2
    assert "invalid choice: 'gnn'" in capsys.readouterr().err


def test_train_bad_input_is_one_line_error(tmp_path, capsys):
    status = main(["train", "prb-power", "--phases", "prb,bogus", "--out", str(tmp_path / "x.pt")])
    assert status == 2
    err = capsys.readouterr().err
    assert "unknown phase(s) 'bogus'" in err
    assert "Traceback" not in err
    assert main(["train", "ppo", "--steps", "0", "--out", str(tmp_path / "x.pt")]) == 2
    status = main(["train", "ppo", "--steps", "8", "--out", str(tmp_path)])
    assert status == 2
    assert "is a directory" in capsys.readouterr().err


def test_list_does_not_import_torch():
    code = (
        "import sys; from edgetwin.scenarios.cli import main; main(['list']); "
        "print('torch' in sys.modules, 'stable_baselines3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"]
    assert "prb/ppo" in out.stdout


def test_cli_choices_mirror_the_env_and_trainers():
    """The light CLI module repeats the env's controls (to avoid importing the simulator)."""
    from edgetwin.agents.rl.options import CONTROLS
    from edgetwin.envs.prb_power import CONTROLS as ENV_CONTROLS

    assert CONTROLS == ENV_CONTROLS
