"""Shared checks of the bad-input corpus: one line, exit 2, no traceback, nothing made or lost.

Every corpus case runs a command in a scratch working directory that holds a few files a
*user* made (a YAML, a CSV, a folder with a note). :func:`expect_one_line_error` snapshots the
tree before and after, so a case fails if EdgeTwin created, removed or changed anything.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import chdir, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

EDGETWIN = str(Path(sys.executable).with_name("edgetwin"))


def snapshot(root: Path) -> dict[str, str]:
    """Relative path → content hash (``"dir"`` for folders) of everything under ``root``."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            try:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError:
                out[rel] = "unreadable"
    return out


@dataclass(frozen=True)
class Outcome:
    """What a command did: status, its two streams."""

    status: int
    stdout: str
    stderr: str


def run_main(argv: Sequence[str], cwd: Path) -> Outcome:
    """``edgetwin.scenarios.cli.main(argv)`` in-process, in ``cwd``; an escaping exception fails."""
    from edgetwin.scenarios.cli import main

    out, err = StringIO(), StringIO()
    with chdir(cwd), redirect_stdout(out), redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as exc:  # argparse's exit is a failure of the one-line contract
            status = exc.code if isinstance(exc.code, int) else 1
    return Outcome(int(status), out.getvalue(), err.getvalue())


def run_subprocess(
    argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> Outcome:
    """The installed ``edgetwin`` script as a subprocess (for cases about the process itself)."""
    full_env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "120", **(env or {})}
    proc = subprocess.run(
        [EDGETWIN, *argv], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def check_one_line(outcome: Outcome, must_mention: Sequence[str] = ()) -> str:
    """Assert exit 2 and exactly one ``edgetwin...: error:`` line naming ``must_mention``."""
    lines = [ln for ln in outcome.stderr.splitlines() if ln.strip()]
    assert outcome.status == 2, (outcome.status, outcome.stderr[-2000:])
    assert "Traceback" not in outcome.stderr, outcome.stderr[-2000:]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("edgetwin"), line
    assert ": error: " in line, line
    assert len(line) <= 600, line
    low = line.lower()
    for word in must_mention:
        assert word.lower() in low, (word, line)
    return line


def expect_one_line_error(
    cwd: Path,
    argv: Sequence[str],
    must_mention: Sequence[str] = (),
    runner: Callable[[Sequence[str], Path], Outcome] = run_main,
) -> str:
    """Run ``argv`` in ``cwd``; assert the one-line contract and that no file changed."""
    before = snapshot(cwd)
    outcome = runner(argv, cwd)
    line = check_one_line(outcome, must_mention)
    after = snapshot(cwd)
    assert after == before, {
        "created": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(k for k in before if k in after and before[k] != after[k]),
    }
    return line


def user_files(root: Path) -> Path:
    """Fill ``root`` with files a user made, which no failing command may touch."""
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("my notes\n", encoding="utf-8")
    (root / "my.yaml").write_text("name: mine\n", encoding="utf-8")
    (root / "trace.csv").write_text(
        "arrival_s,prompt_tokens,output_tokens\n0.0,10,5\n0.5,20,7\n", encoding="utf-8"
    )
    (root / "afile").write_text("not a folder\n", encoding="utf-8")
    return root
