"""Router: dispatches each arriving request to one of several server replicas.

Policies (all O(n_replica) per request, decided at arrival):

* ``"round_robin"``: replicas in turn;
* ``"random"``: uniform choice with the given generator;
* ``"least_outstanding"``: fewest waiting + running requests (join-the-shortest-queue;
  Winston 1977 shows it minimizes mean delay for exponential service); ties go to the lowest
  index;
* ``"least_kv"``: lowest KV-cache usage, then fewest outstanding requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np

from edgetwin.sim.compute.server import LLMServer
from edgetwin.sim.metrics.summary import RunResult
from edgetwin.sim.workload.request import Request

RoutingPolicy = Literal["round_robin", "random", "least_outstanding", "least_kv"]


class Router:
    """Dispatch requests over ``servers`` (each also added to the ``Simulation`` on its own).

    Args:
        servers: The replicas, shape [n_replica].
        policy: Routing policy (see the module docstring).
        rng: Generator for ``"random"`` (e.g. ``sim.streams.get("routing")``).
        name: Component name.
    """

    def __init__(
        self,
        servers: Sequence[LLMServer],
        policy: RoutingPolicy = "round_robin",
        rng: np.random.Generator | None = None,
        name: str = "router",
    ) -> None:
        if not servers:
            raise ValueError("Router needs at least one server")
        if policy not in get_args(RoutingPolicy):
            raise ValueError(f"policy must be one of {get_args(RoutingPolicy)}, got {policy!r}")
        if policy == "random" and rng is None:
            raise ValueError("policy 'random' needs an rng")
        self.servers = list(servers)
        self.policy = policy
        self.rng = rng
        self.name = name
        self._next = 0
        self.n_routed = np.zeros(len(self.servers), dtype=np.int64)

    def choose(self) -> int:
        """Index of the replica the next request goes to."""
        n = len(self.servers)
        if self.policy == "round_robin":
            k = self._next
            self._next = (k + 1) % n
            return k
        if self.policy == "random":
            assert self.rng is not None
            return int(self.rng.integers(n))
        load = [len(s.waiting) + len(s.running) for s in self.servers]
        if self.policy == "least_outstanding":
            return min(range(n), key=load.__getitem__)
        return min(range(n), key=lambda i: (self.servers[i].kv.usage, load[i]))

    def submit(self, req: Request) -> bool:
        """Route ``req`` to a replica now; returns whether the replica accepted it."""
        k = self.choose()
        self.n_routed[k] += 1
        return self.servers[k].submit(req)

    def start(self) -> None:
        """No process of its own: routing happens inside ``submit``."""

    def finalize(self, now_s: float) -> None:
        """Nothing to close."""

    def results(self) -> RunResult:
        """Summary: requests routed to each replica (``n_routed_<i>``)."""
        return RunResult(summary={f"n_routed_{i}": int(c) for i, c in enumerate(self.n_routed)})
