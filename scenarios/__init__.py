"""Scenarios: YAML schema, loading, building, running, and the ``edgetwin`` CLI.

``load_scenario``, ``build``, ``run_scenario`` and ``compare`` are re-exported lazily, so that
``import edgetwin.scenarios`` (e.g. for ``edgetwin list``) does not import the simulator.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build", "compare", "load_scenario", "run_scenario"]

_LAZY = {
    "load_scenario": "edgetwin.scenarios.load",
    "build": "edgetwin.scenarios.builder",
    "run_scenario": "edgetwin.scenarios.run",
    "compare": "edgetwin.scenarios.run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgetwin.scenarios' has no attribute {name!r}")
