from __future__ import annotations

import json

import pytest

from edgetwin.kernels.cli import main
from edgetwin.kernels.ops import OP_SPECS
from edgetwin.kernels.profile import profile
from edgetwin.sim.compute.profiles import read_profile


def test_quick_profile_writes_valid_csvs(tiny_model, tmp_path):
    written = profile(tiny_model, "cpu", tmp_path, quick=True, max_time_s=0.01)
    folder = tmp_path / "cpu" / "tiny"
    assert set(written) == set(OP_SPECS) | {"meta"}
    for op in OP_SPECS:
        df = read_profile(folder / f"{op}.csv")
        assert (df["op"] == op).all()
        assert (df["time_p90_s"] >= df["time_median_s"]).all()
        assert (df["n_repeats"] >= 1).all()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["dtype"] == "float32"
    assert meta["model"]["hidden_size"] == 64


def test_profile_subset_of_ops(tiny_model, tmp_path):
    written = profile(tiny_model, "cpu", tmp_path, ops=["linear_o"], quick=True)
    assert set(written) == {"linear_o", "meta"}


def test_profile_unknown_op(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="unknown op"):
        profile(tiny_model, "cpu", tmp_path, ops=["nope"])


def test_cli_bad_model_exit_2(tmp_path, capsys):
    assert main(["profile", "--model", "nope", "--device", "cpu", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgetwin kernels: error: unknown model id 'nope'")
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_cli_bad_args_exit_2(capsys):
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err.startswith("edgetwin kernels: error:")


def test_cli_fit_missing_dir(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_profile_then_fit(tmp_path, capsys):
    out = tmp_path / "p"
    args = ["profile", "--model", "smollm-135m", "--out", str(out), "--quick", "--ops", "linear_o"]
    assert main(args) == 0
    assert main(["fit", str(out)]) == 0
    assert (out / "cpu" / "smollm-135m" / "fit.json").is_file()
    assert "linear_o" in capsys.readouterr().out


def test_edgetwin_command_dispatches_kernels(tmp_path, capsys):
    from edgetwin.scenarios.cli import main as edgetwin_main

    assert edgetwin_main(["kernels", "profile", "--model", "x", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("edgetwin kernels: error: unknown model id")


def test_meta_keeps_each_run_of_a_folder(tiny_model, tmp_path):
    # a folder filled over two runs says which operators each measured
    profile(tiny_model, "cpu", tmp_path, ops=["linear_o"], quick=True, cache="hot")
    profile(tiny_model, "cpu", tmp_path, ops=["rmsnorm"], quick=True, cache="hot")
    meta = json.loads((tmp_path / "cpu" / "tiny" / "meta.json").read_text())
    assert [r["ops"] for r in meta["runs"]] == [["linear_o"], ["rmsnorm"]]
    assert meta["ops_in_folder"] == ["linear_o", "rmsnorm"]
    # a garbled meta.json starts a new history instead of failing
    (tmp_path / "cpu" / "tiny" / "meta.json").write_text("{not json")
    profile(tiny_model, "cpu", tmp_path, ops=["rope"], quick=True, cache="hot")
    meta = json.loads((tmp_path / "cpu" / "tiny" / "meta.json").read_text())
    assert [r["ops"] for r in meta["runs"]] == [["rope"]]
