"""Build the table cost model of a profile folder of any format, caching public imports.

:func:`load_profile_folder` picks the folder's one profile for ``(hardware, model)``
(:func:`~edgetwin.sim.compute.profile_formats.select_profile`: never a silent fallback), builds
its :class:`~edgetwin.sim.compute.table_cost.TableCostModel` and describes what was used
(format, folder, SHA-256 of the files read, operator tables) for ``summary.json``.

Imports of LLMServingSim folders are cached as ``<cache>/profiles/<sha256>-<model>-v<N>.npz``
(:meth:`TableCostModel.to_npz`), keyed by the SHA-256 of the files read, so that a changed file
is a new import. ``<cache>`` is ``$EDGETWIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgetwin``, else
``~/.cache/edgetwin``. The file is written atomically (temporary file + ``os.replace``); an
unreadable one is rebuilt; a cache folder that cannot be written only turns caching off.
Not cached: EdgeTwin trees (their ``table.npz`` is the cache; a CSV tree keeps its measured
shape, which the ``.npz`` loader would clip) and Vidur folders (their roofline LM head is not
stored in ``.npz``; importing ``mlp.csv`` takes ~0.06 s against ~0.1 s for LLMServingSim).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Final

from edgetwin.sim.compute.profile_formats import ProfileSource, select_profile
from edgetwin.sim.compute.table_cost import (
    DEFAULT_OVERHEAD_S,
    TABLE_FILE,
    TableCostModel,
    llmservingsim_cost_model,
    vidur_cost_model,
)

#: Environment variable naming the cache folder.
CACHE_ENV: Final[str] = "EDGETWIN_CACHE_DIR"
#: Version of the import mapping; part of the cache file name, so that a changed importer
#: never reads an older import.
IMPORT_VERSION: Final[int] = 1


def cache_dir() -> Path:
    """The folder of cached imports: ``$EDGETWIN_CACHE_DIR/profiles`` (or the XDG default)."""
    base = os.environ.get(CACHE_ENV)
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = str(Path(xdg) / "edgetwin") if xdg else str(Path.home() / ".cache" / "edgetwin")
    return Path(base).expanduser() / "profiles"


def content_sha256(folder: Path, files: tuple[Path, ...]) -> str:
    """SHA-256 over the files' names (relative to ``folder``) and bytes, in sorted order.

    Raises:
        ValueError: One line naming a file that cannot be read.
    """
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.relative_to(folder).as_posix().encode() + b"\0")
        try:
            h.update(f.read_bytes())
        except OSError as exc:
            raise ValueError(
                f"profile file {str(f)!r} is not readable ({exc.strerror or exc})"
            ) from None
        h.update(b"\0")
    return h.hexdigest()


def load_profile_folder(
    root: str | Path,
    *,
    model: str,
    hardware: str,
    overhead_s: float = DEFAULT_OVERHEAD_S,
) -> tuple[TableCostModel, dict[str, Any]]:
    """The cost model of ``(hardware, model)`` from ``root``, and what was used.

    Args:
        root: A profile folder or an ancestor of one (``profile_formats.py``).
        model: EdgeTwin model id.
        hardware: EdgeTwin hardware id.
        overhead_s: Fixed per-iteration seconds.

    Returns:
        The model and a JSON-able description: ``format``, ``folder``, ``source_hardware``,
        ``source_model``, ``sha256`` (of ``files``), ``files`` (relative to ``folder``),
        ``tables`` (operator names), ``cache`` (``"hit"``, ``"written"``, ``"rebuilt"``,
        ``"off: <reason>"`` or ``None``: not cached), ``notes``, and with whole-layer profiles
        ``framework_overhead_coef`` (``c_0, c_tok, c_kv, h_1..h_J``) and
        ``framework_overhead_knots`` (``k_1..k_J``).

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        ValueError: One line: nothing usable for the pair (see ``select_profile``).
    """
    src = select_profile(root, hardware=hardware, model=model)
    sha = content_sha256(src.folder, src.files)
    cache: str | None = None
    if src.format == "edgetwin":
        cost = _edgetwin(src, overhead_s)
    elif src.format == "vidur":
        cost = vidur_cost_model(src.folder, model=model, hardware=hardware, overhead_s=overhead_s)
    else:
        cost, cache = _cached_llmservingsim(src, sha, overhead_s)
    cost.name = f"{hardware}/{model} ({src.format}: {src.folder})"
    info: dict[str, Any] = {
        "format": src.format,
        "folder": str(src.folder),
        "source_hardware": src.source_hardware,
        "source_model": src.source_model,
        "sha256": sha,
        "files": [f.relative_to(src.folder).as_posix() for f in src.files],
        "tables": sorted(cost.tables),
        "cache": cache,
        "notes": list(src.notes),
    }
    if cost.framework is not None:  # per-layer framework overhead (framework_overhead.py)
        info["framework_overhead_coef"] = list(cost.framework.coef)
        info["framework_overhead_knots"] = list(cost.framework.knots)
    if cost.fallback is not None:  # what the tables lack comes from the roofline
        lacks = ["attention"] if "attn_prefill" not in cost.tables else []
        info["roofline_for"] = [*lacks, *([] if "lm_head" in cost.tables else ["lm_head"])]
    return cost, info


def _edgetwin(src: ProfileSource, overhead_s: float) -> TableCostModel:
    if (src.folder / TABLE_FILE).is_file():
        return TableCostModel.from_npz(src.folder / TABLE_FILE, overhead_s=overhead_s)
    return TableCostModel.from_profile_dir(src.folder, overhead_s=overhead_s)


def _cached_llmservingsim(
    src: ProfileSource, sha: str, overhead_s: float
) -> tuple[TableCostModel, str]:
    """Read the cached import, or import and cache it; returns the model and the cache state."""
    path = cache_dir() / f"{sha}-{src.model}-v{IMPORT_VERSION}.npz"
    state = "written"
    if path.is_file():
        try:
            return TableCostModel.from_npz(path, overhead_s=overhead_s), "hit"
        except ValueError:  # truncated or garbled (from_npz names no other error): rebuild
            state = "rebuilt"
    cost = llmservingsim_cost_model(
        src.folder, model=src.model, hardware=src.hardware, dtype=src.dtype, overhead_s=overhead_s
    )
    try:
        _write_atomic(cost, path, {"sha256": sha, "format": src.format, "model": src.model})
    except OSError as exc:  # a read-only home must not stop a run
        state = f"off: {exc.strerror or type(exc).__name__} ({path.parent})"
    return cost, state


def _write_atomic(cost: TableCostModel, path: Path, meta: dict[str, Any]) -> None:
    """Write ``cost`` to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        cost.to_npz(tmp, meta=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


__all__ = ["CACHE_ENV", "IMPORT_VERSION", "cache_dir", "content_sha256", "load_profile_folder"]
