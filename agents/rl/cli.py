"""``edgetwin train``: train PRB/power (or adapter-cache) agents and write a policy checkpoint.

Examples::

    edgetwin train ppo --control prb --steps 50000 --seed 0 --out runs/ppo_prb/model.pt
    edgetwin train ppo --control cache --steps 4000 --seed 0 --out runs/ppo_cache/model.pt
    edgetwin train ppo --control prb --steps 50000 --n-envs 2 --out runs/ppo_prb2/model.pt
    edgetwin train prb-power --phases prb,power,joint --steps 20000 --out runs/mappo/model.pt
    edgetwin run nr_cell --policy prb=ppo:runs/mappo/model.pt --policy power=ppo:runs/mappo/model.pt

Building the parser imports neither torch nor Stable-Baselines3; the handlers import the
trainers when a command runs. Bad input raises ``ValueError`` (one ``edgetwin: error:`` line,
exit status 2, from :func:`edgetwin.scenarios.cli.main`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from edgetwin.agents.rl.options import (
    ARCHS,
    CACHE_CONTROL,
    CACHE_ENV,
    PHASES,
    PPO_CONTROLS,
    check_phases,
)
from edgetwin.scenarios.argtypes import add_set_option, bounded_int, pos_float, pos_int, seed_int

#: Most envs ``--n-envs`` accepts: one worker process each.
MAX_N_ENVS = 4 * (os.cpu_count() or 1)
#: ``--scenario`` and ``--episode-s`` when not given (``--control cache`` has no scenario and
#: keeps its env's episode length, so the parser's defaults are ``None``).
DEFAULT_SCENARIO = "nr_cell"
DEFAULT_EPISODE_S = 0.25


def parse_phases(text: str) -> list[str]:
    """``"prb,power,joint"`` → ``["prb", "power", "joint"]``.

    Raises:
        ValueError: An unknown or missing phase (the message lists the allowed ones).
    """
    try:
        return check_phases([p.strip() for p in text.split(",") if p.strip()])
    except ValueError as exc:
        raise ValueError(f"--phases {text!r}: {exc}") from None


def _n_envs(text: str) -> int:
    """A number of envs in 1..:data:`MAX_N_ENVS`."""
    return bounded_int(text, 1, MAX_N_ENVS)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scenario",
        default=None,
        help=f"single-cell scenario: built-in name or YAML path (default {DEFAULT_SCENARIO})",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the training (default 0)")
    p.add_argument(
        "--episode-s",
        type=pos_float,
        default=None,
        metavar="S",
        help=f"simulated seconds per training episode (duration_s; default {DEFAULT_EPISODE_S}; "
        "--control cache: the env's 20 epochs)",
    )
    p.add_argument("--out", required=True, metavar="PATH", help="checkpoint to write (.pt)")
    add_set_option(p)


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``train`` (with ``ppo`` and ``prb-power``) to the ``edgetwin`` subparsers.

    Args:
        subparsers: The object ``ArgumentParser.add_subparsers`` returned.

    Returns:
        The ``train`` parser.
    """
    train = subparsers.add_parser(
        "train",
        help="train PRB/power agents (SB3 PPO, or MAPPO with a curriculum) to a checkpoint",
        description="Train agents on the PRB/power envs and write a checkpoint that "
        "`edgetwin run --policy prb=ppo:PATH` (and power=ppo:PATH) loads.",
    )
    sub = train.add_subparsers(dest="train_command", required=True, metavar="TRAINER")

    ppo = sub.add_parser(
        "ppo",
        help="single-agent PPO (Stable-Baselines3) on edgetwin/PrbPower-v0 (or, with "
        "--control cache, edgetwin/AdapterCache-v0)",
        description="Stable-Baselines3 PPO (VecNormalize) with per-UE shared actor and central "
        "critic (--arch per_ue) or an MlpPolicy 64x64 tanh on the flattened per-UE features "
        "(--arch flat); exported to the common checkpoint format.",
    )
    _add_common(ppo)
    ppo.add_argument(
        "--control",
        choices=PPO_CONTROLS,
        default="prb",
        help=f"families the agent sets (cache: the adapter cache, on {CACHE_ENV}; its options "
        "with --set, e.g. --set capacity=4)",
    )
    ppo.add_argument(
        "--arch",
        choices=ARCHS,
        default=ARCHS[0],
        help=f"network: per-UE shared actor + central critic, or flat MLP (default {ARCHS[0]})",
    )
    ppo.add_argument("--steps", type=pos_int, default=50_000, metavar="N", help="env steps")
    ppo.add_argument(
        "--n-envs",
        type=_n_envs,
        default=1,
        metavar="N",
        help="envs stepped per PPO step, env i seeded with seed + i; --steps counts the steps "
        "of all envs (default 1: one env, in-process)",
    )
    ppo.add_argument(
        "--vec",
        choices=("batch", "subproc"),
        default=None,
        help="how --n-envs > 1 envs step: one cell batch in this process (default for the "
        "PRB/power envs) or SB3 worker processes (default for --control cache); same results",
    )
    ppo.set_defaults(func=_cmd_train_ppo)

    mappo = sub.add_parser(
        "prb-power",
        help="hierarchical PRB + power agents (MAPPO) through a curriculum",
        description="MAPPO: a PRB agent and a power agent with a centralized critic, trained "
        "through the phases prb (equal power), power (frozen PRB agent), joint.",
    )
    _add_common(mappo)
    mappo.add_argument(
        "--phases",
        type=str,
        default=",".join(PHASES),
        metavar="P,P,...",
        help=f"curriculum phases in order, from {', '.join(PHASES)} (default prb,power,joint)",
    )
    mappo.add_argument("--steps", type=pos_int, default=20_000, metavar="N", help="slots per phase")
    mappo.add_argument(
        "--n-envs",
        type=_n_envs,
        default=1,
        metavar="N",
        help="cells stepped per team step as one cell batch (default 1: the MARL env); "
        "--steps counts the slots of all of them",
    )
    mappo.set_defaults(func=_cmd_train_mappo)
    return train


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _use(out: Path, families: list[str]) -> str:
    return " ".join(f"--policy {f}=ppo:{out}" for f in families)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from edgetwin.scenarios.load import parse_overrides

    overrides = dict(parse_overrides(args.overrides))
    if "duration_s" in overrides:  # the trainers set it from --episode-s, which would win
        raise ValueError(
            "--set duration_s does not apply to training: the episode length is --episode-s "
            f"(default 0.25), e.g. --episode-s {overrides['duration_s']}"
        )
    return overrides


#: Fewest env steps (PPO) or slots per phase (MAPPO) ``--steps`` accepts: one PPO update
#: normalizes advantages over its rollout, which needs at least 2 transitions (SB3 would
#: otherwise silently train 2 steps when asked for 1).
MIN_STEPS = 2


def _check_steps(steps: int) -> None:
    if steps < MIN_STEPS:
        raise ValueError(
            f"--steps {steps} is below the minimum {MIN_STEPS}: one PPO update needs a rollout "
            f"of at least {MIN_STEPS} transitions"
        )


def _check_out(text: str) -> Path:
    """Check ``--out`` before training (which can take hours), not when the checkpoint is saved.

    Raises:
        ValueError: One line for an empty path, a directory, a path below a file or in a folder
            that cannot be written, or an existing file that is not an EdgeTwin checkpoint.
    """
    if not text.strip():
        raise ValueError("--out is empty; give a checkpoint path such as runs/model.pt")
    if text.endswith(("/", os.sep)):  # Path() drops the slash: a file would take the name
        raise ValueError(f"--out {text!r} names a folder; give a file path such as {text}model.pt")
    out = Path(text).expanduser()
    if out.is_dir():
        raise ValueError(f"--out {text!r} is a directory; give a file path such as {text}/model.pt")
    from edgetwin.sim.fsio import check_creatable

    check_creatable(out.absolute().parent, "--out")
    if out.exists():
        from edgetwin.agents.rl.checkpoint import is_policy_checkpoint

        if not is_policy_checkpoint(out):
            raise ValueError(
                f"--out {text!r} exists and is not an EdgeTwin checkpoint; refusing to overwrite "
                "it: choose another path"
            )
    return out


def _cmd_train_ppo(args: argparse.Namespace) -> int:
    cache = args.control == CACHE_CONTROL
    if cache and args.scenario is not None:
        raise ValueError(
            f"--scenario does not apply to --control cache: it trains on {CACHE_ENV}, whose "
            "options are given with --set (e.g. --set n_adapters=20 --set capacity=4)"
        )
    out = _check_out(args.out)
    _check_steps(args.steps)
    overrides = _overrides(args)
    from edgetwin.agents.rl.ppo import train_ppo

    scenario = CACHE_ENV if cache else args.scenario or DEFAULT_SCENARIO
    episode_s = args.episode_s if cache or args.episode_s is not None else DEFAULT_EPISODE_S
    t0 = time.perf_counter()
    policy = train_ppo(
        scenario=scenario,
        control=args.control,
        arch=args.arch,
        total_steps=args.steps,
        seed=args.seed,
        out=out,
        overrides=overrides,
        episode_s=episode_s,
        n_envs=args.n_envs,
        vec=args.vec,
    )
    wall = time.perf_counter() - t0
    summary = policy.meta.get("summary", {})
    ret = summary.get("mean_episode_return")
    ret_text = f", mean episode return {ret:.4g}" if isinstance(ret, float) else ""
    families = [f for f in ("prb", "power") if args.control in (f, "joint")]
    envs_text = f", {args.n_envs} envs" if args.n_envs > 1 else ""
    _say(
        f"trained PPO ({args.control}, {args.arch}) on {scenario}: "
        f"{policy.meta.get('steps', args.steps)} steps{envs_text}, seed {args.seed}, "
        f"{wall:.1f} s{ret_text}"
    )
    use = f"cache/ppo:{out}" if cache else _use(out, families)
    _say(f"checkpoint: {out} (use: {use})")
    return 0


def _cmd_train_mappo(args: argparse.Namespace) -> int:
    phases = parse_phases(args.phases)
    out = _check_out(args.out)
    _check_steps(args.steps)
    overrides = _overrides(args)
    from edgetwin.agents.rl.mappo import train_curriculum

    t0 = time.perf_counter()
    scenario = args.scenario or DEFAULT_SCENARIO
    summary = train_curriculum(
        scenario=scenario,
        phases=phases,
        steps_per_phase=args.steps,
        seed=args.seed,
        episode_s=args.episode_s if args.episode_s is not None else DEFAULT_EPISODE_S,
        out=out,
        overrides=overrides,
        n_envs=args.n_envs,
    )
    wall = time.perf_counter() - t0
    envs_text = f", {args.n_envs} cells as one batch" if args.n_envs > 1 else ""
    _say(
        f"trained MAPPO on {scenario}: phases {','.join(phases)}, {args.steps} slots each"
        f"{envs_text}, seed {args.seed}, {wall:.1f} s"
    )
    for ph in summary.get("phases", []) if isinstance(summary, dict) else []:
        _say(
            f"  {ph.get('phase')}: reward {ph.get('reward', float('nan')):.4f}, cell throughput "
            f"{ph.get('cell_throughput_mbps', float('nan')):.2f} Mbit/s, "
            f"Jain {ph.get('jain', float('nan')):.3f}"
        )
    families = [f for f in ("prb", "power") if any(p in (f, "joint") for p in phases)]
    _say(f"checkpoint: {out} (use: {_use(out, families)})")
    return 0
