"""Simulation: owns the SimPy environment, the random streams, the horizon and components."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import simpy

from edgetwin.sim.decision import DecisionPoint, DecisionRequest
from edgetwin.sim.metrics.summary import RunResult
from edgetwin.sim.rng import RandomStreams


class Component(Protocol):
    """A simulated component: starts its SimPy process(es) and reports its results."""

    name: str

    def start(self) -> None:
        """Register the component's process(es) with the environment."""

    def finalize(self, now_s: float) -> None:
        """Close time-weighted series at the end of the run."""

    def results(self) -> RunResult:
        """Tidy tables and headline metrics of this component."""
        ...


@functools.cache
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread (the previous limits come back after it).

    Used by :meth:`Simulation.run`. Why: a slot's matrix products are tiny (a 57-cell
    network's interference is a [1140, 57] × [57, 51] product); OpenBLAS's worker threads cost
    more than they give, and on a busy 2-core machine they spin against each other: the
    57-cell ``multi_cell_57`` run went from 36 to 213 slots/s with one thread. Results are the
    same (the products' sums are not split across threads at these sizes). ~5 µs per use.
    """
    limiter = _blas_controller().limit(limits=1, user_api="blas")
    try:
        yield
    finally:
        limiter.restore_original_limits()


class Simulation:
    """One simulation run.

    Args:
        seed: Seed of every random stream of the run.
        horizon_s: Simulated duration in seconds.
    """

    def __init__(self, seed: int, horizon_s: float) -> None:
        if not horizon_s > 0:
            raise ValueError(f"horizon_s must be > 0, got {horizon_s}")
        self.env = simpy.Environment()
        self.streams = RandomStreams(seed)
        self.seed = seed
        self.horizon_s = float(horizon_s)
        self.components: dict[str, Component] = {}
        self.decision_points: dict[str, DecisionPoint[Any, Any]] = {}
        self._started = False
        self._finished = False
        self.wall_s = 0.0
        self._horizon_event: simpy.Event | None = None

    def add(self, component: Component) -> None:
        """Register a component under its unique name."""
        if component.name in self.components:
            raise ValueError(f"duplicate component name {component.name!r}")
        self.components[component.name] = component

    def add_decision_point(self, key: str, dp: DecisionPoint[Any, Any]) -> None:
        """Register a decision point under ``key`` (e.g. ``"prb"``) for external control."""
        if key in self.decision_points:
            raise ValueError(f"duplicate decision point {key!r}")
        self.decision_points[key] = dp

    def _start(self) -> None:
        if not self._started:
            self._started = True
            for c in self.components.values():
                c.start()
            self._horizon_event = self.env.timeout(self.horizon_s)

    def start(self) -> simpy.Event:
        """Start the components (once) and return the horizon event.

        For callers that step the environment themselves (``env.run(until=their_event |
        horizon)``), such as an RL environment counting a server's arrivals.
        """
        self._start()
        assert self._horizon_event is not None
        return self._horizon_event

    def run(self, progress: Callable[[float], None] | None = None, n_chunks: int = 50) -> None:
        """Run to the horizon; ``progress(fraction)`` is called between chunks if given."""
        self._start()
        t0 = time.perf_counter()
        with one_blas_thread():
            if progress is None:
                self.env.run(until=self.horizon_s)
            else:
                for i in range(1, n_chunks + 1):
                    self.env.run(until=self.horizon_s * i / n_chunks)
                    progress(i / n_chunks)
        self.wall_s += time.perf_counter() - t0
        self._finish()

    def run_until_decision(self, key: str) -> DecisionRequest[Any, Any] | None:
        """Run until decision point ``key`` requests an action; ``None`` at the horizon."""
        self._start()
        dp = self.decision_points[key]
        assert self._horizon_event is not None
        t0 = time.perf_counter()
        requested = dp.requested
        # No BLAS limit here: an env step is a few slots of one cell (no matrix products), and
        # the limiter's ~5 µs would be a tenth of the step.
        self.env.run(until=requested | self._horizon_event)
        self.wall_s += time.perf_counter() - t0
        if requested.triggered:
            value = requested.value
            assert isinstance(value, DecisionRequest)
            return value
        self._finish()
        return None

    def finish_outside(self, wall_s: float) -> None:
        """Mark the run finished after its components were advanced outside SimPy.

        A cell batch (``sim/radio/cell_batch.py``) steps many one-cell runs together and writes
        each run's final state back into its components; this closes the run as ``run()``
        would, with ``wall_s`` as its share of the batch's wall time.
        """
        self._start()
        self.wall_s += float(wall_s)
        self._finish()

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            for c in self.components.values():
                c.finalize(self.env.now)

    def results(self) -> RunResult:
        """All components' tables and summaries, plus the run's seed and wall time.

        Table and summary names are kept as each component reports them (components name their
        outputs distinctly: the uplink's ``ul_ue``, the system's ``requests``); a name that two
        components report is prefixed by ``"<component name>."`` in both, never overwritten.
        """
        if not self._finished:
            raise RuntimeError("results() is available once run() has reached the horizon")
        out = RunResult(summary={"seed": self.seed, "horizon_s": self.horizon_s})
        parts = {name: comp.results() for name, comp in self.components.items()}
        seen_tables: dict[str, int] = {}
        seen_keys: dict[str, int] = {}
        for res in parts.values():
            for k in res.tables:
                seen_tables[k] = seen_tables.get(k, 0) + 1
            for k in res.summary:
                seen_keys[k] = seen_keys.get(k, 0) + 1
        for name, res in parts.items():
            for k, v in res.tables.items():
                out.tables[k if seen_tables[k] == 1 else f"{name}.{k}"] = v
            for k, v in res.summary.items():
                out.summary[k if seen_keys[k] == 1 else f"{name}.{k}"] = v
        out.summary["wall_s"] = self.wall_s
        return out

    @property
    def finished(self) -> bool:
        """True once the horizon has been reached and components finalized."""
        return self._finished
