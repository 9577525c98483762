"""Checkpoints shipped with the package (``agents/rl/checkpoints/*.pt``) and how they were made.

Each was produced by the command in its ``meta["command"]`` (also listed in the README); the
seed in that command reproduces it bit for bit on a CPU with one torch thread.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


def shipped_checkpoints() -> dict[str, Path]:
    """Name → path of every shipped checkpoint (``nr_cell_mappo`` → ``.../nr_cell_mappo.pt``)."""
    return {p.stem: p for p in sorted(CHECKPOINT_DIR.glob("*.pt"))}


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A checkpoint path: an existing file, or the name of a shipped checkpoint.

    Raises:
        FileNotFoundError: Neither a file nor a shipped name (the message lists the names).
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = shipped_checkpoints()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    names = ", ".join(shipped) or "none"
    if path.is_dir():
        raise IsADirectoryError(
            f"checkpoint {str(name_or_path)!r} is a directory; give a checkpoint file (.pt) "
            f"written by 'edgetwin train', or a shipped name: {names}"
        )
    raise FileNotFoundError(
        f"checkpoint {str(name_or_path)!r} not found (neither a file nor a shipped checkpoint; "
        f"shipped: {names})"
    )
