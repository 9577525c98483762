"""The shared measuring harness of the benchmark scripts in ``benchmarks/``.

What ``radio_slots.py`` and ``env_steps.py`` measure differs (slots, env steps, agent steps);
how they measure and record it does not, and lives here:

* :class:`CaseResult`: the timings of one case, counted in generic *units* with a ``unit``
  label; the headline rate uses the best (fastest) repeat, the median repeat is kept next to it;
* :func:`repeat`: the timed repeats of a case, within a wall-time budget;
* :func:`guard`: runs a case body and records its error and traceback instead of crashing, so
  that the other cases still run;
* :func:`versions`, :func:`machine` and :func:`json_header`: what every JSON record starts
  with (package versions, the machine, the time);
* :func:`report_failures` and :func:`write_json`: the end of every run.

The scripts import it as ``from harness import ...``: run as ``python benchmarks/<script>.py``,
a script's own directory is the first entry of ``sys.path``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CaseResult:
    """Timings of one benchmark case.

    Attributes:
        case: Human-readable name.
        key: Machine-readable name (JSON key).
        unit: What is counted (``slots``, ``env steps``, ``agent steps``, ``requests``).
        n_units: Units counted per timed repeat.
        walls_s: Wall time of every timed repeat, seconds.
        error: Why the case did not run (empty when it ran).
        info: Extra facts (settings, sanity numbers, untimed costs).
    """

    case: str
    key: str
    unit: str
    n_units: int = 0
    walls_s: list[float] = field(default_factory=list)
    error: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the case ran and produced at least one timing."""
        return not self.error and bool(self.walls_s)

    @property
    def best_wall_s(self) -> float:
        """Shortest timed repeat."""
        return min(self.walls_s)

    @property
    def median_wall_s(self) -> float:
        """Median timed repeat."""
        return statistics.median(self.walls_s)

    @property
    def rate(self) -> float:
        """Units per second of the best (fastest) repeat."""
        return self.n_units / self.best_wall_s

    @property
    def rate_median(self) -> float:
        """Units per second of the median repeat."""
        return self.n_units / self.median_wall_s

    def to_json(self) -> dict[str, Any]:
        """JSON-serializable summary.

        Returns:
            ``case``, ``unit``, ``ok``, then (when the case ran) ``n_units``, ``walls_s``,
            ``best_wall_s``, ``median_wall_s``, ``per_s`` (best repeat) and ``per_s_median``,
            then ``error`` (when it failed) and ``info``.
        """
        out: dict[str, Any] = {"case": self.case, "unit": self.unit, "ok": self.ok}
        if self.ok:
            out |= {
                "n_units": self.n_units,
                "walls_s": self.walls_s,
                "best_wall_s": self.best_wall_s,
                "median_wall_s": self.median_wall_s,
                "per_s": self.rate,
                "per_s_median": self.rate_median,
            }
        if self.error:
            out["error"] = self.error
        out["info"] = self.info
        return out


def repeat(run_once: Callable[[], float], repeats: int, budget_s: float) -> list[float]:
    """Call ``run_once`` up to ``repeats`` times and collect the wall times it reports.

    Stops early, after at least one repeat, once ``budget_s`` of wall time has been spent.

    Args:
        run_once: One repeat; times its own measured part and returns its wall seconds.
        repeats: Most repeats.
        budget_s: Wall-time budget of all repeats together, seconds.

    Returns:
        The wall seconds of every repeat that ran, in order.
    """
    walls: list[float] = []
    t_start = time.perf_counter()
    for _ in range(repeats):
        walls.append(run_once())
        if time.perf_counter() - t_start > budget_s:
            break
    return walls


def guard(res: CaseResult, body: Callable[[], None], *, tb_limit: int = 6) -> CaseResult:
    """Run a case body; on failure record the error and traceback instead of raising.

    Args:
        res: The case's result, which ``body`` fills in.
        body: The case: sets up, times and records into ``res``.
        tb_limit: Stack frames kept in ``res.info["traceback"]``.

    Returns:
        ``res``, with ``error`` set when ``body`` raised (the other cases still run).
    """
    try:
        body()
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"
        res.info["traceback"] = traceback.format_exc(limit=tb_limit)
    return res


def versions(*modules: str) -> dict[str, str]:
    """Versions of Python and of the given packages, for the JSON record.

    Args:
        *modules: Importable package names (``"numpy"``, ``"torch"``, ...).

    Returns:
        ``{"python": ..., module: version}``; a package that does not import is recorded as
        ``unavailable (<exception type>)`` rather than stopping the report.
    """
    out = {"python": platform.python_version()}
    for mod in modules:
        try:
            out[mod] = __import__(mod).__version__
        except Exception as exc:  # a missing optional package must not stop the report
            out[mod] = f"unavailable ({type(exc).__name__})"
    return out


def machine() -> dict[str, Any]:
    """The machine the benchmark ran on: platform, processor and CPU count."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
    }


def json_header(benchmark: str, *, quick: bool, packages: Iterable[str]) -> dict[str, Any]:
    """The keys every benchmark's JSON record starts with.

    Args:
        benchmark: The benchmark's name (its script's stem).
        quick: Whether this was a ``--quick`` run.
        packages: Packages whose versions to record (see :func:`versions`).

    Returns:
        ``benchmark``, ``mode`` (``quick`` or ``full``), ``timestamp``, ``machine`` and
        ``versions``.
    """
    return {
        "benchmark": benchmark,
        "mode": "quick" if quick else "full",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "versions": versions(*packages),
    }


def report_failures(cases: Iterable[CaseResult]) -> int:
    """Print the traceback of every failed case to stderr.

    Args:
        cases: The results of the run.

    Returns:
        The exit status: 1 when a case failed to run, else 0.
    """
    failed = [c for c in cases if c.error]
    for c in failed:
        print(f"\n{c.case} failed:\n{c.info.get('traceback', c.error)}", file=sys.stderr)
    return 1 if failed else 0


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON (numpy scalars as floats) and say so.

    Args:
        path: Output file; missing parent folders are created.
        payload: The numbers to write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print(f"wrote {path}")
