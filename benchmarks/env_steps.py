"""Speed of the RL envs: env steps/s of PrbPower-v0 and PrbPowerMARL-v0 vs. the inline run.

Measured in one run on this machine, all on the ``nr_cell`` scenario (1 cell x 20 UEs x 51 PRBs,
20 MHz, mu=1, 0.5 ms slots, full buffer, so every slot is one env step):

1. **reference**: the same scenario run inline, ``build(config, seed)`` (``prb/pf``,
   ``power/equal``) then ``sim.run()``; slots/s. Only ``sim.run()`` is timed.
2. ``edgetwin/PrbPower-v0`` through ``gym.make`` (so with Gymnasium's default
   ``PassiveEnvChecker``/``OrderEnforcing`` wrappers), one env, ``control`` = ``joint``
   (the default), ``prb`` and ``power``: env steps/s over one whole episode. The uniform random
   actions are drawn before timing; ``reset()`` (which builds the simulation) is not timed.
3. ``gymnasium.vector.SyncVectorEnv`` of 4 ``PrbPower-v0`` (joint) envs: env steps/s, counting
   4 env steps per vector step, over one episode of each env (no autoreset inside the timed
   loop).
4. ``edgetwin/PrbPowerMARL-v0`` (PettingZoo AEC, the wrapped ``env()``): agent steps/s (two per
   slot) with the standard ``agent_iter()`` / ``last()`` / ``step()`` loop, which also copies
   every observation (``last()`` observes).

Every rate is also printed as a ratio to the reference, i.e. the fraction of the inline
simulator's speed left once the RL interface is in the loop. Every case is repeated; the table
reports the best repeat (the least disturbed by other processes on a shared machine) and the
median. Goal: at least 5,000 env steps/s for one ``PrbPower-v0`` env (joint control).

Usage::

    .venv/bin/python benchmarks/env_steps.py            # full run (~1 minute)
    .venv/bin/python benchmarks/env_steps.py --quick    # CI smoke run (short episodes)
    .venv/bin/python benchmarks/env_steps.py --json results/env_steps.json

Exit status: 0 when every case ran (whatever the goal says), 1 when a case failed to run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from harness import CaseResult, guard, json_header, repeat, report_failures, write_json

GOAL_ENV_STEPS_PER_S = 5_000.0
SCENARIO = "nr_cell"
ENV_ID = "edgetwin/PrbPower-v0"
MARL_ID = "edgetwin/PrbPowerMARL-v0"
N_VEC = 4


@dataclass(frozen=True)
class Plan:
    """Episode length and repeats of every case.

    Attributes:
        horizon_s: Simulated time of one timed episode (``duration_s``).
        repeats: Timed repeats per case (at most).
        budget_s: Wall-time budget per case; repeats stop early once it is spent.
    """

    horizon_s: float
    repeats: int
    budget_s: float
    vector_steps: int = 400


FULL = Plan(horizon_s=1.0, repeats=5, budget_s=30.0)
QUICK = Plan(horizon_s=0.1, repeats=2, budget_s=10.0, vector_steps=40)
#: Batch sizes of the cell-batch vector env (issue: B = 1, 16, 64, 256).
BATCH_SIZES = (1, 16, 64, 256)
GOAL_BATCHED_STEPS_PER_S = 100_000.0
GOAL_BATCHED_B = 64
GOAL_VS_MOBILE_ENV = 100.0


def _overrides(plan: Plan) -> dict[str, Any]:
    return {"duration_s": plan.horizon_s}


def _time_episodes(
    res: CaseResult,
    plan: Plan,
    rng: np.random.Generator,
    *,
    reset: Callable[[int], int],
    action_shape: tuple[int, ...],
    play: Callable[[np.ndarray], int],
) -> None:
    """Time whole episodes of an env into ``res``: one untimed warm-up, then the repeats.

    Per episode, only ``play`` is timed: ``reset`` is timed apart (its median goes to
    ``res.info["reset_s_median"]``) and the uniform random actions are drawn before ``play``.

    Args:
        res: The case's result; gets ``walls_s``, ``n_units`` and ``info["reset_s_median"]``.
        plan: Repeats and budget.
        rng: Draws the actions.
        reset: ``reset(i)`` resets the env for the ``i``-th timed episode (``i`` = 0 for the
            warm-up too) and returns the most actions one episode can take.
        action_shape: Shape of one action.
        play: Steps through one episode with the given actions; returns the units stepped.
    """
    reset_s: list[float] = []
    n: dict[str, int] = {}

    def run_once() -> float:
        t0 = time.perf_counter()
        n_max = reset(len(reset_s))
        reset_s.append(time.perf_counter() - t0)
        actions = rng.uniform(-1.0, 1.0, (n_max, *action_shape)).astype(np.float32)
        t0 = time.perf_counter()
        units = play(actions)
        wall = time.perf_counter() - t0
        n["units"] = units
        return wall

    run_once()  # warm-up episode (first calls of numba / numpy paths)
    reset_s.clear()
    res.walls_s = repeat(run_once, plan.repeats, plan.budget_s)
    res.n_units = n["units"]
    res.info["reset_s_median"] = statistics.median(reset_s)


# ============================================================================================
# cases
# ============================================================================================
def bench_reference(plan: Plan, seed: int) -> CaseResult:
    """Inline scenario run (PF + equal power): slots/s of ``sim.run()``."""
    res = CaseResult(f"inline {SCENARIO} run (prb/pf, power/equal)", "inline", "slots")

    def body() -> None:
        from edgetwin.scenarios.builder import build
        from edgetwin.scenarios.load import load_scenario

        config = load_scenario(SCENARIO, _overrides(plan))
        build(load_scenario(SCENARIO, {"duration_s": 0.01}), seed=seed).run()  # warm-up
        build_s: list[float] = []
        n: dict[str, int] = {}

        def run_once() -> float:
            t0 = time.perf_counter()
            sim = build(config, seed=seed + len(build_s))
            build_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            sim.run()
            wall = time.perf_counter() - t0
            cell = sim.components["radio"]
            n["slots"] = int(cell.n_slot_total)
            n["active"] = int(cell.n_active_slots)
            return wall

        res.walls_s = repeat(run_once, plan.repeats, plan.budget_s)
        res.n_units = n["slots"]
        res.info = {"n_active_slots": n["active"], "build_s_median": statistics.median(build_s)}

    return guard(res, body)


def bench_env(plan: Plan, seed: int, control: str) -> CaseResult:
    """One ``PrbPower-v0`` env (``gym.make``): env steps/s over an episode, random actions."""
    res = CaseResult(f"{ENV_ID} control={control}, 1 env", f"env_{control}", "env steps")

    def body() -> None:
        import gymnasium as gym

        import edgetwin.envs  # noqa: F401  (registers the ids)

        env = gym.make(ENV_ID, scenario=SCENARIO, control=control, overrides=_overrides(plan))
        space = env.action_space
        assert isinstance(space, gym.spaces.Box)

        def reset(i: int) -> int:
            env.reset(seed=seed + i)
            return int(env.unwrapped._episode.cell.n_slot_total)

        def play(actions: np.ndarray) -> int:
            steps = 0
            for a in actions:
                steps += 1
                if env.step(a)[3]:
                    break
            return steps

        rng = np.random.default_rng(seed)
        _time_episodes(res, plan, rng, reset=reset, action_shape=space.shape, play=play)
        res.info["control"] = control
        env.close()

    return guard(res, body)


def bench_vector(plan: Plan, seed: int) -> CaseResult:
    """``SyncVectorEnv`` of 4 joint envs: env steps/s (4 per vector step)."""
    res = CaseResult(f"SyncVectorEnv {N_VEC} x {ENV_ID} control=joint", "vector_sync", "env steps")

    def body() -> None:
        import gymnasium as gym

        import edgetwin.envs  # noqa: F401

        def make() -> gym.Env[Any, Any]:
            return gym.make(ENV_ID, scenario=SCENARIO, control="joint", overrides=_overrides(plan))

        venv = gym.vector.SyncVectorEnv([make for _ in range(N_VEC)])
        space = venv.action_space
        assert isinstance(space, gym.spaces.Box)

        def reset(i: int) -> int:
            venv.reset(seed=seed + 100 * i)
            return int(venv.envs[0].unwrapped._episode.cell.n_slot_total)

        def play(actions: np.ndarray) -> int:
            steps = 0
            for a in actions:
                steps += 1
                _, _, terminated, truncated, _ = venv.step(a)
                if (terminated | truncated).any():
                    break
            return N_VEC * steps

        rng = np.random.default_rng(seed)
        res.info["n_envs"] = N_VEC
        _time_episodes(res, plan, rng, reset=reset, action_shape=space.shape, play=play)
        venv.close()

    return guard(res, body)


def bench_batched(plan: Plan, seed: int, n_envs: int) -> CaseResult:
    """``gym.make_vec(..., vectorization_mode="vector_entry_point")``: the cell-batch vector env.

    Times ``plan.vector_steps`` vector steps with uniform random actions drawn before timing
    (autoreset included if an episode ends); counts ``n_envs`` env steps per vector step.
    """
    res = CaseResult(
        f"make_vec {ENV_ID} joint, B={n_envs} (cell batch)", f"batched_{n_envs}", "env steps"
    )

    def body() -> None:
        import gymnasium as gym

        import edgetwin.envs  # noqa: F401

        venv = gym.make_vec(
            ENV_ID,
            num_envs=n_envs,
            vectorization_mode="vector_entry_point",
            scenario=SCENARIO,
            control="joint",
            overrides=_overrides(plan),
        )
        space = venv.action_space
        assert space.shape is not None
        rng = np.random.default_rng(seed)
        # Fewer steps for large batches so that a repeat stays within the budget.
        n_steps = max(10, plan.vector_steps * 16 // max(n_envs, 16))
        actions = rng.uniform(-1.0, 1.0, (n_steps, *space.shape)).astype(np.float32)
        venv.reset(seed=seed)
        for a in actions[: min(10, n_steps)]:  # warm-up: compiled kernels, first channel batch
            venv.step(a)
        reset_s: list[float] = []

        def run_once() -> float:
            t0 = time.perf_counter()
            venv.reset(seed=seed + len(reset_s))
            reset_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for a in actions:
                venv.step(a)
            return time.perf_counter() - t0

        res.walls_s = repeat(run_once, plan.repeats, plan.budget_s)
        res.n_units = n_envs * n_steps
        res.info.update(
            n_envs=n_envs, vector_steps=n_steps, reset_s_median=statistics.median(reset_s)
        )
        venv.close()

    return guard(res, body)


def bench_mobile_env(plan: Plan, seed: int) -> CaseResult:
    """mobile-env's ``mobile-small-central-v0`` (Schneider et al., NOMS 2022), random actions."""
    res = CaseResult("mobile-env mobile-small-central-v0, 1 env", "mobile_env", "env steps")

    def body() -> None:
        import gymnasium as gym
        import mobile_env  # noqa: F401  (registers the ids)

        env = gym.make("mobile-small-central-v0")
        env.reset(seed=seed)
        env.action_space.seed(seed)
        n_steps = plan.vector_steps
        actions = [env.action_space.sample() for _ in range(n_steps)]

        def run_once() -> float:
            env.reset(seed=seed)
            t0 = time.perf_counter()
            for a in actions:
                if env.step(a)[3]:
                    env.reset()
            return time.perf_counter() - t0

        run_once()  # warm-up
        res.walls_s = repeat(run_once, plan.repeats, plan.budget_s)
        res.n_units = n_steps
        env.close()

    return guard(res, body)


def mobile_env_installed() -> bool:
    """Whether the optional peer (``pip install -e '.[bench]'``) is importable."""
    import importlib.util

    return importlib.util.find_spec("mobile_env") is not None


def bench_marl(plan: Plan, seed: int) -> CaseResult:
    """``PrbPowerMARL-v0`` (wrapped AEC env): agent steps/s with agent_iter / last / step."""
    res = CaseResult(f"{MARL_ID} (AEC, 2 agents per slot)", "marl_aec", "agent steps")

    def body() -> None:
        from edgetwin.envs import make_marl

        env = make_marl(MARL_ID, scenario=SCENARIO, overrides=_overrides(plan))

        def reset(i: int) -> int:
            env.reset(seed=seed + i)
            return 2 * int(env.unwrapped.episode.cell.n_slot_total)

        def play(actions: np.ndarray) -> int:
            steps = 0
            for _agent in env.agent_iter():
                _, _, terminated, truncated, _ = env.last()
                if terminated or truncated:
                    env.step(None)
                else:
                    env.step(actions[steps])
                    steps += 1
            return steps

        rng = np.random.default_rng(seed)
        action_shape = (int(env.unwrapped.max_ue),)
        _time_episodes(res, plan, rng, reset=reset, action_shape=action_shape, play=play)
        env.close()

    return guard(res, body)


# ============================================================================================
# report
# ============================================================================================
def print_report(cases: dict[str, CaseResult], goal: dict[str, Any]) -> None:
    """Print the timing table with ratios to the inline reference, and the goal verdict."""
    ref = cases.get("inline")
    ref_rate = ref.rate if ref is not None and ref.ok else None
    head = (
        f"{'case':<56} {'unit':<12} {'n':>6} {'reps':>4} {'best/s':>9} {'median/s':>9} "
        f"{'vs inline':>9}"
    )
    print()
    print(head)
    print("-" * len(head))
    for c in cases.values():
        if not c.ok:
            print(f"{c.case:<56} NOT RUN: {c.error}")
            continue
        ratio = f"{c.rate / ref_rate:.2f}x" if ref_rate else "-"
        print(
            f"{c.case:<56} {c.unit:<12} {c.n_units:>6} {len(c.walls_s):>4} {c.rate:>9,.0f} "
            f"{c.rate_median:>9,.0f} {ratio:>9}"
        )
    print("(best/s: the best repeat; median/s: the median repeat; vs inline: best / best slots/s)")
    m = goal["measured"]
    shown = "-" if m is None else f"{m:,.0f}"
    print(f"\ngoal: {goal['goal']} {goal['target']}: measured {shown} -> {goal['status']}")


def _verdict(measured: float | None, target: float) -> str:
    if measured is None:
        return "NOT RUN"
    return "met" if measured >= target else "MISSED"


def evaluate_goal(cases: dict[str, CaseResult]) -> dict[str, Any]:
    """The one-env goal: ``met``, ``MISSED`` or ``NOT RUN``."""
    c = cases.get("env_joint")
    measured = c.rate if c is not None and c.ok else None
    return {
        "goal": f"{ENV_ID} control=joint, 1 env, env steps/s",
        "target": f">= {GOAL_ENV_STEPS_PER_S:,.0f}",
        "measured": measured,
        "status": _verdict(measured, GOAL_ENV_STEPS_PER_S),
    }


def evaluate_batched_goals(cases: dict[str, CaseResult]) -> list[dict[str, Any]]:
    """The vector-env goals: B = 64 aggregate steps/s, and the ratio to mobile-env."""
    c = cases.get(f"batched_{GOAL_BATCHED_B}")
    rate = c.rate if c is not None and c.ok else None
    peer = cases.get("mobile_env")
    peer_rate = peer.rate if peer is not None and peer.ok else None
    ratio = rate / peer_rate if rate is not None and peer_rate else None
    return [
        {
            "goal": f"cell-batch vector env, B={GOAL_BATCHED_B}, aggregate env steps/s",
            "target": f">= {GOAL_BATCHED_STEPS_PER_S:,.0f}",
            "measured": rate,
            "status": _verdict(rate, GOAL_BATCHED_STEPS_PER_S),
        },
        {
            "goal": f"cell-batch vector env B={GOAL_BATCHED_B} / mobile-env steps/s",
            "target": f">= {GOAL_VS_MOBILE_ENV:g}x",
            "measured": ratio,
            "status": _verdict(ratio, GOAL_VS_MOBILE_ENV),
        },
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short episodes, 2 repeats (CI smoke)")
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="write numbers here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--skip",
        choices=("inline", "env", "vector", "batched", "mobile-env", "marl"),
        action="append",
        default=[],
        help="skip a part (repeatable)",
    )
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    t_total = time.perf_counter()
    print(
        f"EdgeTwin env step benchmark ({'quick' if args.quick else 'full'}); {os.cpu_count()} "
        f"CPUs; scenario {SCENARIO}, episodes of {plan.horizon_s:g} s simulated"
    )
    cases: dict[str, CaseResult] = {}
    runs: list[tuple[str, str, Callable[[], CaseResult]]] = [
        ("inline", "inline reference", lambda: bench_reference(plan, args.seed)),
        *[
            ("env", f"env control={c}", partial(bench_env, plan, args.seed, c))
            for c in ("joint", "prb", "power")
        ],
        ("vector", "SyncVectorEnv", lambda: bench_vector(plan, args.seed)),
        *[
            ("batched", f"cell-batch vector env B={b}", partial(bench_batched, plan, args.seed, b))
            for b in BATCH_SIZES
        ],
        ("marl", "PettingZoo AEC", lambda: bench_marl(plan, args.seed)),
    ]
    if mobile_env_installed():
        runs.append(("mobile-env", "mobile-env", lambda: bench_mobile_env(plan, args.seed)))
    elif "mobile-env" not in args.skip:
        print("mobile-env is not installed (pip install -e '.[bench]'): its case is not run")
    for part, label, run in runs:
        if part in args.skip:
            continue
        print(f"running {label} ...", flush=True)
        c = run()
        cases[c.key] = c

    goal = evaluate_goal(cases)
    print_report(cases, goal)
    batched_goals = evaluate_batched_goals(cases)
    for g in batched_goals:
        m = g["measured"]
        shown = "-" if m is None else (f"{m:,.1f}" if m < 1000 else f"{m:,.0f}")
        print(f"goal: {g['goal']} {g['target']}: measured {shown} -> {g['status']}")
    total_s = time.perf_counter() - t_total
    print(f"\ntotal benchmark wall time {total_s:.1f} s")
    status = report_failures(cases.values())

    if args.json is not None:
        ref = cases.get("inline")
        payload = {
            **json_header(
                "env_steps",
                quick=args.quick,
                packages=("numpy", "gymnasium", "pettingzoo", "simpy", "numba"),
            ),
            "scenario": SCENARIO,
            "horizon_s": plan.horizon_s,
            "statistic": "per_s uses the best (shortest) repeat; ratios are best / best",
            "cases": {k: c.to_json() for k, c in cases.items()},
            "ratios_vs_inline": {
                k: c.rate / ref.rate
                for k, c in cases.items()
                if k != "inline" and c.ok and ref is not None and ref.ok
            },
            "goal": goal,
            "batched_goals": batched_goals,
            "total_wall_s": total_s,
        }
        write_json(args.json, payload)
    return status


if __name__ == "__main__":
    sys.exit(main())
