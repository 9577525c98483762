"""``numba.njit(cache=True)`` that still works where numba finds no writable cache folder.

numba caches compiled code in ``__pycache__`` beside the source, else under the user's cache
folder (``~/.cache/numba``). With a read-only install *and* no writable ``HOME`` neither exists
and ``njit(cache=True)`` raises ``cannot cache function ...: no locator available`` at import.
:func:`njit_cached` then points numba at a private folder under the system temp directory
(``NUMBA_CACHE_DIR``), and compiles without a cache only if even that cannot be written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numba
from numba.core import config as numba_config

__all__ = ["njit_cached"]

F = TypeVar("F", bound=Callable[..., Any])


def _fallback_cache_dir() -> Path | None:
    """A writable per-user folder under the temp directory, or ``None``."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    folder = Path(tempfile.gettempdir()) / f"edgetwin-numba-cache-{uid}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def _no_locator(exc: RuntimeError) -> bool:
    return "no locator available" in str(exc)


def njit_cached(**options: Any) -> Callable[[F], F]:
    """``numba.njit(cache=True, **options)``, falling back as the module docstring says."""

    def decorate(func: F) -> F:
        try:
            return numba.njit(cache=True, **options)(func)  # type: ignore[no-any-return]
        except RuntimeError as exc:
            if not _no_locator(exc):
                raise
        folder = _fallback_cache_dir()
        if folder is not None:
            os.environ["NUMBA_CACHE_DIR"] = str(folder)  # numba re-reads it on config reload
            numba_config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]
            try:
                return numba.njit(cache=True, **options)(func)  # type: ignore[no-any-return]
            except RuntimeError as exc:
                if not _no_locator(exc):
                    raise
        return numba.njit(cache=False, **options)(func)  # type: ignore[no-any-return]

    return decorate
