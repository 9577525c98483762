"""Profile folders of any format: detection, selection errors, import cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgetwin.sim.compute.importers import PUBLIC_DIR
from edgetwin.sim.compute.profile_formats import (
    detect_profiles,
    hardware_id,
    model_id,
    select_profile,
)
from edgetwin.sim.compute.profile_loader import CACHE_ENV, cache_dir, load_profile_folder
from edgetwin.sim.compute.table_cost import (
    OpTable,
    TableCostModel,
    available_models,
    load_cost_model,
)
from edgetwin.sim.workload.traces import shared_data_dir

SHARED_LLMSS = shared_data_dir() / "llmservingsim" / "perf"
SHARED_VIDUR = shared_data_dir() / "vidur" / "profiling"
#: The shipped copy of the same LLMServingSim profiles (without skew_fit.csv).
SHIPPED_LLMSS = PUBLIC_DIR / "llmservingsim"
DTYPE_PARTS = ("RTX4090", "meta-llama", "Llama-3.1-8B", "bf16")

#: Batches (prefill tokens, prefill context, decode contexts) to compare models on.
BATCHES = [
    (np.array([512]), np.array([0]), np.array([], dtype=np.int64)),
    (np.array([128, 37]), np.array([1000, 0]), np.arange(1, 90) * 41),
    (np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.arange(1, 200) * 13),
]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own cache folder (never the user's home)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


def _times(m: TableCostModel) -> list[float]:
    return [m.iteration_time_s(*b) for b in BATCHES]


def _llmss_copy(tmp_path: Path, gpu: str = "L40S", src_root: Path = SHIPPED_LLMSS) -> Path:
    """A copy of the shipped LLMServingSim perf tree under ``tmp/perf/<gpu>/...``."""
    src = src_root.joinpath(*DTYPE_PARTS)
    dst = tmp_path / "perf" / gpu / "meta-llama" / "Llama-3.1-8B" / "bf16"
    shutil.copytree(src, dst)
    return tmp_path / "perf"


def _synthetic_llmss(root: Path, model: str = "meta-llama/Llama-3.1-8B", tps=(1,)) -> Path:
    """An LLMServingSim folder layout with header-only CSVs (detection only)."""
    org, name = model.split("/")
    d = root / "perf" / "L40S" / org / name / "bf16"
    d.mkdir(parents=True)
    (d / "meta.yaml").write_text(
        f"hardware: RTX4090\nmodel: {model}\nvariant: bf16\ntp_degrees: {list(tps)}\n"
    )
    for t in tps:
        (d / f"tp{t}").mkdir()
        for f in ("attention.csv", "dense.csv", "per_sequence.csv", "skew_fit.csv", "moe.csv"):
            (d / f"tp{t}" / f).write_text("x\n")
    return d


def _tiny_table_model() -> TableCostModel:
    one = OpTable((np.array([1.0, 64.0]),), np.array([1e-4, 2e-4]))
    two = OpTable((np.array([1.0, 8.0]), np.array([1.0, 512.0])), np.full((2, 2), 1e-5))
    tables = {op: one for op in ("linear_qkv", "linear_o", "linear_gate_up", "linear_down")}
    tables |= {"attn_prefill": two, "attn_decode": two, "lm_head": one}
    return TableCostModel(tables, n_layers=2)


# ---------------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("name", "hw"),
    [("RTX4090", "rtx4090"), ("L40S", "l40s"), ("a100", "a100"), ("RTX-PRO-6000", "rtxpro6000")],
)
def test_hardware_ids(name: str, hw: str) -> None:
    assert hardware_id(name) == hw


@pytest.mark.parametrize(
    ("name", "mid"),
    [
        ("meta-llama/Llama-3.1-8B", "llama-3.1-8b"),
        ("meta-llama/Meta-Llama-3-8B", "llama-3-8b"),
        ("meta-llama/Llama-2-7b-hf", "llama-2-7b"),
        ("meta-llama/Llama-2-7b-chat-hf", "llama-2-7b"),
        ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b"),
        ("Qwen/Qwen3-32B", "qwen3-32b"),
    ],
)
def test_model_ids(name: str, mid: str) -> None:
    assert model_id(name) == mid


# ---------------------------------------------------------------------- detection
def test_edgetwin_tree_from_root_and_leaf(tmp_path: Path) -> None:
    _tiny_table_model().to_npz(tmp_path / "gpu" / "m" / "table.npz")
    csv = tmp_path / "cpu" / "tiny"
    csv.mkdir(parents=True)
    (csv / "meta.json").write_text("{}")
    (csv / "linear_qkv.csv").write_text("x\n")
    (tmp_path / "cpu" / "notes").mkdir()  # a folder that is no profile
    found = detect_profiles(tmp_path)
    assert [(s.format, s.pair) for s in found] == [("edgetwin", "cpu/tiny"), ("edgetwin", "gpu/m")]
    assert [f.name for f in found[1].files] == ["table.npz"]
    leaf = detect_profiles(tmp_path / "gpu" / "m")
    assert [s.pair for s in leaf] == ["gpu/m"]


def test_llmservingsim_from_every_ancestor(tmp_path: Path) -> None:
    d = _synthetic_llmss(tmp_path, tps=(1, 2))
    for start in (tmp_path, d.parents[3], d.parents[2], d.parents[1], d.parent, d, d / "tp1"):
        (src,) = detect_profiles(start)
        assert src.format == "llmservingsim"
        assert src.folder == d
        assert (src.hardware, src.model, src.dtype) == ("l40s", "llama-3.1-8b", "bfloat16")
        assert src.source_hardware == "L40S"
        assert src.tp_degrees == (1, 2)
    notes = " | ".join(src.notes)
    assert "moe.csv not imported" in notes
    assert "tp2 not imported: tensor parallelism is not modelled yet" in notes
    assert "meta.yaml says hardware 'RTX4090'" in notes
    assert [f.relative_to(d).as_posix() for f in src.files] == [
        "meta.yaml",
        "tp1/attention.csv",
        "tp1/dense.csv",
        "tp1/per_sequence.csv",
    ]


def test_vidur_folder_and_a_csv_that_is_not_vidur(tmp_path: Path) -> None:
    d = tmp_path / "profiling" / "compute" / "h100" / "meta-llama" / "Meta-Llama-3-8B"
    d.mkdir(parents=True)
    (d / "mlp.csv").write_text(
        "time_stats.emb.median,num_tokens,num_tensor_parallel_workers\n1,1,1\n1,1,2\n"
    )
    (d / "attention.csv").write_text("time_stats.attn_prefill.median,batch_size\n1,1\n")
    other = tmp_path / "profiling" / "compute" / "h100" / "x" / "y"
    other.mkdir(parents=True)
    (other / "mlp.csv").write_text("a,b\n1,2\n")  # same file name, not Vidur's columns
    (src,) = detect_profiles(tmp_path)
    assert (src.format, src.pair, src.tp_degrees) == ("vidur", "h100/llama-3-8b", (1, 2))
    assert [f.name for f in src.files] == ["attention.csv", "mlp.csv"]
    assert src.notes == ("tp2 rows not imported: tensor parallelism is not modelled yet",)
    (d / "attention.csv").unlink()
    (src,) = detect_profiles(tmp_path)
    assert "no attention.csv: attention from the roofline" in src.notes


def _vidur_attention_csv(path: Path) -> None:
    """Vidur-style attention rows (ms) with known times: prefill and decode grids, tp 1 and 2."""
    rows = [
        "n_q_head,num_tensor_parallel_workers,batch_size,prefill_chunk_size,kv_cache_size,"
        "is_prefill,time_stats.attn_prefill.median,time_stats.attn_decode.median,"
        "time_stats.attn_kv_cache_save.median"
    ]
    for tp in (1, 2):
        rows += [
            f"32,{tp},1,{c},{kv},True,{tp * (0.01 + c * (kv + c) * 1e-7)},,0.001"
            for c in (16, 64, 256, 1024)
            for kv in (0, 512, 2048)
        ]
        rows += [
            f"32,{tp},{b},0,{kv},False,,{tp * (0.005 + b * kv * 1e-6)},0.001"
            for b in (1, 4, 16, 64)
            for kv in (128, 1024, 4096)
        ]
    path.write_text("\n".join(rows) + "\n")


def test_vidur_attention_csv_replaces_the_roofline(tmp_path: Path) -> None:
    d = tmp_path / "compute" / "a100" / "meta-llama" / "Meta-Llama-3-8B"
    d.mkdir(parents=True)
    shutil.copy(PUBLIC_DIR / "vidur" / "a100" / "meta-llama" / "Meta-Llama-3-8B" / "mlp.csv", d)
    _vidur_attention_csv(d / "attention.csv")
    cost, info = load_profile_folder(tmp_path, model="llama-3-8b", hardware="a100")
    assert info["files"] == ["attention.csv", "mlp.csv"]
    assert info["roofline_for"] == ["lm_head"]
    assert {"attn_prefill", "attn_decode"} <= set(info["tables"])
    b = cost.breakdown_s(np.array([64]), np.array([512]), np.full(4, 1024))
    assert "attention" not in b  # not the roofline's
    ms, L = 1e-3, 32
    assert b["attn_prefill"] == pytest.approx(L * (0.01 + 64 * 576 * 1e-7 + 0.001) * ms)
    assert b["attn_decode"] == pytest.approx(L * (0.005 + 4 * 1024 * 1e-6 + 0.001) * ms)
    roof = load_cost_model(None, model="llama-3-8b", hardware="a100")
    assert isinstance(roof, TableCostModel)
    assert "attention" in roof.breakdown_s(np.array([64]), np.array([512]), np.full(4, 1024))
    shutil.copytree(d, tmp_path / "l40s" / "compute" / "l40s" / "meta-llama" / d.name)
    with pytest.raises(ValueError, match=r"roofline needs peak numbers, known for: a100"):
        load_profile_folder(tmp_path / "l40s", model="llama-3-8b", hardware="l40s")


def test_real_llmservingsim_folder() -> None:
    if not SHARED_LLMSS.is_dir():
        pytest.skip("shared LLMServingSim profiles not available")
    (src,) = detect_profiles(SHARED_LLMSS.parent)
    assert (src.format, src.pair, src.tp_degrees) == ("llmservingsim", "rtx4090/llama-3.1-8b", (1,))
    assert src.notes == (
        "tp1/skew_fit.csv not used (mixed batches use attention.csv's mixed rows)",
    )
    cost, info = load_profile_folder(SHARED_LLMSS, model="llama-3.1-8b", hardware="rtx4090")
    public = load_cost_model(None, model="llama-3.1-8b", hardware="rtx4090")
    assert isinstance(public, TableCostModel)
    assert _times(cost) == _times(public)  # the same CSVs as the shipped copy
    assert info["tables"] == sorted(public.tables)
    assert info["files"] == [f.relative_to(src.folder).as_posix() for f in src.files]


def test_real_vidur_folder() -> None:
    if not SHARED_VIDUR.is_dir():
        pytest.skip("shared Vidur profiles not available")
    cost, info = load_profile_folder(SHARED_VIDUR, model="llama-3-8b", hardware="a100")
    public = load_cost_model(None, model="llama-3-8b", hardware="a100")
    assert isinstance(public, TableCostModel)
    assert _times(cost) == _times(public)
    assert info["format"] == "vidur"
    assert info["roofline_for"] == ["attention", "lm_head"]
    with pytest.raises(ValueError, match=r"phi-2.*no dimensions in MODEL_DIMS"):
        load_profile_folder(SHARED_VIDUR, model="phi-2", hardware="a100")


# ---------------------------------------------------------------------- errors
def test_folder_without_the_pair_is_one_line_error_not_a_fallback(tmp_path: Path) -> None:
    perf = _llmss_copy(tmp_path)
    # before: rtx4090/llama-3.1-8b fell back to the shipped RTX 4090 tables
    with pytest.raises(ValueError, match="no cost-model profiles") as err:
        load_cost_model(perf, model="llama-3.1-8b", hardware="rtx4090")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("no cost-model profiles for hardware='rtx4090', model='llama-3.1-8b'")
    assert f"in profile folder {str(perf)!r}" in msg
    assert "it has hardware 'l40s'" in msg
    assert (
        "found LLMServingSim l40s/llama-3.1-8b (tp1) in 'L40S/meta-llama/Llama-3.1-8B/bf16'" in msg
    )
    assert "expected an EdgeTwin <hardware>/<model>/ folder" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="found no profile folder of a known format; expected"):
        load_cost_model(empty, model="llama-3.1-8b", hardware="rtx4090")
    assert available_models(empty) == []
    assert available_models(perf) == [("l40s", "llama-3.1-8b")]


def test_unknown_model_tp_only_and_missing_files(tmp_path: Path) -> None:
    _synthetic_llmss(tmp_path / "a", model="Qwen/Qwen3-32B")
    with pytest.raises(ValueError, match=r"'Qwen/Qwen3-32B' \(id 'qwen3-32b'\) has no dimensions"):
        select_profile(tmp_path / "a", hardware="l40s", model="qwen3-32b")
    _synthetic_llmss(tmp_path / "b", tps=(2, 4))
    with pytest.raises(ValueError, match="only tp2, tp4: tensor parallelism is not modelled yet"):
        select_profile(tmp_path / "b", hardware="l40s", model="llama-3.1-8b")
    d = _synthetic_llmss(tmp_path / "c")
    (d / "tp1" / "per_sequence.csv").unlink()
    with pytest.raises(ValueError, match=r"tp1/ lacks per_sequence\.csv"):
        select_profile(tmp_path / "c", hardware="l40s", model="llama-3.1-8b")
    with pytest.raises(ValueError, match=r"2 profile folders for l40s/llama-3\.1-8b"):
        select_profile(tmp_path, hardware="l40s", model="llama-3.1-8b")


# ---------------------------------------------------------------------- import and cache
def test_renamed_gpu_imports_as_that_gpu(tmp_path: Path) -> None:
    perf = _llmss_copy(tmp_path, gpu="L40S")
    cost, info = load_profile_folder(perf, model="llama-3.1-8b", hardware="l40s")
    assert info["source_hardware"] == "L40S"
    assert "meta.yaml says hardware 'RTX4090'; the folder name 'L40S' is used" in info["notes"]
    assert cost.name.startswith("l40s/llama-3.1-8b (llmservingsim")
    public = load_cost_model(None, model="llama-3.1-8b", hardware="rtx4090")
    assert isinstance(public, TableCostModel)
    assert _times(cost) == _times(public)


def test_cache_hit_gives_identical_times(tmp_path: Path) -> None:
    perf = _llmss_copy(tmp_path)
    first, a = load_profile_folder(perf, model="llama-3.1-8b", hardware="l40s", overhead_s=1e-3)
    second, b = load_profile_folder(perf, model="llama-3.1-8b", hardware="l40s", overhead_s=1e-3)
    assert (a["cache"], b["cache"]) == ("written", "hit")
    assert a["sha256"] == b["sha256"]
    assert cache_dir() == tmp_path / "cache" / "profiles"
    assert [p.name for p in cache_dir().iterdir()] == [f"{a['sha256']}-llama-3.1-8b-v1.npz"]
    assert _times(second) == _times(first)
    assert second.overhead_s == 1e-3
    assert set(second.tables) == set(first.tables)


def test_changed_file_is_a_new_import(tmp_path: Path) -> None:
    perf = _llmss_copy(tmp_path)
    _, a = load_profile_folder(perf, model="llama-3.1-8b", hardware="l40s")
    dense = next(perf.rglob("dense.csv"))
    text = dense.read_text().splitlines()
    head, rest = text[1].rsplit(",", 1)
    text[1] = f"{head},{float(rest) * 10}"
    dense.write_text("\n".join(text) + "\n")
    _, b = load_profile_folder(perf, model="llama-3.1-8b", hardware="l40s")
    assert b["sha256"] != a["sha256"]
    assert b["cache"] == "written"


@pytest.mark.parametrize("garbage", [b"not an npz", b"PK\x03\x04 truncated zip", b""])
def test_garbled_cache_is_rebuilt(tmp_path: Path, garbage: bytes) -> None:
    perf = _llmss_copy(tmp_path)
    first, _ = load_profile_folder(perf, model="llama-3.1-8b", hardware="l40s")
    (cached,) = cache_dir().iterdir()
    cached.write_bytes(garbage)
    again, b = load_profile_folder(perf, model="llama-3.1-8b", hardware="l40s")
    assert b["cache"] == "rebuilt"
    assert _times(again) == _times(first)
    _, c = load_profile_folder(perf, model="llama-3.1-8b", hardware="l40s")
    assert c["cache"] == "hit"  # the rebuilt file is whole again
    assert not [p for p in cache_dir().iterdir() if p.suffix == ".tmp"]


def test_cache_that_cannot_be_written_only_turns_caching_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv(CACHE_ENV, str(blocker))  # <file>/profiles cannot be created
    perf = _llmss_copy(tmp_path)
    cost, info = load_profile_folder(perf, model="llama-3.1-8b", hardware="l40s")
    assert info["cache"].startswith("off: ")
    assert _times(cost)[0] > 0


def test_edgetwin_tree_info(tmp_path: Path) -> None:
    _tiny_table_model().to_npz(tmp_path / "gpu" / "m" / "table.npz")
    cost, info = load_profile_folder(tmp_path, model="m", hardware="gpu")
    assert info["format"] == "edgetwin"
    assert info["cache"] is None
    assert info["files"] == ["table.npz"]
    assert info["tables"] == sorted(_tiny_table_model().tables)
    assert json.loads(json.dumps(info)) == info  # JSON-able for summary.json
    assert _times(cost) == _times(_tiny_table_model())


def test_error_lists_a_few_folders_and_counts_the_rest() -> None:
    if not SHARED_VIDUR.is_dir():
        pytest.skip("shared Vidur profiles not available")
    with pytest.raises(ValueError, match="no cost-model profiles") as err:
        load_cost_model(SHARED_VIDUR, model="llama-3.1-8b", hardware="rtx4090")
    msg = str(err.value)
    assert msg.count("Vidur a100/") == 3
    assert "; and 5 more; expected" in msg
    assert len(msg) < 600


def test_error_lists_the_same_model_first(tmp_path: Path) -> None:
    for name in ("aaa", "bbb", "ccc"):
        _tiny_table_model().to_npz(tmp_path / "gpu" / name / "table.npz")
    _tiny_table_model().to_npz(tmp_path / "zzz" / "llama-3.1-8b" / "table.npz")
    with pytest.raises(ValueError, match="no cost-model profiles") as err:
        load_cost_model(tmp_path, model="llama-3.1-8b", hardware="rtx4090")
    msg = str(err.value)
    assert "(for model 'llama-3.1-8b' it has hardware 'zzz')" in msg
    assert "found EdgeTwin zzz/llama-3.1-8b in 'zzz/llama-3.1-8b'; EdgeTwin gpu/aaa" in msg
    assert "; and 1 more; expected" in msg


def test_a_linked_gpu_folder_is_found(tmp_path: Path) -> None:
    perf = tmp_path / "perf"
    perf.mkdir()
    (perf / "L40S").symlink_to(SHIPPED_LLMSS / "RTX4090", target_is_directory=True)
    (src,) = detect_profiles(perf)
    assert (src.format, src.pair) == ("llmservingsim", "l40s/llama-3.1-8b")
