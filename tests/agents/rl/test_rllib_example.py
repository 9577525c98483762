"""examples/rllib_prb_power.py: RLlib PPO on PrbPowerMARL-v0, exported and run as a policy.

The example runs once (fast mode: 2 iterations, 2 env runners on a local Ray of 2 CPUs, about
a minute on a 2-core machine); the tests read what it wrote. The RLlib modules are restored from
RLlib's own checkpoint (no Ray session needed), so the exported EdgeTwin checkpoint is checked
against RLlib's weights by a second route, not by the example's own check.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ray.rllib.algorithms.ppo")

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "rllib_prb_power.py"


def _example(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EDGETWIN_FAST": "1", "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("rllib") / "out"
    run = _example("--out", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    return out, run.stdout


def test_trains_two_iterations_with_two_env_runners(trained):
    out, stdout = trained
    assert "iteration   2:" in stdout
    train = pd.read_csv(out / "train.csv")
    assert train["iteration"].tolist() == [1, 2]
    # every iteration sampled at least its batch (400 agent steps in fast mode)
    assert (np.diff([0, *train["env_steps"]]) >= 400).all()
    assert np.isfinite(train[["return_prb", "return_power"]]).all().all()
    # cooperative reward: both agents get the same per-slot reward in [0, 1]
    assert np.allclose(train["return_prb"], train["return_power"])
    assert ((train["return_prb"] > 0) & (train["return_prb"] <= train["slots_per_episode"])).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["env_runners"] == 2
    assert summary["max_abs_action_diff"] < 1e-5
    meta_ckpt = out / "rllib" / "learner_group" / "learner" / "rl_module"
    assert {p.name for p in meta_ckpt.iterdir() if p.is_dir()} == {"prb", "power"}


def test_exported_checkpoint_reproduces_the_rllib_modules(trained):
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModule

    from edgetwin.agents import make_policy
    from edgetwin.agents.rl import rllib_export as rx
    from edgetwin.agents.rl.checkpoint import load_policy_checkpoint
    from edgetwin.envs import make_marl

    out, _ = trained
    path = out / "model.pt"
    ckpt = load_policy_checkpoint(path)
    assert set(ckpt["actors"]) == {"prb", "power"}
    assert (ckpt["max_ue"], ckpt["n_prb"]) == (20, 51)
    stats = {a: ckpt["actors"][a]["obs_rms"] for a in rx.AGENTS}
    rl_dir = out / "rllib" / "learner_group" / "learner" / "rl_module"
    modules = {a: RLModule.from_checkpoint(str(rl_dir / a)) for a in rx.AGENTS}
    policies = {a: make_policy(f"{a}/ppo", path=str(path)) for a in rx.AGENTS}
    for a in rx.AGENTS:
        assert isinstance(modules[a], rx.PerUEPPOModule)
        # trained: PPO moved the action noise away from its initial 0.2, and the export has it
        log_std = modules[a].actor.log_std.detach()
        assert abs(float(log_std) - math.log(0.2)) > 1e-6
        assert torch.equal(ckpt["actors"][a]["state_dict"]["log_std"], log_std)

    env = make_marl(rx.ENV_ID, scenario="nr_cell", overrides={"duration_s": 0.02})
    wrapped = rx.UEFeatureObservations(env, stats)
    wrapped.reset(seed=123)
    compared = 0
    for _ in range(10):
        for a in rx.AGENTS:
            raw = env.observe(a)
            exported = policies[a].act_env(raw)
            rllib = rx.module_action_means(modules[a], [wrapped.observe(a)])[0]
            assert exported.shape == rllib.shape == (20,)
            np.testing.assert_allclose(exported, rllib, rtol=0, atol=1e-5)
            assert np.abs(rllib).max() > 1e-4  # not the trivial all-zero (baseline) action
            compared += 1
            # a sampled (noisy) action moves the episode on a path the means alone would not
            wrapped.step(np.random.default_rng(compared).uniform(-1, 1, 20))
    assert compared == 20


def test_exported_policy_runs_in_a_scenario(trained, tmp_path):
    from edgetwin.scenarios.cli import main

    out, stdout = trained
    path = out / "model.pt"
    comparison = pd.read_csv(out / "comparison.csv")
    assert sorted(comparison["policy_set"].unique()) == ["B0", "RLlib"]
    assert len(comparison) == 4  # two sets × seeds 0, 1
    assert np.isfinite(comparison["cell_throughput_mbps"]).all()
    assert "RLlib − B0 on the same seed" in stdout
    run_dir = tmp_path / "run"
    argv = ["run", "nr_cell", "--duration", "0.02", "--no-plots", "--out", str(run_dir)]
    argv += ["--policy", f"prb=ppo:{path}", "--policy", f"power=ppo:{path}"]
    assert main(argv) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metrics"]["cell_throughput_mbps"] > 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--iterations", "0"], "--iterations: must be >= 1"),
        (["--env-runners", "two"], "expected an integer"),
        (["--episode-s", "nan"], "--episode-s: must be a finite number"),
        (["--seeds", "1"], "--seeds: must be >= 2"),
    ],
)
def test_bad_input_is_one_line(args, words):
    run = _example(*args, timeout=60)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1, run.stderr
    assert words in run.stderr


def test_out_inside_a_file_is_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    run = _example("--out", str(tmp_path / "f" / "sub"), timeout=60)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1, run.stderr
    assert "--out" in run.stderr


def test_without_ray_is_one_line():
    # as on a machine without the rllib extra: every `import ray...` fails
    code = (
        "import runpy, sys; sys.modules['ray'] = None; "
        f"sys.argv = [{str(EXAMPLE)!r}]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    env = {**os.environ, "EDGETWIN_FAST": "1"}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1, run.stderr
    assert "pip install 'edgetwin[rllib]'" in run.stderr
