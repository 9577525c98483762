"""The LLVM probe: an aborting ray trace costs a child process, never the test process."""

from __future__ import annotations

import pytest

from edgetwin.sim.radio import llvm_probe


@pytest.fixture(autouse=True)
def _fresh_cache():
    llvm_probe._probe.cache_clear()
    yield
    llvm_probe._probe.cache_clear()


def test_an_aborting_probe_is_reported_not_fatal(monkeypatch):
    # What Dr.Jit does with LLVM 15: abort() inside the path solver.
    monkeypatch.setattr(llvm_probe, "_PROBE", "import os; os.abort()")
    monkeypatch.setattr(llvm_probe, "_llvm_version", lambda: (15, 0, 6))
    why = llvm_probe.llvm_trace_problem()
    assert "LLVM 15.0.6 crashed (signal 6)" in why


def test_a_failing_probe_gives_its_status(monkeypatch):
    monkeypatch.setattr(llvm_probe, "_PROBE", "raise SystemExit(3)")
    monkeypatch.setattr(llvm_probe, "_llvm_version", lambda: (16, 0, 0))
    assert "status 3" in llvm_probe.llvm_trace_problem()


def test_a_working_probe_allows_tracing(monkeypatch):
    monkeypatch.setattr(llvm_probe, "_PROBE", "print('ok')")
    monkeypatch.setattr(llvm_probe, "_llvm_version", lambda: (17, 0, 1))
    assert llvm_probe.llvm_trace_problem() == ""


def test_trusted_llvm_is_not_probed(monkeypatch):
    def no_probe(version):
        raise AssertionError("LLVM 19 must not be probed")

    monkeypatch.setattr(llvm_probe, "_probe", no_probe)
    monkeypatch.setattr(llvm_probe, "_llvm_version", lambda: (19, 1, 7))
    assert llvm_probe.llvm_trace_problem() == ""


def test_no_llvm_at_all(monkeypatch):
    monkeypatch.setattr(llvm_probe, "_llvm_version", lambda: None)
    assert "no libLLVM" in llvm_probe.llvm_trace_problem()


def test_the_verdict_is_cached(monkeypatch):
    calls = []
    monkeypatch.setattr(llvm_probe, "_PROBE", "import sys; sys.exit(1)")
    monkeypatch.setattr(llvm_probe, "_llvm_version", lambda: (15, 0, 6))
    real = llvm_probe.subprocess.run

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(llvm_probe.subprocess, "run", counting)
    first = llvm_probe.llvm_trace_problem()
    assert first
    assert llvm_probe.llvm_trace_problem() == first
    assert len(calls) == 1
