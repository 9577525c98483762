"""WorkloadSource: a component that submits pre-generated requests at their arrival times."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Sequence
from typing import Any

import simpy

from edgetwin.sim.metrics.summary import RunResult
from edgetwin.sim.workload.request import Request
from edgetwin.sim.workload.request_log import RequestLog


class WorkloadSource:
    """One SimPy process that hands each request to ``submit`` at its ``arrival_s``.

    Args:
        env: The SimPy environment.
        requests: Requests sorted by ``arrival_s`` (e.g. from ``make_requests``), or a
            :class:`~edgetwin.sim.workload.request_log.RequestLog`, whose requests are made one
            at a time as they arrive.
        submit: Called with each request at its arrival time (e.g. ``LLMServer.submit``).
        name: Component name.
    """

    def __init__(
        self,
        env: simpy.Environment,
        requests: Sequence[Request],
        submit: Callable[[Request], None],
        name: str = "source",
    ) -> None:
        if not isinstance(requests, RequestLog):  # a log is sorted by construction
            times = [r.arrival_s for r in requests]
            if any(b < a for a, b in itertools.pairwise(times)):
                raise ValueError("requests must be sorted by arrival_s")
            requests = list(requests)
        self.env = env
        self.name = name
        self.requests: Sequence[Request] = requests
        self._submit = submit
        self.n_submitted = 0

    def start(self) -> None:
        """Start the submitting process."""
        self.env.process(self._run())

    def _run(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        for req in self.requests:
            dt = req.arrival_s - env.now
            if dt > 0:
                yield env.timeout(dt)
            self.n_submitted += 1
            self._submit(req)

    def finalize(self, now_s: float) -> None:
        """Nothing to close."""

    def results(self) -> RunResult:
        """Summary: number of requests submitted before the horizon."""
        return RunResult(summary={"n_submitted": self.n_submitted})
