"""Result and checkpoint paths: one-line errors before running, and nothing a user made lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from corpus_harness import expect_one_line_error, run_main

from edgetwin.scenarios import run as run_mod
from edgetwin.scenarios.run import MARKER, atomic_dir, check_output_dir

SMALL = ["run", "small_cell", "--set", "duration_s=0.02", "--no-plots", "--no-progress"]


def _garbage(cwd: Path) -> None:
    (cwd / "garbage.pt").write_bytes(b"not a checkpoint\n")


CASES = [
    pytest.param(
        [*SMALL, "--out", ""],
        ["empty"],
        None,
        id="out-empty",
    ),
    pytest.param([*SMALL, "--out", "afile/x"], ["afile", "a file"], None, id="out-below-file"),
    pytest.param([*SMALL, "--out", "mine"], ["mine", "refusing"], None, id="out-foreign-dir"),
    pytest.param([*SMALL, "--out", "my.yaml"], ["my.yaml", "not a directory"], None, id="out-file"),
    pytest.param(
        ["train", "ppo", "--steps", "64", "--out", "my.yaml"],
        ["my.yaml", "not an edgetwin checkpoint"],
        None,
        id="train-out-yaml",
    ),
    pytest.param(
        ["train", "ppo", "--steps", "64", "--out", ""], ["empty"], None, id="train-out-empty"
    ),
    pytest.param(
        ["train", "ppo", "--steps", "1", "--out", "m.pt"], ["minimum 2"], None, id="train-steps-1"
    ),
    pytest.param(
        ["train", "prb-power", "--steps", "1", "--out", "m.pt"],
        ["minimum 2"],
        None,
        id="mappo-steps-1",
    ),
    pytest.param(
        [*SMALL, "--policy", "prb=ppo:garbage.pt", "--out", "r"],
        ["garbage.pt", "not a readable edgetwin checkpoint"],
        _garbage,
        id="corrupt-checkpoint",
    ),
]


@pytest.mark.parametrize(("argv", "mention", "setup"), CASES)
def test_bad_output_paths_are_one_line(workdir, argv, mention, setup):
    if setup:
        setup(workdir)
    line = expect_one_line_error(workdir, argv, mention)
    assert "weights_only" not in line


def test_corrupt_checkpoint_line_does_not_quote_torch(workdir):
    _garbage(workdir)
    line = expect_one_line_error(
        workdir, [*SMALL, "--policy", "prb=ppo:garbage.pt", "--out", "r"], ["garbage.pt"]
    )
    assert "weights_only" not in line
    assert "unpickl" not in line.lower()


def test_unwritable_parent_is_refused_before_running(workdir, monkeypatch):
    """A parent that cannot be written fails at once (os.access mocked: tests may run as root)."""
    locked = workdir / "mine"
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == locked else real(p, m))
    monkeypatch.setattr(run_mod, "build", lambda *a, **k: pytest.fail("simulated before check"))
    with pytest.raises(ValueError, match="not writable"):
        check_output_dir(locked / "new" / "x")
    expect_one_line_error(workdir, [*SMALL, "--out", "mine/x"], ["not writable"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 0o500")
def test_unwritable_parent_for_real(workdir):
    (workdir / "ro").mkdir(mode=0o500)
    try:
        expect_one_line_error(workdir, [*SMALL, "--out", "ro/x"], ["not writable"])
    finally:
        (workdir / "ro").chmod(0o700)


def test_user_file_in_replaced_result_survives(workdir):
    run_main([*SMALL, "--out", "r"], workdir)
    (workdir / "r" / "my_notes.txt").write_text("mine\n")
    (workdir / "r" / "analysis").mkdir()
    (workdir / "r" / "analysis" / "fig.py").write_text("print(1)\n")
    notes: list[str] = []
    with atomic_dir(workdir / "r", notes.append) as tmp:
        (tmp / "summary.json").write_text("{}\n")
    assert (workdir / "r" / "my_notes.txt").read_text() == "mine\n"
    assert (workdir / "r" / "analysis" / "fig.py").is_file()
    assert notes
    assert "my_notes.txt" in notes[0]
    # A second replacement keeps them again (they are not in the new manifest).
    with atomic_dir(workdir / "r") as tmp:
        (tmp / "summary.json").write_text("{}\n")
    assert (workdir / "r" / "my_notes.txt").is_file()
    assert not list(workdir.glob(".r.*"))


def test_clashing_user_file_is_kept_with_previous_result(tmp_path):
    target = tmp_path / "r"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    (target / "b.txt").write_text("user's")  # not in the manifest, and the next run writes it
    notes: list[str] = []
    with atomic_dir(target, notes.append) as tmp:
        (tmp / "b.txt").write_text("edgetwin's")
    assert (target / "b.txt").read_text() == "edgetwin's"
    assert (tmp_path / "r.prev" / "b.txt").read_text() == "user's"
    assert "r.prev" in notes[0]


def test_result_dir_has_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "r") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(old)
    assert (tmp_path / "r").stat().st_mode & 0o777 == 0o755
    assert MARKER in {p.name for p in (tmp_path / "r").iterdir()}


def test_sigterm_removes_the_temporary_directory(tmp_path):
    code = (
        "import sys, time; from edgetwin.scenarios.run import atomic_dir\n"
        "with atomic_dir(sys.argv[1]) as d:\n"
        "    (d / 'x').write_text('1'); print('ready', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "r")], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    assert list(tmp_path.glob(".r.*.tmp"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_compare_leaves_no_tmp_and_no_workers(tmp_path):
    tag = f"edgetwin-test-{os.getpid()}-{time.time_ns()}"
    argv = ["compare", "small_cell", "--set", "duration_s=0.3", "--policies", "prb=pf,prb=rr"]
    argv += ["--seeds", "4", "--workers", "2", "--no-plots", "--no-progress", "--out", "c"]
    exe = Path(sys.executable).with_name("edgetwin")
    proc = subprocess.Popen([exe, *argv], cwd=tmp_path, env={**os.environ, "ET_TAG": tag})
    deadline = time.time() + 120
    while not list(tmp_path.glob("c.partial/*/row.json")) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert not list(tmp_path.glob(".c.*"))  # no temporary result directory
    assert not (tmp_path / "c").exists()
    assert list(tmp_path.glob("c.partial/*/row.json"))  # finished runs kept for resuming
    for _ in range(50):
        if not _tagged(tag):
            break
        time.sleep(0.1)
    assert not _tagged(tag)


def _tagged(tag: str) -> list[int]:
    """Pids of live processes whose environment holds ``tag`` (the killed command's workers)."""
    pids = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if tag.encode() in env.read_bytes():
                pids.append(int(env.parent.name))
        except OSError:
            continue
    return pids


def _result(target: Path, text: str, notes: list[str] | None = None) -> None:
    with atomic_dir(target, notes.append if notes is not None else None) as tmp:
        (tmp / "summary.json").write_text(text)


def test_a_replaced_result_is_kept_one_generation_as_prev(tmp_path):
    target = tmp_path / "r"
    notes: list[str] = []
    _result(target, "first", notes)
    assert notes == []  # nothing was replaced
    _result(target, "second", notes)
    assert (tmp_path / "r.prev" / "summary.json").read_text() == "first"
    assert notes == [f"the previous result is now {tmp_path / 'r.prev'}"]
    _result(target, "third", notes)  # the older backup was all EdgeTwin's: it gives way
    assert (target / "summary.json").read_text() == "third"
    assert (tmp_path / "r.prev" / "summary.json").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "r.prev"]


def test_a_prev_holding_user_files_is_never_replaced(tmp_path):
    target = tmp_path / "r"
    _result(target, "first")
    _result(target, "second")
    (tmp_path / "r.prev" / "notes.txt").write_text("mine")
    notes: list[str] = []
    _result(target, "third", notes)
    assert (tmp_path / "r.prev" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "r.prev" / "summary.json").read_text() == "first"
    assert (tmp_path / "r.prev.1" / "summary.json").read_text() == "second"
    assert "r.prev.1" in notes[0]
