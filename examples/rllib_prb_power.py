"""Train the PRB and power agents with Ray RLlib PPO, export them, run them as ordinary policies.

Run: ``python examples/rllib_prb_power.py [--iterations 30] [--env-runners 2] [--seeds 5]
[--out DIR]`` (``EDGETWIN_FAST=1``, as the test suite sets, implies ``--quick``: 2 iterations of
short episodes). Needs the optional extra ``pip install 'edgetwin[rllib]'``.

1. **Train**: RLlib PPO (new API stack: RLModule + Learner + EnvRunner, torch on the CPU) on
   ``edgetwin/PrbPowerMARL-v0`` (the PettingZoo AEC env of ``edgetwin.envs.make_marl``) through
   RLlib's ``PettingZooEnv`` wrapper, with ``--env-runners`` Ray actors collecting episodes in
   parallel. Two policies, ``prb`` and ``power``, one RLModule each
   (:class:`~edgetwin.agents.rl.rllib_export.PerUEPPOModule`: EdgeTwin's per-UE actor with a
   centralized critic of its own observation), sharing the cooperative reward. The new API
   stack is used because it runs on the CPU with torch as it is (and is Ray's default since
   2.40; the old ``ModelV2``/``RolloutWorker`` stack is deprecated): the module is a plain
   ``torch.nn.Module`` holding EdgeTwin's actor, which makes the export a copy of weights.
2. **Export**: each module's actor goes into EdgeTwin's checkpoint format (``model.pt``, as the
   MAPPO trainer saves it), with the frozen feature normalization it trained with; the RLlib
   checkpoint itself goes to ``rllib/``. The script checks that the exported actor gives the
   RLlib module's action means on real observations.
3. **Run**: the exported file as ``prb=ppo:model.pt`` + ``power=ppo:model.pt`` in ordinary
   ``nr_cell`` scenario runs against PF + equal power (B0) on the same seeds (common random
   numbers): mean ± 95 % CI and the paired difference per metric. The same from the shell::

       edgetwin compare nr_cell --policies B0=prb=pf+power=equal,\\
         RLlib=prb=ppo:results/rllib_prb_power/model.pt+power=ppo:results/rllib_prb_power/model.pt

Writes ``model.pt``, ``rllib/`` (RLlib checkpoint), ``train.csv`` (one row per iteration),
``comparison.csv`` and ``summary.json`` into ``--out`` (default ``results/rllib_prb_power``; in
fast mode a temporary folder unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgetwin.scenarios.argtypes import OneLineParser, int_at_least, positive_float_up_to

FAST = os.environ.get("EDGETWIN_FAST") == "1"
PROG = "rllib_prb_power.py"
SCENARIO = "nr_cell"
METRICS = (
    "cell_throughput_mbps",
    "ue_throughput_p5_mbps",
    "ue_throughput_median_mbps",
    "jain_index",
    "bler",
)


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The options; ``--quick`` (or ``EDGETWIN_FAST=1``) changes the defaults only."""
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="a couple of short iterations (as the tests do)")
    add("--iterations", type=int_at_least(1), help="PPO iterations (default 30; quick 2)")
    add("--env-runners", type=int_at_least(1), default=2, help="Ray env-runner actors")
    add("--envs-per-runner", type=int_at_least(1), help="envs each runner steps (4; quick 1)")
    add("--batch", type=int_at_least(64), help="agent steps per iteration (4000; quick 400)")
    add("--episode-s", type=positive_float_up_to(), help="simulated s per training episode (0.1)")
    add("--seeds", type=int_at_least(2), help="evaluation seeds 0..N-1 (default 5; quick 2)")
    add(
        "--eval-s",
        type=positive_float_up_to(),
        help="simulated s per evaluation run (1.0; quick 0.1)",
    )
    add("--seed", type=int_at_least(0), default=0, help="training seed")
    add("--out", help="result folder (default results/rllib_prb_power)")
    args = parser.parse_args(argv)
    args.quick = args.quick or FAST
    defaults = {"iterations": 30, "batch": 4000, "episode_s": 0.1, "seeds": 5, "eval_s": 1.0}
    defaults["envs_per_runner"] = 4
    if args.quick:
        defaults = {"iterations": 2, "batch": 400, "episode_s": 0.05, "seeds": 2, "eval_s": 0.1}
        defaults["envs_per_runner"] = 1  # a whole episode per runner and iteration
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None and not args.quick:
        args.out = "results/rllib_prb_power"
    parser.check_out(args.out)  # before the work, in one line
    try:  # Ray and RLlib's own dependencies; the error names the extra to install
        from edgetwin.agents.rl import rllib_export  # noqa: F401
    except ImportError as exc:
        parser.error(str(exc).splitlines()[0])
    return args


# ----------------------------------------------------------------------------------------
# Training and export
# ----------------------------------------------------------------------------------------
def _returns(result: dict[str, Any]) -> dict[str, float]:
    """Mean episode return per agent and slots per episode of one RLlib training result."""
    runners = result.get("env_runners", {})
    per_agent = runners.get("agent_episode_returns_mean", {}) or {}
    out = {f"return_{a}": float(per_agent.get(a, math.nan)) for a in ("prb", "power")}
    # an episode's length counts the steps of both agents: two per slot
    out["slots_per_episode"] = float(runners.get("episode_len_mean", math.nan)) / 2.0
    out["env_steps"] = float(result.get("num_env_steps_sampled_lifetime", math.nan))
    return out


def train_and_export(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Train on a local Ray, save the RLlib checkpoint and the EdgeTwin one; check the export."""
    import numpy as np
    import pandas as pd
    import ray

    from edgetwin.agents.rl import rllib_export as rx
    from edgetwin.agents.rl.torch_policy import TorchPolicy
    from edgetwin.envs import make_marl

    env_kwargs = {"scenario": SCENARIO, "overrides": {"duration_s": args.episode_s}}
    t0 = time.perf_counter()
    stats = rx.feature_stats(env_kwargs, n_slots=200 if args.quick else 1000, seed=args.seed)
    ray.init(**rx.ray_init_kwargs(num_cpus=args.env_runners))
    logging.getLogger("ray.rllib").setLevel(logging.ERROR)  # "running PPO on the new API stack"
    try:
        rx.register_env()
        config = rx.ppo_config(
            env_kwargs,
            stats,
            num_env_runners=args.env_runners,
            num_envs_per_env_runner=args.envs_per_runner,
            train_batch_size=args.batch,
            minibatch_size=min(256, args.batch),
            seed=args.seed,
        )
        algo = config.build_algo()
        t_built = time.perf_counter()
        rows = []
        for it in range(1, args.iterations + 1):
            result = algo.train()
            row = {"iteration": it, "wall_s": time.perf_counter() - t0, **_returns(result)}
            rows.append(row)
            print(
                f"iteration {it:3d}: {row['env_steps']:7.0f} agent steps, episode return "
                f"prb {row['return_prb']:.2f} / power {row['return_power']:.2f} over "
                f"{row['slots_per_episode']:.0f} slots, {row['wall_s']:.1f} s",
                flush=True,
            )
        t_trained = time.perf_counter()
        algo.save_to_path(str((out / "rllib").resolve()))
        modules = rx.trained_modules(algo)
        probe = make_marl(rx.ENV_ID, **env_kwargs)
        max_ue, n_prb = int(probe.unwrapped.max_ue), int(probe.unwrapped.n_prb)
        path = rx.export_checkpoint(
            modules,
            stats,
            out / "model.pt",
            max_ue=max_ue,
            n_prb=n_prb,
            meta={
                "command": f"python examples/{PROG} " + " ".join(sys.argv[1:]),
                "scenario": SCENARIO,
                "iterations": args.iterations,
                "train_batch_size": args.batch,
                "env_runners": args.env_runners,
                "envs_per_runner": args.envs_per_runner,
                "episode_s": args.episode_s,
                "seed": args.seed,
                "returns": rows[-1],
            },
        )
        # The exported actors against the RLlib modules, on real observations of both agents.
        wrapped = rx.UEFeatureObservations(probe, stats)
        wrapped.reset(seed=args.seed + 1)
        max_diff = 0.0
        for _ in range(8):
            for agent in rx.AGENTS:
                raw = probe.observe(agent)
                policy_means = TorchPolicy(path, family=agent).act_env(raw)
                rllib_means = rx.module_action_means(modules[agent], [wrapped.observe(agent)])[0]
                max_diff = max(max_diff, float(np.max(np.abs(policy_means - rllib_means))))
                wrapped.step(rllib_means)
        algo.stop()
    finally:
        ray.shutdown()
    pd.DataFrame(rows).to_csv(out / "train.csv", index=False)
    print(f"exported {path} (max |exported − RLlib| action mean {max_diff:.1e})")
    return {
        "iterations": rows,
        "checkpoint": str(path),
        "max_abs_action_diff": max_diff,
        "build_s": t_built - t0,
        "train_s": t_trained - t_built,
        "wall_s": time.perf_counter() - t0,
    }


# ----------------------------------------------------------------------------------------
# Evaluation as an ordinary policy
# ----------------------------------------------------------------------------------------
def evaluate(args: argparse.Namespace, checkpoint: Path) -> dict[str, Any]:
    """B0 and the exported agents on the same seeds; mean ± CI and paired differences."""
    import numpy as np
    from scipy import stats

    from edgetwin.scenarios.load import load_scenario
    from edgetwin.scenarios.run import compare, summarize_comparison

    ref = f"ppo:{checkpoint}"
    sets = {"B0": {"prb": "pf", "power": "equal"}, "RLlib": {"prb": ref, "power": ref}}
    config = load_scenario(SCENARIO, [f"duration_s={args.eval_s}"])
    runs = compare(config, list(sets.values()), range(args.seeds), labels=list(sets))
    table = summarize_comparison(runs)
    table = table[table["metric"].isin(METRICS)]
    wide = table.pivot(index="policy_set", columns="metric", values="mean").loc[list(sets)]
    half = table.pivot(index="policy_set", columns="metric", values="ci95_half_width")
    print(f"\n{SCENARIO}, {args.eval_s:g} s, seeds 0..{args.seeds - 1}: mean ± 95 % CI")
    shown = wide[list(METRICS)].copy().astype(object)
    for s in sets:
        for m in METRICS:
            shown.loc[s, m] = f"{wide.loc[s, m]:.3f} ± {half.loc[s, m]:.3f}"
    print(shown.to_string())
    by = runs.set_index(["policy_set", "seed"])
    diff = by.loc["RLlib"][list(METRICS)] - by.loc["B0"][list(METRICS)]
    n = len(diff)
    t = stats.t.ppf(0.975, n - 1)
    paired = {
        m: (float(diff[m].mean()), float(t * diff[m].std(ddof=1) / np.sqrt(n))) for m in METRICS
    }
    print(
        "RLlib − B0 on the same seed: "
        + ", ".join(f"{m} {d:+.3f} ± {h:.3f}" for m, (d, h) in paired.items())
    )
    return {"runs": runs, "means": wide.to_dict(), "paired_difference": paired}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train, export and evaluate (see the module docstring)."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rllib_prb_power_") as tmp:
        out = Path(args.out) if args.out is not None else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        trained = train_and_export(args, out)
        result = evaluate(args, Path(trained["checkpoint"]))
        result["runs"].to_csv(out / "comparison.csv", index=False)
        summary = {
            "config": {k: v for k, v in vars(args).items() if k != "out"},
            **{k: v for k, v in trained.items() if k != "checkpoint"},
            "means": result["means"],
            "paired_difference": result["paired_difference"],
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        print(
            f"\n{args.iterations} iterations in {trained['train_s']:.1f} s "
            f"(+ {trained['build_s']:.1f} s for the feature statistics, Ray and the env runners); "
            f"total {trained['wall_s']:.1f} s"
            + (f"; results in {out}/" if args.out is not None else "")
        )
        return summary


if __name__ == "__main__":
    main()
