"""Which kernel-profile folders a directory holds, in which format, for which (hardware, model).

Three formats are recognised (a directory may hold several, at any depth up to
:data:`MAX_DEPTH`; an ancestor of a profile folder finds it):

* ``edgetwin``: the project's own tree, ``<hardware>/<model>/`` with ``table.npz``
  (``kernels/tables.py``) or ``meta.json`` + operator CSVs (``kernels/profile.py``); the folder
  names are the ids as they are.
* ``llmservingsim``: LLMServingSim's ``perf/<GPU>/<org>/<model>/<dtype>/`` folder
  (``meta.yaml`` + ``tpN/`` with ``attention.csv``, ``dense.csv``, ``per_sequence.csv``,
  ``skew_fit.csv``; ``moe.csv`` for MoE models).
* ``vidur``: Vidur's ``profiling/compute/<gpu>/<org>/<model>/`` folder (``mlp.csv``,
  ``attention.csv`` where present).

Public folder names are mapped to EdgeTwin ids (:func:`hardware_id`, :func:`model_id`):
``RTX4090 -> rtx4090``, ``meta-llama/Llama-3.1-8B -> llama-3.1-8b``. The path names the
hardware: a copy of a folder under another GPU's name is that GPU's (``meta.yaml``'s
``hardware`` is used only where the path does not have LLMServingSim's layout).

Nothing here reads a whole profile: detection looks at names, ``meta.yaml`` and CSV headers.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import yaml

from edgetwin.sim.compute.cost_model import MODEL_DIMS

ProfileFormat = Literal["edgetwin", "llmservingsim", "vidur"]

#: How deep below the given directory profile folders are looked for (``perf/`` is 4 levels
#: above an LLMServingSim ``<dtype>`` folder, ``profiling/`` 4 above a Vidur model folder).
MAX_DEPTH: Final[int] = 6
#: Most directories looked at, so that a mistyped ``--profiles /`` fails fast.
MAX_DIRS: Final[int] = 20_000

#: EdgeTwin operator CSVs that make a ``meta.json`` folder a profile folder.
EDGETWIN_OP_CSVS: Final[tuple[str, ...]] = ("linear_qkv.csv",)
#: LLMServingSim ``tp1`` files the importer needs (attention, GEMMs + elementwise, LM head).
LLMSERVINGSIM_NEEDED: Final[tuple[str, ...]] = ("attention.csv", "dense.csv", "per_sequence.csv")
#: LLMServingSim files that may be there and are not imported, with the reason.
LLMSERVINGSIM_UNUSED: Final[dict[str, str]] = {
    "skew_fit.csv": "not used (mixed batches use attention.csv's mixed rows)",
    "moe.csv": "not imported: mixture-of-experts layers are not modelled yet",
}
#: LLMServingSim ``meta.yaml: variant`` -> (profile-schema dtype name).
LLMSERVINGSIM_DTYPES: Final[dict[str, str]] = {
    "bf16": "bfloat16",
    "fp16": "float16",
    "fp32": "float32",
    "fp8": "float8",
}

_TP_DIR = re.compile(r"^tp(\d+)$")

#: What a profile folder must look like (the second half of every "nothing usable" error).
EXPECTED: Final[str] = (
    "an EdgeTwin <hardware>/<model>/ folder (meta.json + op CSVs, or table.npz), "
    "LLMServingSim perf/<GPU>/<org>/<model>/<dtype>/ (meta.yaml + tp1/*.csv) or Vidur "
    "profiling/compute/<gpu>/<org>/<model>/ (mlp.csv)"
)
#: Most profile folders one error message lists (the rest are counted).
MAX_LISTED: Final[int] = 3
FORMAT_NAMES: Final[dict[str, str]] = {
    "edgetwin": "EdgeTwin",
    "llmservingsim": "LLMServingSim",
    "vidur": "Vidur",
}


@dataclass(frozen=True, slots=True)
class ProfileSource:
    """One profile folder found in a directory.

    Attributes:
        format: ``"edgetwin"``, ``"llmservingsim"`` or ``"vidur"``.
        folder: The profile folder (``<hardware>/<model>``, the LLMServingSim ``<dtype>`` folder,
            the Vidur ``<model>`` folder).
        hardware: EdgeTwin hardware id, e.g. ``"l40s"``.
        model: EdgeTwin model id where known (a key of ``MODEL_DIMS``), else the mapped name.
        source_hardware: The name as the source spells it, e.g. ``"L40S"``.
        source_model: The name as the source spells it, e.g. ``"meta-llama/Llama-3.1-8B"``.
        dtype: Profile-schema dtype (``"bfloat16"``) or ``""`` where the format does not say.
        tp_degrees: Tensor-parallel degrees profiled (``()`` where the format does not say).
        files: The files hashed for the import's identity, sorted: those an import of tp1
            reads (public formats); ``table.npz``, else ``meta.json`` and every CSV (EdgeTwin).
        notes: What is there and not used, and disagreements between path and metadata.
    """

    format: ProfileFormat
    folder: Path
    hardware: str
    model: str
    source_hardware: str
    source_model: str
    dtype: str = ""
    tp_degrees: tuple[int, ...] = ()
    files: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def pair(self) -> str:
        """``"<hardware>/<model>"``."""
        return f"{self.hardware}/{self.model}"

    @property
    def known_model(self) -> bool:
        """Whether the model has dimensions in ``MODEL_DIMS`` (needed by public imports)."""
        return self.model in MODEL_DIMS


# ---------------------------------------------------------------------- name mapping
def hardware_id(name: str) -> str:
    """EdgeTwin hardware id of a public GPU folder name: lower case, letters and digits only.

    ``RTX4090 -> rtx4090``, ``L40S -> l40s``, ``A100 -> a100``, ``RTX-PRO-6000 -> rtxpro6000``.
    """
    return re.sub(r"[^a-z0-9]+", "", name.lower())


#: Suffixes of Hugging Face repository names that do not change a model's dimensions.
_SAME_DIMS_SUFFIXES: Final[tuple[str, ...]] = ("-hf", "-instruct", "-chat")


def model_id(name: str) -> str:
    """EdgeTwin model id of a Hugging Face model name (``org/name`` or ``name``).

    Lower case, without the ``Meta-`` prefix and the ``-hf``/``-Instruct``/``-chat`` suffixes
    (same weights' shapes): ``meta-llama/Llama-3.1-8B -> llama-3.1-8b``,
    ``meta-llama/Meta-Llama-3-8B -> llama-3-8b``, ``meta-llama/Llama-2-7b-hf -> llama-2-7b``.
    Whether the id has dimensions is :attr:`ProfileSource.known_model`.
    """
    mid = name.rsplit("/", 1)[-1].strip().lower()
    mid = mid.removeprefix("meta-")
    changed = True
    while changed:
        changed = False
        for suffix in _SAME_DIMS_SUFFIXES:
            if mid.endswith(suffix) and len(mid) > len(suffix):
                mid, changed = mid[: -len(suffix)], True
    return mid


# ---------------------------------------------------------------------- detection
def detect_profiles(root: str | Path) -> list[ProfileSource]:
    """All profile folders at or below ``root`` (depth <= :data:`MAX_DEPTH`), sorted by folder.

    ``root`` may be a profile folder, any ancestor of one, or an LLMServingSim ``tpN`` folder
    (its ``<dtype>`` parent is taken). Symbolic links are followed; hidden folders are skipped;
    the search stops after :data:`MAX_DIRS` folders.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
    """
    top = Path(root).expanduser()
    if not top.is_dir():
        raise FileNotFoundError(f"profile folder not found: {str(root)!r}")
    if _TP_DIR.match(top.name) and (top.parent / "meta.yaml").is_file():
        top = top.parent
    found: list[ProfileSource] = []
    base_depth = len(top.parts)
    # symbolic links are followed (a GPU folder linked to another's); depth bounds any cycle
    for n_dirs, (dirpath, dirnames, filenames) in enumerate(os.walk(top, followlinks=True)):
        if n_dirs >= MAX_DIRS:
            break
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
        src = _source_at(d, set(filenames), dirnames)
        if src is not None:
            found.append(src)
            dirnames[:] = []  # a profile folder's sub-folders are its own (tpN/)
        if len(d.parts) - base_depth >= MAX_DEPTH:
            dirnames[:] = []
    return sorted(found, key=lambda s: str(s.folder))


def _source_at(d: Path, files: set[str], subdirs: list[str]) -> ProfileSource | None:
    """The profile folder ``d`` is, from its file names, or None."""
    tps = sorted(int(m.group(1)) for n in subdirs if (m := _TP_DIR.match(n)))
    if "meta.yaml" in files and tps:
        return _llmservingsim(d, tuple(tps))
    if "table.npz" in files or ("meta.json" in files and files & set(EDGETWIN_OP_CSVS)):
        return _edgetwin(d, files)
    if ("mlp.csv" in files and _is_vidur_csv(d / "mlp.csv")) or (
        "attention.csv" in files and _is_vidur_csv(d / "attention.csv")
    ):
        return _vidur(d, files)
    return None


def _edgetwin(d: Path, files: set[str]) -> ProfileSource:
    if "table.npz" in files:
        read = [d / "table.npz"]
    else:
        read = [d / "meta.json"] + [d / f for f in files if f.endswith(".csv")]
    return ProfileSource(
        format="edgetwin",
        folder=d,
        hardware=d.parent.name,
        model=d.name,
        source_hardware=d.parent.name,
        source_model=d.name,
        files=tuple(sorted(read)),
    )


def _read_meta_yaml(path: Path) -> tuple[dict[str, object], str | None]:
    """``meta.yaml`` as a mapping, and a note when it is not readable (then ``{}``)."""
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return {}, f"meta.yaml not readable ({type(exc).__name__}): names from the path"
    if not isinstance(meta, dict):
        return {}, "meta.yaml is not a mapping: names from the path"
    return meta, None


def _llmservingsim(d: Path, tps: tuple[int, ...]) -> ProfileSource:
    meta, note = _read_meta_yaml(d / "meta.yaml")
    notes = [note] if note else []
    parts = d.parts
    path_model = "/".join(parts[-3:-1]) if len(parts) >= 3 else d.parent.name
    path_gpu = parts[-4] if len(parts) >= 4 else ""
    meta_model = str(meta.get("model") or "")
    meta_gpu = str(meta.get("hardware") or "")
    # upstream layout perf/<GPU>/<org>/<model>/<dtype>: the path names hardware and model
    upstream = bool(path_gpu) and (not meta_model or meta_model.split("/")[-1] == d.parent.name)
    source_model = meta_model or path_model
    source_gpu = path_gpu if upstream else (meta_gpu or path_gpu or "unknown")
    if meta_gpu and hardware_id(meta_gpu) != hardware_id(source_gpu):
        notes.append(
            f"meta.yaml says hardware {meta_gpu!r}; the folder name {source_gpu!r} is used"
        )
    variant = str(meta.get("variant") or d.name)
    tp1 = d / "tp1"
    read = [d / "meta.yaml"] + [tp1 / f for f in LLMSERVINGSIM_NEEDED if (tp1 / f).is_file()]
    notes += [f"tp1/{f} {why}" for f, why in LLMSERVINGSIM_UNUSED.items() if (tp1 / f).is_file()]
    notes += _tp_notes(tps, "")
    return ProfileSource(
        format="llmservingsim",
        folder=d,
        hardware=hardware_id(source_gpu),
        model=model_id(source_model),
        source_hardware=source_gpu,
        source_model=source_model,
        dtype=LLMSERVINGSIM_DTYPES.get(variant.lower(), variant),
        tp_degrees=tps,
        files=tuple(sorted(read)),
        notes=tuple(notes),
    )


def _tp_notes(tps: tuple[int, ...], what: str) -> list[str]:
    """The note naming the tensor-parallel degrees > 1 that are not imported (or none)."""
    other = ", ".join(f"tp{t}" for t in tps if t != 1)
    if not other:
        return []
    return [f"{other}{what} not imported: tensor parallelism is not modelled yet"]


def _is_vidur_csv(path: Path) -> bool:
    """Whether a CSV's header has Vidur's ``time_stats.<op>.<stat>`` columns."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return "time_stats." in fh.readline()
    except OSError:
        return False


def _vidur(d: Path, files: set[str]) -> ProfileSource:
    source_model = f"{d.parent.name}/{d.name}"
    gpu = d.parent.parent.name
    notes = []
    read = [d / f for f in ("attention.csv", "mlp.csv") if f in files]
    if "attention.csv" not in files:
        notes.append("no attention.csv: attention from the roofline")
    tps: tuple[int, ...] = ()
    if read:
        tps = _vidur_tp_degrees(d / "mlp.csv")
        notes += _tp_notes(tps, " rows")
    return ProfileSource(
        format="vidur",
        folder=d,
        hardware=hardware_id(gpu),
        model=model_id(source_model),
        source_hardware=gpu,
        source_model=source_model,
        dtype="float16",
        tp_degrees=tps,
        files=tuple(read),
        notes=tuple(notes),
    )


def _vidur_tp_degrees(path: Path) -> tuple[int, ...]:
    """Values of ``num_tensor_parallel_workers`` in a Vidur CSV (``()`` when unreadable)."""
    import pandas as pd  # only here: detection of the other formats needs no pandas

    try:
        col = pd.read_csv(path, usecols=["num_tensor_parallel_workers"])
    except (OSError, ValueError):
        return ()
    return tuple(sorted(int(v) for v in col["num_tensor_parallel_workers"].unique()))


# ---------------------------------------------------------------------- selection
def describe(sources: list[ProfileSource], root: Path) -> str:
    """What a directory holds, in one line: ``LLMServingSim l40s/llama-3.1-8b (tp1) in X``."""
    if not sources:
        return "no profile folder of a known format"

    def one(s: ProfileSource) -> str:
        tp = f" (tp{','.join(map(str, s.tp_degrees))})" if s.tp_degrees else ""
        try:
            where = str(s.folder.relative_to(root)) or "."
        except ValueError:
            where = str(s.folder)
        return f"{FORMAT_NAMES[s.format]} {s.pair}{tp} in {where!r}"

    listed = "; ".join(one(s) for s in sources[:MAX_LISTED])
    more = len(sources) - MAX_LISTED
    return listed + (f"; and {more} more" if more > 0 else "")


def select_profile(root: str | Path, *, hardware: str, model: str) -> ProfileSource:
    """The one profile folder in ``root`` for ``(hardware, model)`` that can be imported.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        ValueError: One line: nothing for the pair (saying what is there and what was expected),
            several folders for it, a model without dimensions, no ``tp1`` profiles, or
            missing files.
    """
    top = Path(root).expanduser()
    sources = detect_profiles(top)
    match = [s for s in sources if s.hardware == hardware and s.model == model]
    if not match:
        # the nearest first: same model, then same hardware
        ranked = sorted(sources, key=lambda s: (s.model != model, s.hardware != hardware))
        hint = ""
        other_hw = sorted({s.hardware for s in sources if s.model == model})
        if other_hw:
            hint = f" (for model {model!r} it has hardware {', '.join(map(repr, other_hw))})"
        raise ValueError(
            f"no cost-model profiles for hardware={hardware!r}, model={model!r} in profile "
            f"folder {str(root)!r}{hint}: found {describe(ranked, top)}; expected {EXPECTED}"
        )
    if len(match) > 1:
        raise ValueError(
            f"profile folder {str(root)!r} has {len(match)} profile folders for {hardware}/"
            f"{model}: {describe(match, top)}; give one of them as the profile folder"
        )
    src = match[0]
    _check_importable(src, root)
    return src


def _check_importable(src: ProfileSource, root: str | Path) -> None:
    """Raise the one-line reason why ``src`` cannot be imported, if there is one."""
    where = f"{FORMAT_NAMES[src.format]} profiles in {str(src.folder)!r}"
    if src.format == "edgetwin":
        return  # the table / CSV loaders name their own problems
    if not src.known_model:
        raise ValueError(
            f"{where}: model {src.source_model!r} (id {src.model!r}) has no dimensions in "
            f"MODEL_DIMS (layers, hidden size, heads are needed to import profiles); known: "
            f"{', '.join(sorted(MODEL_DIMS))}"
        )
    if src.tp_degrees and 1 not in src.tp_degrees:
        tps = ", ".join(f"tp{t}" for t in src.tp_degrees)
        raise ValueError(
            f"{where} hold only {tps}: tensor parallelism is not modelled yet; tp1 profiles "
            "are needed"
        )
    if src.format == "llmservingsim":
        missing = [f for f in LLMSERVINGSIM_NEEDED if not (src.folder / "tp1" / f).is_file()]
        if missing:
            raise ValueError(
                f"{where}: tp1/ lacks {', '.join(missing)}; needed: "
                f"{', '.join(LLMSERVINGSIM_NEEDED)}"
            )
    elif not (src.folder / "mlp.csv").is_file():
        raise ValueError(
            f"{where}: no mlp.csv (the linear layers); attention.csv alone is not enough"
        )


__all__ = [
    "EXPECTED",
    "MAX_DEPTH",
    "ProfileFormat",
    "ProfileSource",
    "describe",
    "detect_profiles",
    "hardware_id",
    "model_id",
    "select_profile",
]
