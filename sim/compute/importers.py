"""Import public GPU kernel profiles into the EdgeTwin profile schema (``profiles.py``).

Three public sources (all MIT; copies and citations in ``public_profiles/README.md``):

* **LLMServingSim** (Cho et al., 2024; ``casys-kaist/LLMServingSim``), vLLM 0.19 kernels timed on
  any GPU's ``perf/<GPU>/<org>/<model>/<dtype>/tp1`` folder (the shipped copy: RTX 4090,
  Llama-3.1-8B, bf16) (:func:`import_llmservingsim`);
* **Vidur** (Agrawal et al., MLSys 2024; ``microsoft/vidur``), ``mlp.csv`` per-layer operator
  timings of any ``profiling/compute/<gpu>/<org>/<model>`` folder (:func:`import_vidur_mlp`);

Which folder holds which format, and the mapping of its names to EdgeTwin ids, is
``profile_formats.py``.
* **Splitwise** (Patel et al., ISCA 2024; ``Mutinifni/splitwise-sim``), DGX-A100 whole-iteration
  prompt / token times (:func:`import_splitwise`).

Mapping onto the fixed operator list ``OPS`` (documented per importer):

* GEMMs map one-to-one: QKV -> ``linear_qkv``, O -> ``linear_o``, gate+up -> ``linear_gate_up``,
  down -> ``linear_down``, LM head -> ``lm_head`` (LLMServingSim adds its ``sampler`` time there:
  both run once per sequence).
* The small per-token elementwise kernels that ``OPS`` has no name for (RMSNorm, RoPE, SwiGLU
  activation, residual adds, embedding lookup, final norm) are summed **over the whole model**
  (``n_layers`` x per-layer kernels + once-per-iteration kernels) into op ``"elementwise"`` rows
  keyed by ``n_tokens``: "the part of an iteration that no other operator covers". The table
  cost model adds it once per iteration as ``other``.
* Splitwise has no breakdown: its rows are whole iterations (op ``"iteration"``, with
  ``batch_size`` and ``context_len`` set), not usable as a per-operator table.

Times are seconds; ``time_p90_s`` is the median where a source reports no spread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from edgetwin.sim.compute.cost_model import MODEL_DIMS, TransformerDims
from edgetwin.sim.compute.profiles import PROFILE_COLUMNS, validate_profile

#: Folder of the public profile copies shipped with the package.
PUBLIC_DIR: Final[Path] = Path(__file__).resolve().parent / "public_profiles"

#: The shipped LLMServingSim RTX 4090 / Llama-3.1-8B / bf16 / tp1 folder.
LLMSERVINGSIM_RTX4090_LLAMA31_8B: Final[Path] = (
    PUBLIC_DIR / "llmservingsim" / "RTX4090" / "meta-llama" / "Llama-3.1-8B" / "bf16" / "tp1"
)
#: The shipped Vidur A100 ``mlp.csv`` files, by EdgeTwin model id.
VIDUR_A100_MLP: Final[dict[str, Path]] = {
    "llama-2-7b": PUBLIC_DIR / "vidur" / "a100" / "meta-llama" / "Llama-2-7b-hf" / "mlp.csv",
    "llama-3-8b": PUBLIC_DIR / "vidur" / "a100" / "meta-llama" / "Meta-Llama-3-8B" / "mlp.csv",
}
#: The shipped Splitwise performance database.
SPLITWISE_PERF_MODEL: Final[Path] = PUBLIC_DIR / "splitwise" / "perf_model.csv"


#: Dimensions of the models with public profiles (from the one model table).
PUBLIC_MODEL_DIMS: Final[dict[str, TransformerDims]] = {
    m: MODEL_DIMS[m] for m in ("llama-3.1-8b", "llama-3-8b", "llama-2-7b")
}

#: LLMServingSim ``dense.csv`` layer -> EdgeTwin GEMM operator.
LLMSERVINGSIM_GEMMS: Final[dict[str, str]] = {
    "qkv_proj": "linear_qkv",
    "o_proj": "linear_o",
    "gate_up_proj": "linear_gate_up",
    "down_proj": "linear_down",
}
#: LLMServingSim per-layer elementwise kernels and how many run per decoder layer (vLLM's
#: ``LlamaDecoderLayer``: input and post-attention RMSNorm, RoPE, SiLU-and-mul).
LLMSERVINGSIM_PER_LAYER: Final[dict[str, int]] = {"layernorm": 2, "rotary_emb": 1, "act_fn": 1}
#: LLMServingSim kernels that run once per iteration over all tokens.
LLMSERVINGSIM_PER_ITERATION: Final[tuple[str, ...]] = ("embedding", "final_layernorm")

#: Vidur ``mlp.csv`` operator -> EdgeTwin GEMM operator.
VIDUR_GEMMS: Final[dict[str, str]] = {
    "attn_pre_proj": "linear_qkv",
    "attn_post_proj": "linear_o",
    "mlp_up_proj": "linear_gate_up",
    "mlp_down_proj": "linear_down",
}
#: Vidur per-layer elementwise operators and their count per layer (two RMSNorms are separate
#: columns; ``add`` is the residual add, two per layer).
VIDUR_PER_LAYER: Final[dict[str, int]] = {
    "input_layernorm": 1,
    "post_attention_layernorm": 1,
    "attn_rope": 1,
    "mlp_act": 1,
    "add": 2,
}
#: Vidur operators that run once per iteration.
VIDUR_PER_ITERATION: Final[tuple[str, ...]] = ("emb",)

US: Final[float] = 1e-6
MS: Final[float] = 1e-3
#: z of the 90th percentile of a normal (Vidur's p90 from median and std).
Z90: Final[float] = 1.2815515655446004


def model_dims(model: str) -> TransformerDims:
    """Dimensions of an EdgeTwin model id (the one table ``MODEL_DIMS``).

    Raises:
        ValueError: One line naming the model and the known ids.
    """
    if model not in MODEL_DIMS:
        raise ValueError(
            f"no dimensions for model {model!r} (needed to import its profiles: layers, "
            f"hidden size, heads); known: {', '.join(sorted(MODEL_DIMS))}"
        )
    return MODEL_DIMS[model]


def _tp1_folder(folder: Path) -> Path:
    """The ``tp1`` folder of an LLMServingSim ``<dtype>`` folder, or ``folder`` itself."""
    return folder / "tp1" if (folder / "tp1").is_dir() else folder


def _frame(rows: dict[str, object], n: int) -> pd.DataFrame:
    """Build a schema table of ``n`` rows from column -> scalar or array; unset columns = 0."""
    data: dict[str, object] = {}
    for col, dtype in PROFILE_COLUMNS.items():
        default: object = "" if dtype == "string" else 0
        v = rows.get(col, default)
        data[col] = v if isinstance(v, np.ndarray | list | pd.Series) else [v] * n
    table: pd.DataFrame = validate_profile(pd.DataFrame(data))
    return table


def _gemm_counts(
    dims: TransformerDims, op: str, m: np.ndarray, elt_bytes: int
) -> tuple[np.ndarray, np.ndarray]:
    """GEMM FLOPs ``2 M K N`` and bytes ``e (M K + K N + M N)`` (Williams et al. 2009)."""
    k, n = dims.gemm_kn(op)
    mf = m.astype(np.float64)
    return 2.0 * mf * k * n, elt_bytes * (mf * k + k * n + mf * n)


def import_llmservingsim(
    folder: str | Path = LLMSERVINGSIM_RTX4090_LLAMA31_8B,
    *,
    model: str = "llama-3.1-8b",
    device: str = "rtx4090",
    dtype: str = "bfloat16",
) -> pd.DataFrame:
    """Convert an LLMServingSim ``tp1`` folder into schema rows (``source="llmservingsim"``).

    Mapping (times are ``time_us`` x 1e-6; one measurement per shape, p90 = median; the
    profiler averaged 3 iterations, ``meta.yaml: measurement_iterations``):

    * ``dense.csv`` ``qkv_proj/o_proj/gate_up_proj/down_proj`` -> ``linear_*`` (``n_tokens``);
    * ``per_sequence.csv`` ``lm_head + sampler`` -> ``lm_head`` (``batch_size`` = sequences);
    * ``attention.csv`` rows with ``n_decode == 0`` -> ``attn_prefill`` (``n_tokens`` = chunk,
      ``context_len`` = ``kv_prefill``, the cached tokens before the chunk); rows with
      ``prefill_chunk == 0`` -> ``attn_decode`` (``batch_size`` = ``n_decode``,
      ``context_len`` = ``kv_decode``). Mixed prefill+decode rows have no operator in the schema
      and are not imported (see :func:`llmservingsim_mixed_attention`).
    * ``elementwise`` rows (``n_tokens``): ``L x (2 layernorm + rotary_emb + act_fn) + embedding +
      final_layernorm`` at the same token count (elementwise remainder, see module docstring).

    Args:
        folder: The ``tp1`` folder holding ``attention.csv``, ``dense.csv``, ``per_sequence.csv``
            (or the ``<dtype>`` folder above it, any GPU's).
        model: EdgeTwin model id (a key of ``MODEL_DIMS``).
        device: Device name written to the rows.
        dtype: Data type written to the rows (``meta.yaml: variant``, e.g. bf16 -> bfloat16).

    Returns:
        A validated profile table (all operators together).

    Raises:
        ValueError: A model without dimensions in ``MODEL_DIMS``.
    """
    f = _tp1_folder(Path(folder))
    dims = model_dims(model)
    common = {"model": model, "device": device, "dtype": dtype, "tp": 1, "n_repeats": 3}
    common["source"] = "llmservingsim"
    parts: list[pd.DataFrame] = []

    dense = pd.read_csv(f / "dense.csv")
    for layer, op in LLMSERVINGSIM_GEMMS.items():
        sub = dense[dense["layer"] == layer].sort_values("tokens")
        m = sub["tokens"].to_numpy(dtype=np.int64)
        t = sub["time_us"].to_numpy(dtype=np.float64) * US
        flops, nbytes = _gemm_counts(dims, op, m, 2)
        parts.append(
            _frame(
                {**common, "op": op, "n_tokens": m, "batch_size": 1, "flops": flops}
                | {"bytes_moved": nbytes, "time_median_s": t, "time_p90_s": t},
                len(sub),
            )
        )
    wide = dense.pivot_table(index="tokens", columns="layer", values="time_us", aggfunc="mean")
    weights = {k: c * dims.layers for k, c in LLMSERVINGSIM_PER_LAYER.items()}
    weights |= dict.fromkeys(LLMSERVINGSIM_PER_ITERATION, 1)
    other = (wide[list(weights)] * pd.Series(weights)).sum(axis=1, skipna=False).dropna() * US
    toks = other.index.to_numpy(dtype=np.int64)
    parts.append(
        _frame(
            {**common, "op": "elementwise", "n_tokens": toks, "batch_size": 1}
            | {"time_median_s": other.to_numpy(), "time_p90_s": other.to_numpy()},
            len(toks),
        )
    )

    per_seq = pd.read_csv(f / "per_sequence.csv")
    ps = per_seq.pivot_table(index="sequences", columns="layer", values="time_us", aggfunc="mean")
    lm = ((ps["lm_head"] + ps["sampler"]).dropna() * US).sort_index()
    b = lm.index.to_numpy(dtype=np.int64)
    flops, nbytes = _gemm_counts(dims, "lm_head", b, 2)
    parts.append(
        _frame(
            {**common, "op": "lm_head", "n_tokens": b, "batch_size": b, "flops": flops}
            | {"bytes_moved": nbytes, "time_median_s": lm.to_numpy(), "time_p90_s": lm.to_numpy()},
            len(b),
        )
    )

    att = pd.read_csv(f / "attention.csv")
    q, kv = dims.heads * dims.head_dim, dims.kv_heads * dims.head_dim
    pre = att[(att["n_decode"] == 0) & (att["prefill_chunk"] > 0)]
    n = pre["prefill_chunk"].to_numpy(dtype=np.int64)
    c = pre["kv_prefill"].to_numpy(dtype=np.int64)
    t = pre["time_us"].to_numpy(dtype=np.float64) * US
    pairs = (n * c + n * (n + 1) // 2).astype(np.float64)  # causal query-key pairs
    parts.append(
        _frame(
            {**common, "op": "attn_prefill", "n_tokens": n, "batch_size": 1, "context_len": c}
            | {"flops": 4.0 * q * pairs, "bytes_moved": 2.0 * (2 * n * q + 2 * (c + n) * kv)}
            | {"time_median_s": t, "time_p90_s": t},
            len(n),
        )
    )
    dec = att[(att["prefill_chunk"] == 0) & (att["n_decode"] > 0)]
    bd = dec["n_decode"].to_numpy(dtype=np.int64)
    cd = dec["kv_decode"].to_numpy(dtype=np.int64)
    t = dec["time_us"].to_numpy(dtype=np.float64) * US
    parts.append(
        _frame(
            {**common, "op": "attn_decode", "n_tokens": bd, "batch_size": bd, "context_len": cd}
            | {"flops": 4.0 * bd * q * cd, "bytes_moved": 2.0 * bd * (2 * cd * kv + 2 * q)}
            | {"time_median_s": t, "time_p90_s": t},
            len(bd),
        )
    )
    return pd.concat(parts, ignore_index=True)


def llmservingsim_mixed_attention(
    folder: str | Path = LLMSERVINGSIM_RTX4090_LLAMA31_8B,
) -> pd.DataFrame:
    """The mixed prefill+decode rows of ``attention.csv`` (seconds), for validation only.

    Returns:
        Columns ``prefill_chunk, kv_prefill, n_decode, kv_decode, time_s``.
    """
    att = pd.read_csv(_tp1_folder(Path(folder)) / "attention.csv")
    mixed = att[(att["prefill_chunk"] > 0) & (att["n_decode"] > 0)].copy()
    mixed["time_s"] = mixed.pop("time_us") * US
    return mixed.reset_index(drop=True)


def import_vidur_mlp(
    path: str | Path, *, model: str, device: str = "a100", tp: int = 1
) -> pd.DataFrame:
    """Convert a Vidur ``mlp.csv`` into schema rows (``source="vidur"``) of one TP degree.

    Mapping (Vidur columns ``time_stats.<op>.{median,std,max}`` in ms; rows with
    ``num_tensor_parallel_workers == tp``; ``n_tokens = num_tokens``):

    * ``attn_pre_proj`` -> ``linear_qkv``, ``attn_post_proj`` -> ``linear_o``,
      ``mlp_up_proj`` -> ``linear_gate_up``, ``mlp_down_proj`` -> ``linear_down``;
    * ``elementwise``: ``L x (input_layernorm + post_attention_layernorm + attn_rope + mlp_act +
      2 add) + emb`` (elementwise remainder, see module docstring).

    ``time_p90_s = min(max, median + 1.2816 std)`` (normal approximation); ``n_repeats`` is 0
    (not recorded by Vidur). Vidur profiles in fp16 (``dtype="float16"``).

    Args:
        path: A Vidur ``mlp.csv`` (or the ``<gpu>/<org>/<model>`` folder holding it).
        model: EdgeTwin model id (a key of ``MODEL_DIMS``).
        device: Device name written to the rows.
        tp: Tensor-parallel degree to keep (Vidur profiles 1, 2, 4, 8).

    Raises:
        ValueError: The file has no rows for ``tp``, or the model has no dimensions.
    """
    dims = model_dims(model)
    if Path(path).is_dir():
        path = Path(path) / "mlp.csv"
    raw = pd.read_csv(path)
    df = raw[raw["num_tensor_parallel_workers"] == tp].sort_values("num_tokens")
    if df.empty:
        tps = sorted(raw["num_tensor_parallel_workers"].unique().tolist())
        raise ValueError(f"{path}: no rows with num_tensor_parallel_workers={tp}; has {tps}")
    m = df["num_tokens"].to_numpy(dtype=np.int64)
    common = {"model": model, "device": device, "dtype": "float16", "tp": tp, "n_repeats": 0}
    common["source"] = "vidur"

    def stat(op: str, s: str) -> np.ndarray:
        return df[f"time_stats.{op}.{s}"].to_numpy(dtype=np.float64) * MS

    parts: list[pd.DataFrame] = []
    for vop, op in VIDUR_GEMMS.items():
        med = stat(vop, "median")
        p90 = np.minimum(stat(vop, "max"), med + Z90 * stat(vop, "std"))
        flops, nbytes = _gemm_counts(dims, op, m, 2)
        parts.append(
            _frame(
                {**common, "op": op, "n_tokens": m, "batch_size": 1, "flops": flops}
                | {"bytes_moved": nbytes, "time_median_s": med, "time_p90_s": p90},
                len(m),
            )
        )
    other = np.zeros(len(m))
    for k, c in VIDUR_PER_LAYER.items():
        other += stat(k, "median") * c * dims.layers
    for k in VIDUR_PER_ITERATION:
        other += stat(k, "median")
    parts.append(
        _frame(
            {**common, "op": "elementwise", "n_tokens": m, "batch_size": 1}
            | {"time_median_s": other, "time_p90_s": other},
            len(m),
        )
    )
    return pd.concat(parts, ignore_index=True)


#: Vidur ``attention.csv`` stages summed into one attention time per row, where present (the
#: attention layer as vLLM runs it: reshape in, KV-cache write, the kernel, reshape out).
VIDUR_ATTENTION_STAGES: Final[tuple[str, ...]] = (
    "attn_input_reshape",
    "attn_kv_cache_save",
    "attn_output_reshape",
)


def import_vidur_attention(
    path: str | Path, *, model: str, device: str = "a100", tp: int = 1
) -> pd.DataFrame:
    """Convert a Vidur ``attention.csv`` into ``attn_prefill`` / ``attn_decode`` rows.

    Mapping (Vidur columns in ms; rows with ``num_tensor_parallel_workers == tp``):

    * ``is_prefill`` rows with ``batch_size == 1`` -> ``attn_prefill`` (``n_tokens`` =
      ``prefill_chunk_size``, ``context_len`` = ``kv_cache_size``, the cached tokens before the
      chunk), time ``time_stats.attn_prefill.median``;
    * other rows -> ``attn_decode`` (``batch_size``, ``context_len`` = ``kv_cache_size`` per
      sequence), time ``time_stats.attn_decode.median``;
    * plus, per row, the medians of :data:`VIDUR_ATTENTION_STAGES` where the file has them.

    Vidur's profiler and predictor use these keys (Agrawal et al., MLSys 2024,
    ``vidur/profiling/attention``); ``time_p90_s`` is the median (no spread kept here).

    Args:
        path: A Vidur ``attention.csv`` (or the folder holding it).
        model: EdgeTwin model id (a key of ``MODEL_DIMS``).
        device: Device name written to the rows.
        tp: Tensor-parallel degree to keep.

    Raises:
        ValueError: No rows for ``tp``, or the model has no dimensions.
    """
    model_dims(model)
    if Path(path).is_dir():
        path = Path(path) / "attention.csv"
    raw = pd.read_csv(path)
    df = raw[raw["num_tensor_parallel_workers"] == tp]
    if df.empty:
        tps = sorted(raw["num_tensor_parallel_workers"].unique().tolist())
        raise ValueError(f"{path}: no rows with num_tensor_parallel_workers={tp}; has {tps}")
    extra = np.zeros(len(df))
    for stage in VIDUR_ATTENTION_STAGES:
        col = f"time_stats.{stage}.median"
        if col in df.columns:
            extra += df[col].fillna(0.0).to_numpy(dtype=np.float64)
    is_prefill = df["is_prefill"].astype(str).str.lower().isin(("true", "1")).to_numpy()
    common = {"model": model, "device": device, "dtype": "float16", "tp": tp, "n_repeats": 0}
    common["source"] = "vidur"
    parts: list[pd.DataFrame] = []
    pre = is_prefill & (df["batch_size"].to_numpy() == 1)
    dec = ~is_prefill
    for op, mask, col in (
        ("attn_prefill", pre, "time_stats.attn_prefill.median"),
        ("attn_decode", dec, "time_stats.attn_decode.median"),
    ):
        sub = df[mask]
        t = (sub[col].to_numpy(dtype=np.float64) + extra[mask]) * MS
        ok = np.isfinite(t)
        n = sub["prefill_chunk_size" if op == "attn_prefill" else "batch_size"].to_numpy()[ok]
        b = sub["batch_size"].to_numpy()[ok]
        parts.append(
            _frame(
                {**common, "op": op, "n_tokens": n.astype(np.int64), "batch_size": b}
                | {"context_len": sub["kv_cache_size"].to_numpy(dtype=np.int64)[ok]}
                | {"time_median_s": t[ok], "time_p90_s": t[ok]},
                int(ok.sum()),
            )
        )
    return pd.concat(parts, ignore_index=True)


def import_splitwise(path: str | Path = SPLITWISE_PERF_MODEL) -> pd.DataFrame:
    """Convert Splitwise's ``perf_model.csv`` into whole-iteration rows (``source="splitwise"``).

    Each ``(model, hardware, prompt_size, batch_size, token_size, tensor_parallel)`` group
    (repeated runs) gives two ``iteration`` rows, median and p90 over the runs, ms -> s:

    * prompt phase: ``n_tokens = batch_size x prompt_size``, ``context_len = 0``,
      time = ``prompt_time`` (one prefill iteration of the whole batch);
    * token phase: ``n_tokens = batch_size`` (one new token per sequence),
      ``context_len = prompt_size + token_size // 2`` (mean KV length over the generation),
      time = ``token_time`` (mean time per decode iteration).

    ``dtype`` is written as ``"float16"``, ``device`` as the file's ``hardware``.
    """
    raw = pd.read_csv(path)
    keys = ["model", "hardware", "prompt_size", "batch_size", "token_size", "tensor_parallel"]
    g = raw.groupby(keys, sort=True)
    cols = ["prompt_time", "token_time"]
    med = g[cols].median().add_suffix("_median")
    p90 = g[cols].quantile(0.9).add_suffix("_p90")
    st = pd.concat([med, p90, g.size().rename("n")], axis=1).reset_index()
    b = st["batch_size"].to_numpy(dtype=np.int64)
    p = st["prompt_size"].to_numpy(dtype=np.int64)
    common = {
        "op": "iteration",
        "model": st["model"].to_numpy(dtype=str),
        "device": st["hardware"].to_numpy(dtype=str),
        "dtype": "float16",
        "tp": st["tensor_parallel"].to_numpy(dtype=np.int64),
        "n_repeats": st["n"].to_numpy(dtype=np.int64),
        "source": "splitwise",
        "batch_size": b,
    }
    prompt = _frame(
        common
        | {"n_tokens": b * p, "context_len": np.zeros_like(b)}
        | {"time_median_s": st["prompt_time_median"].to_numpy() * MS}
        | {"time_p90_s": st["prompt_time_p90"].to_numpy() * MS},
        len(st),
    )
    token = _frame(
        common
        | {"n_tokens": b, "context_len": p + st["token_size"].to_numpy(dtype=np.int64) // 2}
        | {"time_median_s": st["token_time_median"].to_numpy() * MS}
        | {"time_p90_s": st["token_time_p90"].to_numpy() * MS},
        len(st),
    )
    return pd.concat([prompt, token], ignore_index=True)


__all__ = [
    "LLMSERVINGSIM_RTX4090_LLAMA31_8B",
    "PUBLIC_DIR",
    "PUBLIC_MODEL_DIMS",
    "SPLITWISE_PERF_MODEL",
    "VIDUR_A100_MLP",
    "import_llmservingsim",
    "import_splitwise",
    "import_vidur_attention",
    "import_vidur_mlp",
    "llmservingsim_mixed_attention",
    "model_dims",
]
