"""Metrics: run results (tidy tables + headline numbers) and fairness helpers."""

from edgetwin.sim.metrics.summary import RunResult, jain_index

__all__ = ["RunResult", "jain_index"]
