"""edgetwin sweep --backend ray: the same tables as the local backend, resume, shutdown, no Ray.

One local Ray session in all (about 5-10 s to start on a 2-core machine): the tests that run
on Ray are one test.
"""

from __future__ import annotations

import sys

import pytest

from edgetwin.scenarios.cli import main
from edgetwin.scenarios.sweep import RAY_MISSING, RayBackend, make_backend

DURATION = "0.03"  # simulated seconds per run: 30 slots of small_cell, ~0.1 s wall
GRID = ["--grid", "topology.ues_per_cell=2,4", "--policies", "MR=prb=maxrate,RR=prb=rr"]
TABLES = ("results.parquet", "summary.csv", "paired.csv")


def _cli(out, *args):
    argv = ["sweep", "small_cell", "--duration", DURATION, "--no-plots", *GRID]
    return main([*argv, "--seed-list", "0,1", "--out", str(out), *args])


def _ray_children() -> list[str]:
    import psutil

    names = []
    for proc in psutil.Process().children(recursive=True):
        try:
            names.append(proc.name())
        except psutil.Error:  # ended while listed
            continue
    return [n for n in names if "ray" in n.lower() or "gcs" in n.lower()]


def test_ray_gives_the_local_tables_resumes_and_shuts_down(tmp_path, capsys, monkeypatch):
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    assert _cli(tmp_path / "local", "--workers", "1") == 0
    runs = tmp_path / "ray" / "runs"

    assert _cli(tmp_path / "ray", "--backend", "ray", "--workers", "2") == 0
    assert "8 runs" in capsys.readouterr().out
    assert not ray.is_initialized()  # the sweep started Ray and shut it down
    assert _ray_children() == []
    for name in TABLES:  # bit for bit
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()
    stored = {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert len(stored) == 8

    # Started again: every run is stored, so nothing runs and no Ray starts.
    def no_ray(self):
        raise AssertionError("a resumed sweep with nothing missing started Ray")

    monkeypatch.setattr(RayBackend, "_init", no_ray)
    assert _cli(tmp_path / "ray", "--backend", "ray", "--workers", "2") == 0
    assert "8 of 8 runs already stored, 0 to run" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")} == stored
    assert not ray.is_initialized()


def test_missing_ray_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "s"
    assert _cli(out, "--backend", "ray") == 2
    assert capsys.readouterr().err == f"edgetwin: error: {RAY_MISSING}\n"
    assert "pip install 'edgetwin[ray]'" in RAY_MISSING
    assert not out.exists()  # refused before anything ran or was written


def test_address_is_for_ray_only_and_read_from_the_environment(monkeypatch):
    with pytest.raises(Exception, match="--backend ray only"):
        make_backend("local", 1, "ray://x:10001")
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    backend = make_backend("ray", 3)
    assert isinstance(backend, RayBackend)
    assert (backend.address, backend.workers) == ("ray://head:10001", 3)
    assert make_backend("ray", None, "auto").address == "auto"  # the flag wins
