"""File-system checks shared by every writer of user-visible output.

Results, checkpoints and profiles all fail in one line *before* the work (which can take
hours), not after it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_creatable"]


def check_creatable(path: Path, what: str) -> None:
    """Check that the folder ``path`` exists or can be created.

    Args:
        path: The folder to be written into (absolute or relative).
        what: How to name it in the message, e.g. ``"--out"`` or ``"output directory"``.

    Raises:
        ValueError: One line when ``path`` or a folder above it is a file, or when the nearest
            existing folder above it cannot be written.
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is" if existing == path else f"is below {str(existing)!r}, which is"
        raise ValueError(f"{what} {str(path)!r} {where} a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(
            f"{what} {str(path)!r} cannot be created: {str(existing)!r} is not writable"
        )
