"""One LLM request and its lifecycle timestamps (filled in by the server that serves it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

_NAN = float("nan")


@dataclass(slots=True)
class Request:
    """An LLM request: its sizes, its timestamps, and the server's progress on it.

    Timestamps are simulated seconds and stay ``nan`` until the event happens. Only what the
    metrics need is kept per token: the number of generated tokens and the first/last token
    times (TPOT is their mean gap), so a request costs O(1) memory whatever its length.

    Attributes:
        id: Request id (unique within a run).
        arrival_s: Time the request reaches the server.
        prompt_tokens: Prompt (context) length in tokens, >= 1.
        output_tokens: Tokens to generate, >= 1 (the first comes out of prefill).
        first_scheduled_s: Start of the first iteration that computed any of its tokens.
        first_token_s: End of the iteration that finished its prefill (first output token).
        last_token_s: Time of its latest output token.
        completion_s: Time of its last output token.
        n_generated: Output tokens generated so far.
        n_computed: Tokens whose KV is in the cache (server state; reset by a preemption).
        preemptions: Times it was preempted (recompute: its KV blocks were freed).
        adapter: LoRA adapter the request runs with (−1: the base model).
    """

    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    first_scheduled_s: float = _NAN
    first_token_s: float = _NAN
    last_token_s: float = _NAN
    completion_s: float = _NAN
    n_generated: int = 0
    n_computed: int = field(default=0, repr=False)
    preemptions: int = 0
    adapter: int = -1

    def __post_init__(self) -> None:
        if self.prompt_tokens < 1 or self.output_tokens < 1:
            raise ValueError(
                f"request {self.id}: prompt_tokens and output_tokens must be >= 1, got "
                f"{self.prompt_tokens} and {self.output_tokens}"
            )

    @property
    def finished(self) -> bool:
        """True once every output token has been generated."""
        return self.n_generated >= self.output_tokens

    @property
    def ttft_s(self) -> float:
        """Time to first token: ``first_token_s - arrival_s`` (``nan`` before it)."""
        return self.first_token_s - self.arrival_s

    @property
    def tpot_s(self) -> float:
        """Time per output token after the first: mean inter-token gap (``nan`` if < 2 tokens)."""
        if self.n_generated < 2:
            return _NAN
        return (self.last_token_s - self.first_token_s) / (self.n_generated - 1)

    @property
    def e2e_s(self) -> float:
        """End-to-end latency ``completion_s - arrival_s`` (``nan`` while unfinished)."""
        return self.completion_s - self.arrival_s

    @property
    def queueing_s(self) -> float:
        """Wait before the first scheduled iteration: ``first_scheduled_s - arrival_s``."""
        return self.first_scheduled_s - self.arrival_s


def make_requests(
    arrival_s: npt.ArrayLike,
    prompt_tokens: npt.ArrayLike,
    output_tokens: npt.ArrayLike,
    *,
    first_id: int = 0,
) -> list[Request]:
    """Build requests from parallel arrays (sorted by arrival time, ids in that order).

    Args:
        arrival_s: Arrival times in seconds, shape [n_req].
        prompt_tokens: Prompt lengths in tokens, shape [n_req], each >= 1.
        output_tokens: Output lengths in tokens, shape [n_req], each >= 1.
        first_id: Id of the first request.

    Returns:
        ``n_req`` requests ordered by arrival time (a stable sort).
    """
    t = np.asarray(arrival_s, dtype=np.float64)
    p = np.asarray(prompt_tokens, dtype=np.int64)
    o = np.asarray(output_tokens, dtype=np.int64)
    if not (t.ndim == p.ndim == o.ndim == 1 and t.shape == p.shape == o.shape):
        raise ValueError(f"arrays must be 1-D of equal length, got {t.shape}, {p.shape}, {o.shape}")
    if t.size and (not np.all(np.isfinite(t)) or t.min() < 0):
        raise ValueError("arrival_s must be finite and >= 0")
    order = np.argsort(t, kind="stable")
    return [
        Request(first_id + i, float(t[j]), int(p[j]), int(o[j]))
        for i, j in enumerate(order.tolist())
    ]
