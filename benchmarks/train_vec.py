"""PPO training speed with n envs: the cell batch against SB3's DummyVecEnv and SubprocVecEnv.

All three train bit-identical weights (``tests/agents/test_train_n_envs.py``); this measures
their wall time in one run on this machine: SB3 PPO (``agents/rl/ppo.py`` defaults, per-UE
network) on ``nr_cell`` with ``--control prb``, 0.25 s episodes (as the shipped checkpoints),
``n_envs`` envs, ``steps`` env steps in all (``model.learn``; building the model is not
timed). Printed: env steps per wall second, and each as a ratio to the in-process
``DummyVecEnv`` (``inline``) measured in the same run. Then the MAPPO curriculum's ``prb`` phase
(``agents/rl/mappo.py``, 4 × the PPO steps of team transitions) on the MARL env against
``--n-envs`` cells as one cell batch; the ratio there is to the MARL env.

Usage::

    .venv/bin/python benchmarks/train_vec.py               # 8 envs, 8,192 steps (~3 minutes)
    .venv/bin/python benchmarks/train_vec.py --quick       # 4 envs, 1,024 steps
    .venv/bin/python benchmarks/train_vec.py --json results/train_vec.json

Exit status: 0 when every case ran, 1 when one failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness import CaseResult, guard, json_header, report_failures, write_json

VECS = ("inline", "subproc", "batch")


def bench(vec: str, n_envs: int, steps: int, seed: int) -> CaseResult:
    """One training run of ``steps`` env steps with ``n_envs`` envs stepped as ``vec``."""
    res = CaseResult(f"PPO prb, {n_envs} envs, vec={vec}", vec, "env steps")

    def body() -> None:
        from edgetwin.agents.rl.ppo import make_ppo, ppo_settings

        model, venv = make_ppo(
            control="prb",
            seed=seed,
            overrides={"duration_s": 0.25},
            n_envs=n_envs,
            ppo_kwargs=ppo_settings(steps, n_envs),
            vec=vec,
        )
        try:
            t0 = time.perf_counter()
            model.learn(total_timesteps=steps)
            res.walls_s = [time.perf_counter() - t0]
            res.n_units = steps
        finally:
            venv.close()

    return guard(res, body)


def bench_mappo(n_envs: int, slots: int, seed: int) -> CaseResult:
    """The MAPPO curriculum's ``prb`` phase for ``slots`` team transitions on ``n_envs`` cells."""
    label = "MARL env" if n_envs == 1 else f"{n_envs} cells, cell batch"
    res = CaseResult(f"MAPPO prb phase, {label}", f"mappo_{n_envs}", "slots")

    def body() -> None:
        from edgetwin.agents.rl.mappo import train_curriculum

        t0 = time.perf_counter()
        train_curriculum(
            phases=["prb"], steps_per_phase=slots, seed=seed, log=lambda _: None, n_envs=n_envs
        )
        res.walls_s = [time.perf_counter() - t0]
        res.n_units = slots

    return guard(res, body)


def main(argv: list[str] | None = None) -> int:
    """Run the three cases; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 envs, 1,024 steps")
    ap.add_argument("--json", type=Path, default=None, metavar="PATH")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n_envs, steps = (4, 1024) if args.quick else (8, 8192)
    cases = {}
    for vec in VECS:
        print(f"training with vec={vec} ...", flush=True)
        c = bench(vec, n_envs, steps, args.seed)
        cases[c.key] = c
    for cells in (1, n_envs):
        print(f"training MAPPO with {cells} cell(s) ...", flush=True)
        c = bench_mappo(cells, 4 * steps, args.seed)
        cases[c.key] = c
    ref = cases["inline"].rate if cases["inline"].ok else None
    mappo_ref = cases["mappo_1"].rate if cases["mappo_1"].ok else None
    print(f"\n{'case':<36} {'steps':>7} {'wall s':>8} {'steps/s':>9} {'ratio':>9}")
    for c in cases.values():
        if not c.ok:
            print(f"{c.case:<36} NOT RUN: {c.error}")
            continue
        base = mappo_ref if c.key.startswith("mappo") else ref
        ratio = f"{c.rate / base:.2f}x" if base else "-"
        print(f"{c.case:<36} {c.n_units:>7} {c.walls_s[0]:>8.1f} {c.rate:>9,.0f} {ratio:>9}")
    status = report_failures(cases.values())
    if args.json is not None:
        payload = {
            **json_header(
                "train_vec", quick=args.quick, packages=("numpy", "torch", "stable_baselines3")
            ),
            "n_envs": n_envs,
            "steps": steps,
            "cases": {k: c.to_json() for k, c in cases.items()},
        }
        write_json(args.json, payload)
    return status


if __name__ == "__main__":
    sys.exit(main())
