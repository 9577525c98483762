"""One checkpoint format for every trained PRB/power/cache policy (SB3 PPO and MAPPO).

A checkpoint is a ``torch.save`` of a plain dict (tensors, numbers, strings, lists, dicts only,
so it loads with ``torch.load(weights_only=True)``)::

    {
        "format": "edgetwin-policy/1",
        "max_ue": int,                  # padded UE rows (cache: adapters N) of the actors
        "n_prb": int,                   # PRBs of the carrier (cache: 0)
        "actors": {
            "prb" | "power" | "cache": {
                "kind": "per_ue" | "flat",          # edgetwin.agents.rl.networks.build_actor
                "kwargs": dict,                     # its constructor arguments
                "state_dict": dict[str, Tensor],
                "obs_rms": RunningMeanStd.state_dict() | None,
                "clip_obs": float,
                "slice": [start, stop],             # this family's entries of the action
                "zero_prb_count": bool,             # trained on PRB-decision observations
            },
        },
        "meta": dict,                   # command, seed, steps, scenario, date, versions, reward
    }

``obs_rms`` of a ``per_ue`` actor has shape [N_UE_FEATURES] (MAPPO: statistics over real UE
rows) or [max_ue, N_UE_FEATURES] (SB3 ``VecNormalize.obs_rms["x"]``: statistics per UE row and
feature); both normalize the per-UE features [max_ue, N_UE_FEATURES] by broadcasting. A ``flat``
actor's has shape [max_ue · N_UE_FEATURES] (SB3 ``VecNormalize.obs_rms``). A joint SB3 actor
outputs ``2·max_ue`` actions (``per_ue``: ``n_heads=2``, heads-major): PRB ``[0, M]``, power
``[M, 2M]``; its power record has ``zero_prb_count`` because the single agent saw observations
taken at the PRB decision.

A ``cache`` actor (``edgetwin/AdapterCache-v0``, :func:`~edgetwin.agents.rl.ppo.train_ppo` with
``control="cache"``) reads :func:`~edgetwin.agents.rl.features.cache_features` of the cache-policy
observation, [N, N_CACHE_FEATURES], one row per adapter: ``max_ue`` is N, ``n_prb`` is 0, a
``per_ue`` actor's ``n_features`` is ``N_CACHE_FEATURES`` (a ``flat`` actor's ``in_dim`` is
``N · N_CACHE_FEATURES``) and its ``slice`` is ``[0, N]``: a score per adapter.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgetwin.agents.rl.networks import ACTOR_KINDS

#: Format tag of :func:`save_policy_checkpoint`.
CHECKPOINT_FORMAT = "edgetwin-policy/1"
#: Families an actor can control.
FAMILIES: tuple[str, ...] = ("prb", "power", "cache")
_ACTOR_KEYS: tuple[str, ...] = ("kind", "kwargs", "state_dict", "slice")


def _plain(x: Any) -> Any:
    """``x`` as plain data that ``torch.load(weights_only=True)`` accepts.

    Numpy arrays → lists, numpy scalars → numbers, tuples → lists, subclasses of str/int/float
    (torch's ``TorchVersion``) → the base type, anything else → ``str``.
    """
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().clone()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if x is None or type(x) in (bool, int, float, str):
        return x
    for t in (bool, int, float, str):  # subclasses (torch's TorchVersion is a str)
        if isinstance(x, t):
            return t(x)
    return str(x)


def save_policy_checkpoint(
    path: str | Path,
    *,
    max_ue: int,
    n_prb: int,
    actors: Mapping[str, Mapping[str, Any]],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file in the same folder, then ``os.replace``).

    Args:
        path: Destination (``.pt``); parent folders are created.
        max_ue: Padded UE rows of the actors' observations.
        n_prb: PRBs of the carrier.
        actors: Family (``"prb"``/``"power"``/``"cache"``) → actor record (module docstring).
        meta: Provenance (command, seed, steps, scenario, date, versions, reward).

    Returns:
        The path written.

    Raises:
        ValueError: Unknown family or actor kind, a record missing a key, or ``path`` an
            existing file that is not an EdgeTwin checkpoint (a user's file is never replaced).
    """
    records: dict[str, Any] = {}
    for family, rec in actors.items():
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}; allowed: {', '.join(FAMILIES)}")
        missing = [k for k in _ACTOR_KEYS if k not in rec]
        if missing:
            raise ValueError(f"actor record {family!r} lacks {', '.join(missing)}")
        if rec["kind"] not in ACTOR_KINDS:
            raise ValueError(
                f"unknown actor kind {rec['kind']!r}; allowed: {', '.join(ACTOR_KINDS)}"
            )
        records[family] = {
            "kind": str(rec["kind"]),
            "kwargs": _plain(dict(rec["kwargs"])),
            "state_dict": {k: v.detach().cpu().clone() for k, v in rec["state_dict"].items()},
            "obs_rms": _plain(rec.get("obs_rms")),
            "clip_obs": float(rec.get("clip_obs", 10.0)),
            "slice": [int(rec["slice"][0]), int(rec["slice"][1])],
            "zero_prb_count": bool(rec.get("zero_prb_count", False)),
        }
    data = {
        "format": CHECKPOINT_FORMAT,
        "max_ue": int(max_ue),
        "n_prb": int(n_prb),
        "actors": records,
        "meta": _plain(dict(meta or {})),
    }
    dest = Path(path)
    if dest.exists() and not is_policy_checkpoint(dest):
        raise ValueError(
            f"{str(dest)!r} exists and is not an EdgeTwin checkpoint; refusing to overwrite it: "
            "choose another --out"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
        umask = os.umask(0)  # reading the umask needs setting it; restored at once
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a checkpoint is meant to be shared
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def is_policy_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a file EdgeTwin wrote as a checkpoint (any ``edgetwin-policy/`` format).

    Used to decide whether a file may be overwritten: only EdgeTwin's own checkpoints are.
    """
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("edgetwin-policy/")


def load_policy_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint written by :func:`save_policy_checkpoint`.

    Raises:
        FileNotFoundError: No file at ``path`` ("checkpoint '...' not found").
        ValueError: Not a checkpoint of this format (the message names the path and the format).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    expected = f"expected a {CHECKPOINT_FORMAT!r} checkpoint (save_policy_checkpoint)"
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch's own text is long and gives unsafe advice: not quoted
        raise ValueError(
            f"checkpoint {str(path)!r} is not a readable EdgeTwin checkpoint (corrupt, "
            f"truncated or not written by edgetwin train); {expected}"
        ) from e
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"checkpoint {str(path)!r} has format {found!r}; {expected}")
    actors = data.get("actors")
    if not isinstance(actors, dict) or not actors:
        raise ValueError(f"checkpoint {str(path)!r} has no actors; {expected}")
    for key in ("max_ue", "n_prb"):
        if not isinstance(data.get(key), int):
            raise ValueError(f"checkpoint {str(path)!r} lacks an integer {key!r}; {expected}")
    for family, rec in actors.items():
        missing = [k for k in _ACTOR_KEYS if not isinstance(rec, dict) or k not in rec]
        if family not in FAMILIES or missing:
            raise ValueError(
                f"checkpoint {str(path)!r}: bad actor record {family!r}"
                + (f" (lacks {', '.join(missing)})" if missing else "")
                + f"; {expected}"
            )
        problem = _shape_problem(rec, int(data["max_ue"]))
        if problem:
            raise ValueError(f"checkpoint {str(path)!r}: actor {family!r}: {problem}; {expected}")
    data.setdefault("meta", {})
    return data


def _shape_problem(rec: Mapping[str, Any], max_ue: int) -> str | None:
    """What is inconsistent between an actor record's kwargs, ``obs_rms`` and ``slice``."""
    kind, kw = rec["kind"], rec["kwargs"]
    if kind not in ACTOR_KINDS:
        return f"unknown kind {kind!r} (allowed: {', '.join(ACTOR_KINDS)})"
    if not isinstance(kw, Mapping):
        return "kwargs is not a dict"
    try:
        if kind == "per_ue":
            n_features = int(kw["n_features"])
            n_out = max_ue * int(kw.get("n_heads", 1))
            rms_shapes = [[n_features], [max_ue, n_features]]
        else:
            n_out = int(kw["out_dim"])
            rms_shapes = [[int(kw["in_dim"])]]
        start, stop = (int(s) for s in rec["slice"])
    except (KeyError, TypeError, ValueError) as e:
        return f"bad kwargs or slice ({type(e).__name__}: {e})"
    if not 0 <= start < stop <= n_out:
        return f"slice [{start}, {stop}] is outside the actor's {n_out} outputs"
    rms = rec.get("obs_rms")
    if rms is not None:
        if not isinstance(rms, Mapping):
            return "obs_rms is not a dict"
        raw = rms["shape"] if "shape" in rms else np.shape(np.asarray(rms.get("mean")))
        shape = [int(d) for d in raw]
        if shape not in rms_shapes:
            allowed = " or ".join(str(s) for s in rms_shapes)
            return f"obs_rms has shape {shape}, expected {allowed}"
    return None
