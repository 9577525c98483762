"""Request schedulers of an LLM server (decision family ``"serve"``): FCFS, SJF, SRPT.

Observation (a dict built by ``LLMServer`` over its WAITING requests, in current queue order,
``n`` of them, possibly 0):

* ``arrival_s`` float64 [n]: arrival time at the server;
* ``prompt_tokens`` int64 [n]: prompt length;
* ``output_tokens`` int64 [n]: tokens the request will generate. This is the true length, known
  to the simulator only: a real server does not know it in advance, so a policy reading it
  (``serve/srpt``) is an **oracle** (an upper bound for length predictors);
* ``n_generated`` int64 [n]: output tokens generated so far (> 0 only for preempted requests);
* ``preempted`` bool [n]: preempted (by recompute) at least once and back in the queue;
* ``now_s`` float, ``kv_free_blocks`` int, ``n_running`` int: scalars (0-d arrays or numbers).

Action: int64 [n], a permutation of ``range(n)``; ``action[k]`` is the queue position (in the
observation's order) of the request to admit k-th. Admission stays head-of-line blocking: the
server admits in this order and stops at the first request that does not fit.

SJF and SRPT are the classic size-based disciplines: non-preemptive shortest job first
minimises the mean waiting time among non-preemptive orders of known jobs, and shortest
remaining processing time minimises the mean response time over all disciplines (Schrage,
"A proof of the optimality of the shortest remaining processing time discipline", Operations
Research 16(3), 1968; Kleinrock, Queueing Systems Vol. 2, 1976, §3.6-3.7). Here they order
admissions only (a running request is never preempted for a shorter one), so they are the
non-preemptive variants applied at each iteration boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]

__all__ = ["FCFS", "SJF", "SRPT"]


def _size(obs: Mapping[str, Any]) -> int:
    return int(np.asarray(obs["arrival_s"]).shape[0])


def _order(primary: NDArray[Any], obs: Mapping[str, Any]) -> IntArray:
    """Preempted requests first (as FCFS does), then ``primary`` ascending, ties by arrival."""
    arrival = np.asarray(obs["arrival_s"], dtype=np.float64)
    preempted = np.asarray(obs["preempted"], dtype=bool)
    # np.lexsort sorts by the last key first; the queue position breaks the remaining ties
    position = np.arange(arrival.shape[0])
    keys = (position, arrival, np.asarray(primary), ~preempted)
    return np.lexsort(keys).astype(np.int64)


class FCFS:
    """First come, first served: keep the queue order (preempted requests stay at the head)."""

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> IntArray:
        """The identity permutation of the waiting queue."""
        return np.arange(_size(obs), dtype=np.int64)


class SJF:
    """Shortest job (prompt) first: fewest prompt tokens first, ties by arrival.

    Only the prompt length is used, which a real server knows; preempted requests keep their
    place at the head (their KV was already paid for once and they hold output tokens).
    """

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> IntArray:
        """Order by (preempted first, prompt tokens, arrival, queue position)."""
        return _order(np.asarray(obs["prompt_tokens"], dtype=np.int64), obs)


class SRPT:
    """Shortest remaining processing time first (oracle): fewest output tokens still to go.

    Reads the true ``output_tokens`` (see the module docstring); ties by arrival, preempted
    requests first.
    """

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> IntArray:
        """Order by (preempted first, output tokens left, arrival, queue position)."""
        left = np.asarray(obs["output_tokens"], dtype=np.int64) - np.asarray(
            obs["n_generated"], dtype=np.int64
        )
        return _order(left, obs)
