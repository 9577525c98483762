"""Cache-cold timing: LLC size from sysfs, operand-set counts, and what the profile records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from edgetwin.kernels import cache
from edgetwin.kernels.cli import main
from edgetwin.kernels.profile import profile

MIB = 2**20


def _fake_sysfs(root: Path, entries: list[tuple[int, str, str]]) -> Path:
    for i, (level, kind, size) in enumerate(entries):
        d = root / f"index{i}"
        d.mkdir(parents=True)
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    return root


def test_llc_is_the_highest_data_or_unified_level(tmp_path) -> None:
    # the layout of this machine's sysfs (AMD EPYC: 32K L1d, 32K L1i, 1024K L2, 32768K L3)
    root = _fake_sysfs(
        tmp_path,
        [
            (1, "Data", "32K"),
            (1, "Instruction", "32K"),
            (2, "Unified", "1024K"),
            (3, "Unified", "32768K"),
        ],
    )
    assert cache._cpu_llc_bytes(root) == 32 * MIB
    only_l2 = _fake_sysfs(tmp_path / "b", [(1, "Data", "48K"), (2, "Unified", "2M")])
    assert cache._cpu_llc_bytes(only_l2) == 2 * MIB
    # a higher-level instruction-only cache is not where weights live
    odd = _fake_sysfs(tmp_path / "c", [(2, "Unified", "1M"), (3, "Instruction", "8M")])
    assert cache._cpu_llc_bytes(odd) == MIB
    assert cache._cpu_llc_bytes(tmp_path / "missing") is None


def test_operand_sets_cover_twice_the_cache() -> None:
    llc = 32 * MIB
    gate_up = 7.08e6  # SmolLM-135M gate/up weight, float32 (576 × 3072 × 4 B)
    n = cache.operand_sets(gate_up, llc, "cold")
    assert n == math.ceil(2 * llc / gate_up) == 10
    assert n * gate_up >= cache.ROTATION_FACTOR * llc
    assert cache.operand_sets(1e3, llc, "cold") == cache.MAX_OPERAND_SETS  # tiny: capped
    assert cache.operand_sets(3 * llc, llc, "cold") == 1  # one set already streams
    assert cache.operand_sets(gate_up, llc, "hot") == 1
    assert cache.operand_sets(gate_up, None, "cold") == 1
    # a GPU-sized cache and a 1 GiB operand: the pool budget (2 GiB) allows two sets
    assert cache.operand_sets(2**30, 4 * 2**30, "cold") == 2
    with pytest.raises(ValueError, match="'cold' or 'hot'"):
        cache.operand_sets(1.0, llc, "warm")  # type: ignore[arg-type]


def test_this_machine_reports_a_cache_size() -> None:
    n, source = cache.last_level_cache_bytes("cpu")
    if n is None:
        pytest.skip("this machine does not report its cache sizes")
    assert n >= 256 * 1024
    assert source in ("sysfs", "sysconf")


def test_profile_records_the_cache_mode(tiny_model, tmp_path) -> None:
    profile(tiny_model, "cpu", tmp_path / "c", ops=["linear_o"], quick=True, cache_bytes=MIB)
    meta = json.loads((tmp_path / "c" / "cpu" / "tiny" / "meta.json").read_text())
    assert meta["cache_mode"] == "cold"
    assert meta["cache_bytes"] == MIB
    assert meta["cache_bytes_source"] == "given"
    assert meta["cache_rotation_factor"] == cache.ROTATION_FACTOR
    profile(tiny_model, "cpu", tmp_path / "h", ops=["linear_o"], quick=True, cache="hot")
    hot = json.loads((tmp_path / "h" / "cpu" / "tiny" / "meta.json").read_text())
    assert hot["cache_mode"] == "hot"
    assert hot["cache_rotation_factor"] is None
    with pytest.raises(ValueError, match="cache_bytes must be a positive integer"):
        profile(tiny_model, "cpu", tmp_path / "x", ops=["linear_o"], quick=True, cache_bytes=0)


@pytest.mark.parametrize(
    ("extra", "words"),
    [(["--cache", "warm"], "--cache"), (["--cache-bytes", "0"], "--cache-bytes")],
)
def test_cli_cache_options_are_checked(tmp_path, capsys, extra, words) -> None:
    args = ["profile", "--model", "smollm-135m", "--out", str(tmp_path / "p"), "--quick", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert words in err
    assert not (tmp_path / "p").exists()


def test_unknown_cache_size_is_assumed_with_a_warning(tiny_model, tmp_path, monkeypatch) -> None:
    import edgetwin.kernels.profile as prof

    monkeypatch.setattr(prof, "last_level_cache_bytes", lambda dev: (None, "unknown"))
    with pytest.warns(UserWarning, match="unknown; assuming 64 MiB"):
        profile(tiny_model, "cpu", tmp_path, ops=["linear_o"], quick=True)
    meta = json.loads((tmp_path / "cpu" / "tiny" / "meta.json").read_text())
    assert meta["cache_bytes"] == cache.ASSUMED_CACHE_BYTES
    assert meta["cache_bytes_source"] == "assumed"


def test_cli_shows_the_assumption_as_one_warning_line(tmp_path, capsys, monkeypatch) -> None:
    import edgetwin.kernels.profile as prof

    monkeypatch.setattr(prof, "last_level_cache_bytes", lambda dev: (None, "unknown"))
    args = ["profile", "--model", "smollm-135m", "--out", str(tmp_path), "--quick"]
    assert main([*args, "--ops", "linear_o"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "edgetwin kernels: warning: the last-level cache size of this machine is unknown; "
        "assuming 64 MiB for cache-cold timing (give --cache-bytes N)"
    ]
