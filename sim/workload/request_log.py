"""RequestLog: every request of a run in preallocated columns, its objects made on arrival.

A long replay holds a million requests. As :class:`~edgetwin.sim.workload.request.Request`
objects made up front they cost ~250 bytes each before the run starts, and every timestamp a
server writes into one is a new float object, so memory grows with every request served. The
log instead keeps the workload and each request's outcome in numpy columns allocated once
(~80 bytes a request): it hands out a fresh ``Request`` for row ``k`` when the request arrives
(``log[k]``), and the server writes the outcome back (:meth:`RequestLog.write`) and drops the
object. Memory is then fixed when the workload is loaded, whatever the length of the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, overload

import numpy as np
import numpy.typing as npt
import pandas as pd

from edgetwin.sim.workload.request import Request

__all__ = ["STATUSES", "RequestLog"]

#: Outcome of a request, the ``status`` column (a request that never reached a server by the end
#: of the run stays ``not_arrived``).
STATUSES: Final[tuple[str, ...]] = ("not_arrived", "finished", "unfinished", "rejected")
_CODE: Final[dict[str, int]] = {s: i for i, s in enumerate(STATUSES)}


class RequestLog(Sequence[Request]):
    """The requests of a run (sorted by arrival; ids ``first_id + k`` in that order).

    Args:
        arrival_s: Arrival times in seconds, shape [n_req], finite and >= 0.
        prompt_tokens: Prompt lengths in tokens, shape [n_req], each >= 1.
        output_tokens: Output lengths in tokens, shape [n_req], each >= 1.
        first_id: Id of the first request.
        adapter: LoRA adapter id per request, shape [n_req] (−1: base model); None: none.

    Raises:
        ValueError: Arrays of different shapes, a non-finite or negative arrival, or a length
            below 1 (naming the first offending request).
    """

    def __init__(
        self,
        arrival_s: npt.ArrayLike,
        prompt_tokens: npt.ArrayLike,
        output_tokens: npt.ArrayLike,
        *,
        first_id: int = 0,
        adapter: npt.ArrayLike | None = None,
    ) -> None:
        t = np.asarray(arrival_s, dtype=np.float64)
        p = np.asarray(prompt_tokens, dtype=np.int64)
        o = np.asarray(output_tokens, dtype=np.int64)
        if not (t.ndim == p.ndim == o.ndim == 1 and t.shape == p.shape == o.shape):
            raise ValueError(
                f"arrays must be 1-D of equal length, got {t.shape}, {p.shape}, {o.shape}"
            )
        if t.size and (not np.all(np.isfinite(t)) or t.min() < 0):
            raise ValueError("arrival_s must be finite and >= 0")
        for name, x in (("prompt_tokens", p), ("output_tokens", o)):
            bad = np.flatnonzero(x < 1)
            if bad.size:
                raise ValueError(f"request {first_id + int(bad[0])}: {name} must be >= 1")
        order = np.argsort(t, kind="stable")  # ids follow arrival order, as make_requests
        n = t.size
        self.first_id = int(first_id)
        self.arrival_s = t[order]
        self.prompt_tokens = p[order]
        self.output_tokens = o[order]
        #: LoRA adapter per request (−1: base model), or None when no request has one.
        self.adapter: npt.NDArray[np.int64] | None = None
        if adapter is not None:
            a = np.asarray(adapter, dtype=np.int64)
            if a.shape != t.shape:
                raise ValueError(f"adapter must have shape {t.shape}, got {a.shape}")
            self.adapter = a[order]
        self.replica = np.full(n, -1, dtype=np.int64)
        self.status = np.zeros(n, dtype=np.int8)
        self.first_scheduled_s = np.full(n, np.nan)
        self.first_token_s = np.full(n, np.nan)
        self.last_token_s = np.full(n, np.nan)
        self.completion_s = np.full(n, np.nan)
        self.preemptions = np.zeros(n, dtype=np.int64)
        self.generated_tokens = np.zeros(n, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @overload
    def __getitem__(self, k: int) -> Request: ...

    @overload
    def __getitem__(self, k: slice) -> list[Request]: ...

    def __getitem__(self, k: int | slice) -> Request | list[Request]:
        """A new ``Request`` for row ``k`` (a list of them for a slice)."""
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        return Request(
            self.first_id + k,
            float(self.arrival_s[k]),
            int(self.prompt_tokens[k]),
            int(self.output_tokens[k]),
            adapter=-1 if self.adapter is None else int(self.adapter[k]),
        )

    def __iter__(self) -> Iterator[Request]:
        for k in range(len(self)):
            yield self[k]

    def write(self, req: Request, replica: int, status: str) -> None:
        """Store ``req``'s outcome (timestamps, counts) in its row, served by ``replica``.

        Args:
            req: A request of this log (``log[k]``).
            replica: Index of the server that holds it.
            status: One of :data:`STATUSES`.
        """
        k = req.id - self.first_id
        self.replica[k] = replica
        self.status[k] = _CODE[status]
        self.first_scheduled_s[k] = req.first_scheduled_s
        self.first_token_s[k] = req.first_token_s
        self.last_token_s[k] = req.last_token_s
        self.completion_s[k] = req.completion_s
        self.preemptions[k] = req.preemptions
        self.generated_tokens[k] = req.n_generated

    def has_status(self, *statuses: str) -> npt.NDArray[np.bool_]:
        """Mask of the rows whose status is one of ``statuses`` (of :data:`STATUSES`)."""
        return np.isin(self.status, [_CODE[s] for s in statuses])

    def table(self, rows: npt.NDArray[np.bool_] | None = None) -> pd.DataFrame:
        """One row per request in id order (or the ``rows`` mask), with the derived latencies.

        ``ttft_s``, ``tpot_s``, ``e2e_s`` and ``queueing_s`` are computed exactly as the
        properties of :class:`~edgetwin.sim.workload.request.Request` (TPOT: mean gap after
        the first token, ``nan`` below two tokens).
        """
        sel = slice(None) if rows is None else rows
        t = self.arrival_s[sel]
        first = self.first_token_s[sel]
        gen = self.generated_tokens[sel]
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(gen >= 2, (self.last_token_s[sel] - first) / (gen - 1), np.nan)
        n = t.size
        return pd.DataFrame(
            {
                "id": self.first_id + np.arange(len(self), dtype=np.int64)[sel],
                "replica": self.replica[sel],
                "status": np.asarray(STATUSES, dtype=object)[self.status[sel]]
                if n
                else np.array([], dtype=object),
                "arrival_s": t,
                "first_scheduled_s": self.first_scheduled_s[sel],
                "first_token_s": first,
                "completion_s": self.completion_s[sel],
                "ttft_s": first - t,
                "tpot_s": tpot,
                "e2e_s": self.completion_s[sel] - t,
                "queueing_s": self.first_scheduled_s[sel] - t,
                "preemptions": self.preemptions[sel],
                "prompt_tokens": self.prompt_tokens[sel],
                "output_tokens": self.output_tokens[sel],
                "generated_tokens": gen,
                **({"adapter": self.adapter[sel]} if self.adapter is not None else {}),
            }
        )
