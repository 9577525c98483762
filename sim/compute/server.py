"""LLMServer: one SimPy process per replica running iteration-level continuous batching.

The scheduler follows vLLM (Kwon et al., SOSP 2023; Yu et al., "Orca", OSDI 2022):

* Each request tracks ``n_computed`` (tokens whose KV is cached) and its sequence length
  ``prompt_tokens + n_generated``; an iteration computes the missing tokens (the whole prompt,
  a prefill chunk, or the one token of a decode) and, when a sequence is then fully computed,
  samples its next output token. Prefill completion therefore emits the first token.
* Per iteration, as vLLM v1's scheduler (``vllm/v1/core/sched/scheduler.py``, vLLM 0.19):
  first the running requests in admission order, each getting what it misses (one token for a
  decode, a chunk of the remaining ``max_num_batched_tokens`` budget for a partial prefill);
  when the KV pool cannot hold a request's new tokens, the most recently admitted running
  request is preempted by recompute (its blocks are freed; it returns to the head of the
  waiting queue and later re-prefills prompt + generated tokens), repeatedly, and a request
  that would have to preempt itself ends the pass. Then, only if nothing was preempted in this
  pass, waiting requests are admitted FCFS: with ``chunked_prefill`` (Sarathi-Serve, Agrawal
  et al., OSDI 2024) a chunk of the remaining budget, without it only if the whole prompt
  fits the budget; with ``reserve_full_sequence`` (vLLM ``scheduler_reserve_full_isl``) only if
  the blocks of the whole current sequence are free. With ``prefix_caching`` (vLLM automatic
  prefix caching) a preempted request's full blocks stay cached in an LRU free queue
  (:class:`PrefixCachingBlockManager`) and its re-admission skips those not yet evicted.
  Admission stops at the first request that does not fit (seqs, tokens or KV blocks): no
  overtaking.
* The iteration lasts ``cost_model.iteration_time_s(...) + overhead_s``.

The admission order is FCFS by default. A ``scheduler`` policy (decision family ``"serve"``,
e.g. ``serve/sjf`` of ``edgetwin.agents``) reorders the waiting queue instead: before the
admissions of an iteration in which the queue changed since its last ordering (arrivals or
preemptions) and holds at least two requests, the server builds the observation of
:meth:`LLMServer.scheduler_obs`, asks the policy through an inline
:class:`~edgetwin.sim.decision.DecisionPoint` and admits in the returned order (still stopping
at the first request that does not fit). Without a scheduler none of this runs.

Per-request Python work is O(1) per iteration; KV accounting is by block counts.

**LoRA adapters** (``config.lora``, :mod:`~edgetwin.sim.compute.adapter_pool`): a request
runs on its ``adapter``, which must be resident in GPU memory; a miss waits for a serialized
load. With a ``route_policy`` and ``adapter_contexts`` (:mod:`~edgetwin.sim.compute.
adapter_route`) the server asks its ``route`` decision point which adapter serves each accepted
request as it arrives, records its utility when it completes and feeds it back to the router.

**Speculative verification** (issue 11; Leviathan, Kalman, Matias, ICML 2023; served as vLLM
v1 schedules spec-decode tokens): a request submitted with :meth:`LLMServer.submit_speculative`
is prefilled like any other (its prefill emits the first token), then *parks*: it leaves the
running batch but keeps its KV blocks until :meth:`LLMServer.verify` brings a draft of ``k``
tokens. In the next iteration it contributes ``k + 1`` query tokens (the last sampled token and
the draft) — costed as a chunked-prefill chunk of ``k + 1`` tokens over its context, or as a
decode when ``k = 0`` — batched with the other requests' decode and verify work, under the same
token budget and KV preemption rules as a partial prefill. After the iteration its KV is
trimmed to the accepted prefix: ``n_computed`` and ``n_generated`` grow by ``n_accepted + 1``
(the last token, the accepted draft tokens, and the corrected or bonus token sampled), and the
blocks of rejected positions are freed. A verifying request that is preempted re-prefills up to
the token before its draft, then verifies. Without speculative requests none of this runs and
the scheduler is the one above, step for step.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import simpy
from pydantic import Field

from edgetwin.sim.compute.adapter_pool import AdapterPool, LoraServingConfig
from edgetwin.sim.compute.adapter_route import AdapterContexts, AdapterRouting
from edgetwin.sim.compute.cost_model import CostModel, TransformerDims
from edgetwin.sim.compute.kv_cache import BlockManager
from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.decision import DecisionPoint
from edgetwin.sim.metrics.levels import LevelSeries
from edgetwin.sim.metrics.summary import RunResult
from edgetwin.sim.workload.request import Request
from edgetwin.sim.workload.request_log import RequestLog

if TYPE_CHECKING:  # sim never imports agents at runtime (layering)
    from edgetwin.agents.protocol import Policy

#: Decision family of the request scheduler.
SCHEDULER_FAMILY = "serve"

_NAN = float("nan")


_EMPTY = np.zeros(0, np.int64)


@dataclass(frozen=True, slots=True)
class VerifyOutcome:
    """What a speculative request's iteration did (the value of its event).

    Attributes:
        start_s: When the iteration started (``nan`` for a prefill).
        end_s: When it ended (its tokens sampled).
        kv_tokens: Tokens in the request's KV cache after it (rejected positions trimmed).
        kv_blocks: KV blocks it held after it (before a completion frees them).
    """

    start_s: float
    end_s: float
    kv_tokens: int
    kv_blocks: int


#: Columns of the server's level series (:meth:`LLMServer.kv_table`).
LEVELS = ("kv_blocks_used", "n_running", "n_waiting", "n_batched_tokens")


class ServerConfig(StrictConfig):
    """One LLM serving replica (vLLM-like engine arguments)."""

    max_num_seqs: int = Field(256, ge=1, le=1_000_000, description="Max running sequences.")
    max_num_batched_tokens: int = Field(
        8192, ge=1, le=10_000_000, description="Max new tokens computed per iteration."
    )
    block_size: int = Field(16, ge=1, le=4096, description="Tokens per KV block.")
    n_blocks: int = Field(2588, ge=1, le=100_000_000, description="KV blocks in the pool.")
    chunked_prefill: bool = Field(False, description="Split prompts into chunks (Sarathi).")
    overhead_s: float = Field(0.0, ge=0, le=10, description="Added to every iteration (s).")
    ttft_slo_s: float | None = Field(None, gt=0, description="TTFT SLO for attainment (s).")
    tpot_slo_s: float | None = Field(None, gt=0, description="TPOT SLO for attainment (s).")
    level_rows: Literal["change", "binned", "none"] = Field(
        "change",
        description="Rows kept of the level series (KV, queues): one per iteration ('change'), "
        "per level_bin_s of simulated time ('binned': memory flat in the number of requests), "
        "or none; the summary's KV mean/max are exact in every mode.",
    )
    level_bin_s: float = Field(1.0, gt=0, le=86_400, description="Bin width of 'binned' (s).")
    lora: LoraServingConfig | None = Field(
        None, description="LoRA adapters served over the base model (None: base model only)."
    )
    reserve_full_sequence: bool = Field(
        True,
        description="Admit a waiting request only if the KV blocks of its whole current sequence "
        "(prompt, plus the tokens generated before a preemption) are free, not only its first "
        "chunk's (vLLM 0.19 scheduler_reserve_full_isl, on by default).",
    )
    prefix_caching: bool = Field(
        True,
        description="Automatic prefix caching (vLLM enable_prefix_caching, on by default in "
        "v1): a preempted request's full KV blocks stay cached, evicted LRU, and its recompute "
        "skips those still there. Prompts sharing prefixes across requests are not modelled "
        "(no token contents).",
    )


class PrefixCachingBlockManager(BlockManager):
    """:class:`BlockManager` with vLLM v1's free-block queue for automatic prefix caching.

    vLLM v1 (``vllm/v1/core/block_pool.py``, ``FreeKVCacheBlockQueue``) keeps freed blocks
    with their content hashes in one LRU queue: a freed request's blocks are appended at the
    tail in reverse order (its last block first, so that it is evicted first), allocations take
    blocks from the head (evicting what they held), and a request whose prefix blocks are
    still cached takes them back out of the queue (``get_computed_blocks`` + ``touch``)
    instead of recomputing them. Without token contents only a request's *own* earlier blocks
    can be recognised: a preempted request's full blocks (``free_cached``); blocks of finished
    requests and partial blocks are anonymous. The queue is kept as segments
    ``[owner, count]`` (owner -1: anonymous) only while some owner's blocks are cached, so the
    common case costs what :class:`BlockManager` costs.
    """

    __slots__ = ("_cached", "_segments")

    def __init__(self, block_size: int, n_blocks: int) -> None:
        super().__init__(block_size, n_blocks)
        self._cached: dict[int, int] = {}  # owner -> its full blocks still cached
        self._segments: deque[list[int]] = deque()  # free queue, head first (while cached)

    def cached_blocks(self, req_id: int) -> int:
        """Full blocks of ``req_id``'s earlier computation still cached (a prefix of it)."""
        return self._cached.get(req_id, 0)

    def _append(self, owner: int, n: int) -> None:
        segs = self._segments
        if n <= 0:
            return
        if owner < 0 and segs and segs[-1][0] < 0:
            segs[-1][1] += n
        else:
            segs.append([owner, n])

    def free_cached(self, req_id: int, n_full: int) -> int:
        """Free ``req_id``'s blocks, keeping its first ``n_full`` blocks cached; returns all."""
        free_before = self.n_free
        n = BlockManager.free(self, req_id)
        n_full = min(n_full, n)
        if n_full <= 0:
            if self._cached:
                self._append(-1, n)
            return n
        if not self._cached:  # start tracking: every free block so far is ahead of it
            self._segments.clear()
            self._append(-1, free_before)
        self._append(-1, n - n_full)  # its partial tail block(s), uncached, evicted first
        self._segments.append([req_id, n_full])
        self._cached[req_id] = n_full
        return n

    def free(self, req_id: int) -> int:
        """Release every block of ``req_id`` to the tail of the free queue (uncached)."""
        n = BlockManager.free(self, req_id)
        if self._cached:
            self._append(-1, n)
        return n

    def allocate(self, req_id: int, n_blocks: int) -> None:
        """Take ``n_blocks`` from the head of the free queue (evicting cached blocks there)."""
        BlockManager.allocate(self, req_id, n_blocks)
        if self._cached:
            self._evict(n_blocks)

    def trim(self, req_id: int, n_tokens: int) -> int:
        """Keep only the blocks of ``req_id``'s first ``n_tokens`` tokens; returns blocks freed.

        Rejected draft positions of a speculative verify (their KV was written, then dropped);
        the freed blocks go to the tail of the free queue, anonymous.
        """
        keep = self.blocks_for(n_tokens)
        held = self._held.get(req_id, 0)
        n = held - keep
        if n <= 0:
            return 0
        self._held[req_id] = keep
        self.n_used -= n
        if self._cached:
            self._append(-1, n)
        return n

    def _evict(self, n_blocks: int) -> None:
        segs, cached = self._segments, self._cached
        k = n_blocks
        while k > 0 and segs:
            seg = segs[0]
            take = min(k, seg[1])
            seg[1] -= take
            k -= take
            if seg[0] >= 0:
                cached[seg[0]] = seg[1]
            if seg[1] == 0:
                segs.popleft()
                if seg[0] >= 0:
                    del cached[seg[0]]
        if not cached:
            segs.clear()

    def claim(self, req_id: int) -> int:
        """Give ``req_id`` back its cached blocks (out of the free queue); returns how many."""
        n = self._cached.pop(req_id, 0)
        if n:
            for j, seg in enumerate(self._segments):
                if seg[0] == req_id:
                    del self._segments[j]
                    break
            BlockManager.allocate(self, req_id, n)
            if not self._cached:
                self._segments.clear()
        return n


def _stats(prefix: str, x: np.ndarray) -> dict[str, float]:
    x = x[~np.isnan(x)]
    if x.size == 0:
        return {f"{prefix}_{k}": _NAN for k in ("mean", "p50", "p90", "p99")}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {
        f"{prefix}_mean": float(x.mean()),
        f"{prefix}_p50": float(p50),
        f"{prefix}_p90": float(p90),
        f"{prefix}_p99": float(p99),
    }


class LLMServer:
    """A replica serving requests with continuous batching (see the module docstring).

    Args:
        env: The SimPy environment.
        config: Engine configuration.
        cost_model: Iteration time of a batch.
        name: Component name.
        on_complete: Called with each request when its last token is generated.
        on_token: Called with a request each time one of its tokens is sampled (after its
            ``n_generated`` and ``last_token_s`` are updated): where tokens are streamed.
        scheduler: Policy of family ``"serve"`` ordering the waiting queue (see the module
            docstring); ``None`` keeps plain FCFS.
        request_log: Where each request's outcome goes (finished and rejected ones at once,
            unfinished ones at :meth:`finalize`); the server then keeps no reference to a request
            it is done with, so memory stays flat over long runs. ``None``: the server keeps
            every request in ``requests`` / ``rejected``.
        replica: This server's index, written into ``request_log``.
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: ServerConfig,
        cost_model: CostModel,
        name: str = "server",
        on_complete: Callable[[Request], None] | None = None,
        scheduler: Policy[Any, Any] | None = None,
        request_log: RequestLog | None = None,
        replica: int = 0,
        on_token: Callable[[Request], None] | None = None,
        dims: TransformerDims | None = None,
        lora_cost: Callable[[int, int], float] | None = None,
        cache_policy: Policy[Any, Any] | None = None,
        route_policy: Policy[Any, Any] | None = None,
        adapter_contexts: AdapterContexts | None = None,
    ) -> None:
        self.env = env
        self.config = config
        self.cost_model = cost_model
        self.name = name
        self.on_complete = on_complete
        self.on_token = on_token
        self.kv = PrefixCachingBlockManager(config.block_size, config.n_blocks)
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.requests: list[Request] = []
        self.rejected: list[Request] = []
        self.request_log = request_log
        self.replica = replica
        self.n_accepted = 0
        self.n_rejected = 0
        self.n_iterations = 0
        self.n_preemptions = 0
        self.busy_s = 0.0  # time spent in iterations (utilization = busy_s / elapsed)
        self._wakeup: simpy.Event = env.event()
        self._idle = False
        self._end_s = _NAN
        # speculative requests (see the module docstring): the event each one's next
        # iteration fires (prefill done, or verify done), the parked ones (KV kept, out of the
        # batch), and the pending verifies: id -> (query tokens k + 1, kept tokens N_acc + 1)
        self._spec_wait: dict[int, simpy.Event] = {}
        self.parked: dict[int, Request] = {}
        self._verifying: dict[int, tuple[int, int]] = {}
        self._verify_start: dict[int, float] = {}
        self.n_verifies = 0
        self.n_verify_query_tokens = 0
        self.n_verify_kept_tokens = 0
        self._abandoned: list[Request] = []
        # levels at each iteration start and idle start; a long replay runs ~50 iterations a
        # request, hence the binned/none modes for long runs
        self.levels = LevelSeries(LEVELS, rows=config.level_rows, bin_s=config.level_bin_s)
        # request scheduler: inline decision point, and whether ``waiting`` changed since the
        # last ordering (set on arrivals and preemptions)
        self.scheduler: DecisionPoint[dict[str, Any], Any] | None = (
            DecisionPoint(env, SCHEDULER_FAMILY, scheduler) if scheduler is not None else None
        )
        self._queue_changed = False
        # LoRA adapters: residency and loads, requests waiting for their adapter, batch cost
        self.adapters: AdapterPool | None = None
        self._lora_wait: dict[int, list[Request]] = {}
        self._lora_counted: set[int] = set()
        self._lora_reserved: set[int] = set()  # requeued requests holding their adapter's pin
        self.lora_cost = lora_cost
        if config.lora is not None:
            if dims is None or lora_cost is None:
                raise ValueError(
                    f"{name}: serving LoRA adapters needs the base model's dims and a lora_cost"
                )
            self.adapters = AdapterPool(
                env,
                config.lora,
                dims,
                kv=self.kv,
                kv_block_bytes=config.block_size * dims.kv_bytes_per_token(),
                on_loaded=self._adapter_loaded,
                policy=cache_policy,
                name=name,
            )
        # per-request adapter routing (adapter_route.py): every arriving request is routed
        self.routing: AdapterRouting | None = None
        if route_policy is not None or adapter_contexts is not None:
            if self.adapters is None or route_policy is None or adapter_contexts is None:
                raise ValueError(
                    f"{name}: routing requests to adapters needs config.lora, a route_policy "
                    "and adapter_contexts (the requests' tasks and contexts)"
                )
            self.routing = AdapterRouting(
                env, self.adapters, adapter_contexts, route_policy, name=name
            )

    # ------------------------------------------------------------------------------------
    # Interface
    # ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the iteration process."""
        self.env.process(self._run())

    def submit(self, req: Request) -> bool:
        """Queue a request now (wakes an idle server); returns whether it was accepted.

        A request that can never run (its full sequence needs more KV blocks than the pool or,
        without chunked prefill, more tokens than ``max_num_batched_tokens``) is rejected:
        it goes to ``rejected`` (or the request log) and is never served.
        """
        cfg = self.config
        routing = self.routing
        if req.adapter >= 0 and routing is None:
            if self.adapters is None:
                raise ValueError(
                    f"{self.name}: request {req.id} asks for adapter {req.adapter}, but the "
                    "server has no LoRA adapters (config.lora)"
                )
            self.adapters.check_id(req.adapter)
        longest = req.prompt_tokens + req.output_tokens - 1  # longest (re)prefill
        if self.kv.blocks_for(longest + 1) > cfg.n_blocks or (
            not cfg.chunked_prefill and longest > cfg.max_num_batched_tokens
        ):
            self.n_rejected += 1
            if routing is not None:
                routing.skip(req)
            if self.request_log is None:
                self.rejected.append(req)
            else:
                self.request_log.write(req, self.replica, "rejected")
            return False
        if routing is not None:
            routing.route(req)  # sets req.adapter: the normal tier/load/batch path follows
        self.n_accepted += 1
        if self.request_log is None:
            self.requests.append(req)
        self.waiting.append(req)
        self._queue_changed = True
        if self._idle and not self._wakeup.triggered:
            self._wakeup.succeed()
        return True

    def submit_speculative(self, req: Request) -> simpy.Event | None:
        """Queue ``req`` in speculative mode (see the module docstring).

        Returns:
            An event fired with a :class:`VerifyOutcome` at the end of the iteration that
            samples its first token (the request is then parked, or finished), or ``None``
            when the request is rejected (as :meth:`submit`).
        """
        if not self.submit(req):
            return None
        event = self.env.event()
        self._spec_wait[req.id] = event
        return event

    def verify(self, req: Request, n_draft: int, n_accepted: int) -> simpy.Event:
        """Verify ``n_draft`` drafted tokens of the parked ``req``, of which ``n_accepted`` pass.

        The acceptance is drawn by the caller (common random numbers across draft policies);
        the server times the ``n_draft + 1``-token query in its batch and keeps
        ``n_accepted + 1`` tokens (the accepted prefix plus the corrected or bonus token).

        Returns:
            An event fired with a :class:`VerifyOutcome` at the end of the verify iteration.

        Raises:
            ValueError: ``req`` is not parked here, or the counts are out of range.
        """
        if req.id not in self.parked:
            raise ValueError(f"{self.name}: request {req.id} is not parked for a verify")
        left = req.output_tokens - req.n_generated
        if not (0 <= n_accepted <= n_draft and n_accepted + 1 <= left):
            raise ValueError(
                f"{self.name}: request {req.id}: need 0 <= n_accepted ({n_accepted}) <= n_draft "
                f"({n_draft}) and n_accepted + 1 <= tokens left ({left})"
            )
        if n_draft + 1 > self.config.max_num_batched_tokens:
            raise ValueError(
                f"{self.name}: a draft of {n_draft} tokens exceeds max_num_batched_tokens - 1 "
                f"({self.config.max_num_batched_tokens - 1})"
            )
        del self.parked[req.id]
        self._verifying[req.id] = (n_draft + 1, n_accepted + 1)
        event = self.env.event()
        self._spec_wait[req.id] = event
        self.running.append(req)
        if self._idle and not self._wakeup.triggered:
            self._wakeup.succeed()
        return event

    def abandon(self, req: Request) -> None:
        """Drop the parked ``req`` (its draft or reply was lost): free its KV blocks now.

        It is logged as ``unfinished`` at :meth:`finalize` (with a request log).
        """
        if self.parked.pop(req.id, None) is None:
            return
        self._spec_wait.pop(req.id, None)
        self.kv.free(req.id)
        if req.adapter >= 0 and self.adapters is not None:
            self.adapters.release(req.adapter)
        self._abandoned.append(req)

    def verify_time_s(self, req: Request, k_max: int) -> np.ndarray:
        """Iteration time if ``req`` verified ``k = 0..k_max`` tokens with the running batch, s.

        The running requests' decodes plus ``req``'s ``k + 1`` query tokens over its context
        (for the ``draft`` observation; an estimate, the batch may change), shape [k_max + 1].
        """
        cost = self.cost_model.iteration_time_s
        others = [r for r in self.running if r.id != req.id]
        dec = np.array([r.n_computed + 1 for r in others], dtype=np.int64)
        ctx = np.array([req.n_computed], dtype=np.int64)
        out = np.empty(k_max + 1)
        out[0] = cost(_EMPTY, _EMPTY, np.append(dec, req.n_computed + 1))
        for k in range(1, k_max + 1):
            out[k] = cost(np.array([k + 1], dtype=np.int64), ctx, dec)
        return out + self.config.overhead_s

    def _spec_done(self, r: Request, now: float) -> None:
        """Park (or finish) a speculative request after its iteration and fire its event."""
        event = self._spec_wait.pop(r.id)
        kv_tokens, kv_blocks = r.n_computed, self.kv.held(r.id)
        if r.n_generated < r.output_tokens:
            self.parked[r.id] = r
        event.succeed(VerifyOutcome(self._verify_start.pop(r.id, _NAN), now, kv_tokens, kv_blocks))

    # ------------------------------------------------------------------------------------
    # Iteration process
    # ------------------------------------------------------------------------------------
    def _reserve(self, running: list[Request], r: Request, n_tokens: int) -> tuple[bool, bool]:
        """KV blocks for ``r`` to hold ``n_tokens`` tokens, preempting as :meth:`_free_blocks`.

        Returns:
            ``(lost, preempted)`` of :meth:`_free_blocks`; the blocks are allocated unless lost.
        """
        extra = self.kv.extra_blocks(r.id, n_tokens)
        lost, evicted = self._free_blocks(running, r, extra)
        if not lost:
            self.kv.allocate(r.id, extra)
        return lost, evicted

    def _free_blocks(self, running: list[Request], r: Request, need: int) -> tuple[bool, bool]:
        """Preempt from the back of ``running`` until ``need`` KV blocks are free (vLLM v1).

        Returns:
            ``(lost, preempted)``: whether ``r`` itself was preempted (it cannot run this
            iteration), and whether any request was.
        """
        kv = self.kv
        preempted = False
        while need > kv.n_free:
            victim = running.pop()
            self._preempt(victim)
            preempted = True
            if victim is r:
                return True, True
        return False, preempted

    def _preempt(self, victim: Request) -> None:
        """Recompute preemption: free the victim's KV, put it at the head of ``waiting``.

        With ``prefix_caching`` its full blocks stay cached (evictable) until reused or evicted
        (:class:`PrefixCachingBlockManager`), so that its recompute may skip them.
        """
        if self.config.prefix_caching:
            self.kv.free_cached(victim.id, victim.n_computed // self.config.block_size)
        else:
            self.kv.free(victim.id)
        if victim.adapter >= 0 and self.adapters is not None:
            self.adapters.release(victim.adapter)
        victim.n_computed = 0
        victim.preemptions += 1
        self.n_preemptions += 1
        self.waiting.appendleft(victim)
        self._queue_changed = True

    def scheduler_obs(self) -> dict[str, Any]:
        """Observation of the ``"serve"`` family over the waiting requests, in queue order.

        Keys: ``arrival_s`` float64 [n], ``prompt_tokens`` int64 [n], ``output_tokens`` int64
        [n] (the true output length: known to the simulator only, so a policy reading it is an
        oracle), ``n_generated`` int64 [n] (> 0 for preempted requests that had produced
        tokens), ``preempted`` bool [n] (preempted at least once), and the scalars ``now_s``,
        ``kv_free_blocks`` and ``n_running``.
        """
        w = self.waiting
        n = len(w)
        return {
            "arrival_s": np.fromiter((r.arrival_s for r in w), np.float64, n),
            "prompt_tokens": np.fromiter((r.prompt_tokens for r in w), np.int64, n),
            "output_tokens": np.fromiter((r.output_tokens for r in w), np.int64, n),
            "n_generated": np.fromiter((r.n_generated for r in w), np.int64, n),
            "preempted": np.fromiter((r.preemptions > 0 for r in w), np.bool_, n),
            "now_s": float(self.env.now),
            "kv_free_blocks": int(self.kv.n_free),
            "n_running": len(self.running),
        }

    def _reorder(self) -> None:
        """Ask the scheduler for the admission order and apply it to ``waiting``.

        Raises:
            ValueError: The action is not a permutation of ``range(len(waiting))``.
        """
        dp = self.scheduler
        assert dp is not None
        self._queue_changed = False
        w = self.waiting
        n = len(w)
        if n < 2:
            return
        action = np.asarray(dp.decide(self.scheduler_obs()))
        if (
            action.shape != (n,)
            or action.dtype.kind not in "iu"
            or not np.array_equal(np.sort(action), np.arange(n))
        ):
            raise ValueError(
                f"{self.name}: scheduler {type(dp.policy).__name__} returned an invalid "
                f"admission order {action!r}: expected a permutation of range({n}) "
                "(integer array of shape (n,))"
            )
        items = list(w)
        w.clear()
        w.extend(items[i] for i in action.tolist())

    def _lora_s(self, pre: list[Request], pre_n: list[int], dec: list[Request]) -> float:
        """LoRA time of an iteration: its adapter tokens and distinct adapters (SGMV)."""
        n = 0
        ids = set()
        for r, k in zip(pre, pre_n, strict=True):
            if r.adapter >= 0:
                n += k
                ids.add(r.adapter)
        for r in dec:
            if r.adapter >= 0:
                n += 1
                ids.add(r.adapter)
        assert self.lora_cost is not None
        return self.lora_cost(n, len(ids)) if n else 0.0

    def _adapter_loaded(self, adapter: int) -> None:
        """The requests that waited for ``adapter`` go back to the head of the queue, in order."""
        held = self._lora_wait.pop(adapter, [])
        assert self.adapters is not None
        for r in reversed(held):
            self.waiting.appendleft(r)
            # reserved for it: the loader must not evict the adapter before it is admitted
            self.adapters.pin(adapter)
            self._lora_reserved.add(r.id)
        if held:
            self._queue_changed = True
            if self._idle and not self._wakeup.triggered:
                self._wakeup.succeed()

    def _adapter_ready(self, r: Request) -> bool:
        """Whether ``r`` can be admitted now as far as its adapter goes (else it waits)."""
        pool = self.adapters
        if r.adapter < 0 or pool is None or pool.resident(r.adapter):
            return True
        first = r.id not in self._lora_counted
        self._lora_counted.add(r.id)
        pool.admit(r.adapter, count=first)  # queues the load
        self.waiting.popleft()
        self._lora_wait.setdefault(r.adapter, []).append(r)
        return False

    def _record(self, now: float, n_tokens: int) -> None:
        self.levels.record(now, (self.kv.n_used, len(self.running), len(self.waiting), n_tokens))

    def _run(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        cfg = self.config
        kv = self.kv
        bs = cfg.block_size
        waiting = self.waiting
        max_seqs = cfg.max_num_seqs
        chunked = cfg.chunked_prefill
        caching = cfg.prefix_caching
        reserve_full = cfg.reserve_full_sequence
        cost = self.cost_model.iteration_time_s
        overhead_s = cfg.overhead_s
        scheduled = self.scheduler is not None
        verifying = self._verifying  # empty without speculative requests: no extra work
        spec = self._spec_wait
        while True:
            if not waiting and not self.running:
                self._record(env.now, 0)
                self._idle = True
                self._wakeup = env.event()
                yield self._wakeup
                self._idle = False
                continue
            now = env.now
            running = self.running
            budget = cfg.max_num_batched_tokens
            dec: list[Request] = []
            pre: list[Request] = []
            pre_n: list[int] = []
            ver: list[Request] = []  # speculative verifies of this iteration
            # --- running requests first, in admission order: each decode gets its one token,
            # each partial prefill (chunked prefill only) a chunk of the remaining budget (vLLM
            # v1 ``Scheduler.schedule``: "First, schedule the RUNNING requests"; decodes and
            # partial prefills are not told apart, vllm/v1/core/sched/scheduler.py). When the
            # KV pool cannot hold a request's new tokens, the most recently admitted running
            # request is preempted by recompute, repeatedly, until they fit; a request that has
            # to preempt itself ends the pass (vLLM: ``preempted_req = self.running.pop()``,
            # ``if preempted_req == request: break``). Before vLLM v1, EdgeTwin shrank a partial
            # prefill's chunk to the free blocks instead; vLLM never shrinks it.
            # (popping from the tail while iterating is safe: the iterator stops earlier)
            preempted = False
            for r in running:
                left = r.prompt_tokens + r.n_generated - r.n_computed
                if verifying and r.id in verifying:
                    if left == 1:  # its verify: k + 1 query tokens, KV as a prefill chunk
                        n = verifying[r.id][0]
                        if n > budget:
                            continue  # next iteration (a draft is never cut)
                        lost, evicted = self._reserve(running, r, r.n_computed + n)
                        preempted |= evicted
                        if lost:
                            break
                        ver.append(r)
                        budget -= n
                        if budget <= 0:
                            break
                        continue
                    left -= 1  # re-prefill after a preemption: up to the token before its draft
                if left == 1:  # a decode (hot path): one more block at a block boundary
                    if r.n_computed % bs == 0:
                        lost, evicted = self._free_blocks(running, r, 1)
                        preempted |= evicted
                        if lost:
                            break
                        kv.allocate(r.id, 1)
                    dec.append(r)
                    budget -= 1
                    if budget <= 0:
                        break
                    continue
                n = min(left, budget)  # a partial prefill's chunk
                lost, evicted = self._reserve(running, r, r.n_computed + n)
                preempted |= evicted
                if lost:
                    break
                pre.append(r)
                pre_n.append(n)
                budget -= n
                if budget <= 0:
                    break
            # --- then waiting requests, FCFS, unless this pass preempted (vLLM v1: "Next,
            # schedule the WAITING requests", guarded by ``if not preempted_reqs``)
            if scheduled and self._queue_changed and not preempted:
                self._reorder()
            while not preempted and waiting and budget > 0 and len(running) < max_seqs:
                r = waiting[0]
                if r.adapter >= 0 and not self._adapter_ready(r):
                    continue  # moved aside until its adapter is loaded
                seq = r.prompt_tokens + r.n_generated
                # a preempted verify re-prefills up to the token before its draft
                target = seq - 1 if verifying and r.id in verifying else seq
                # automatic prefix caching: the full blocks of its own earlier computation
                # that are still cached (vLLM ``get_computed_blocks``; at most seq - 1 tokens,
                # the last one is always recomputed to sample from)
                hit = kv.cached_blocks(r.id) if caching else 0
                hit_tokens = min(hit * bs, target - 1)
                need = target - hit_tokens
                if chunked:
                    n = min(need, budget)
                elif need <= budget:
                    n = need
                else:
                    break
                # vLLM 0.19 ``scheduler_reserve_full_isl`` (default on): admit only if the
                # blocks of the whole current sequence are free (``allocate_slots(...,
                # full_sequence_must_fit=True)``; cached hits count as free blocks there too,
                # vllm/v1/core/kv_cache_manager.py); else only the first chunk must fit
                if reserve_full and kv.blocks_for(seq) > kv.n_free:
                    break
                blocks = kv.blocks_for(hit_tokens + n)
                if blocks > kv.n_free:
                    break
                waiting.popleft()
                if hit:
                    kv.claim(r.id)
                    r.n_computed = hit_tokens
                kv.allocate(r.id, kv.extra_blocks(r.id, hit_tokens + n))
                if r.adapter >= 0 and self.adapters is not None:
                    if r.id in self._lora_reserved:  # pinned when its load completed
                        self._lora_reserved.discard(r.id)
                    else:
                        first = r.id not in self._lora_counted
                        self._lora_counted.add(r.id)
                        self.adapters.admit(r.adapter, count=first)  # resident: pins it
                running.append(r)
                pre.append(r)
                pre_n.append(n)
                budget -= n
                if math.isnan(r.first_scheduled_s):
                    r.first_scheduled_s = now
            if not dec and not pre and not ver and not running and preempted:
                continue  # it preempted itself alone: the next pass admits (no time passes)
            if not dec and not pre and not ver and not running:
                # every waiting request went aside for its adapter: sleep until a load ends
                self._record(now, 0)
                self._idle = True
                self._wakeup = env.event()
                yield self._wakeup
                self._idle = False
                continue
            if not dec and not pre and not ver:
                # KV deadlock among partial prefills: preempt from the tail until the oldest
                # running request can compute a chunk (the pool holds any single request)
                r = running[0]
                while kv.n_free == 0 and len(running) > 1:
                    self._preempt(running.pop())
                n = min(r.prompt_tokens + r.n_generated - r.n_computed, budget)
                is_verify = bool(verifying) and r.id in verifying and n == 1
                if is_verify:  # its whole draft, or nothing (a draft is never cut)
                    n = verifying[r.id][0]
                elif verifying and r.id in verifying:
                    n -= 1  # its re-prefill stops before its draft
                room = (kv.held(r.id) + kv.n_free) * bs - r.n_computed
                if is_verify and n > room:
                    raise RuntimeError(
                        f"{self.name}: the KV pool cannot hold request {r.id}'s verify of {n} "
                        "tokens alone; give the server more KV blocks"
                    )
                n = min(n, room)
                if n <= 0:
                    raise RuntimeError(f"{self.name}: nothing schedulable at t={now} (bug)")
                kv.allocate(r.id, kv.extra_blocks(r.id, r.n_computed + n))
                if is_verify:
                    ver.append(r)
                else:
                    pre.append(r)
                    pre_n.append(n)
                budget -= n
            # --- run the iteration
            n_tokens = cfg.max_num_batched_tokens - budget
            self._record(now, n_tokens)
            self.n_iterations += 1
            if ver:  # verifies: a chunk of k + 1 tokens over the context; k = 0 is a decode
                for r in ver:
                    self._verify_start[r.id] = now
                q = [verifying[r.id][0] for r in ver]
                vp = [r for r, n in zip(ver, q, strict=True) if n > 1]
                dt = cost(
                    np.array(pre_n + [n for n in q if n > 1], dtype=np.int64),
                    np.array([r.n_computed for r in (*pre, *vp)], dtype=np.int64),
                    np.array(
                        [r.n_computed + 1 for r in dec]
                        + [r.n_computed + 1 for r, n in zip(ver, q, strict=True) if n == 1],
                        dtype=np.int64,
                    ),
                )
            else:
                dt = cost(
                    np.array(pre_n, dtype=np.int64),
                    np.array([r.n_computed for r in pre], dtype=np.int64),
                    np.array([r.n_computed + 1 for r in dec], dtype=np.int64),
                )
            if self.adapters is not None:
                dt += self._lora_s(pre, pre_n, dec)
            self.busy_s += dt + overhead_s
            yield env.timeout(dt + overhead_s)
            now = env.now
            # --- advance: computed tokens, sampled tokens, completions
            done = False
            for r, n in zip(pre, pre_n, strict=True):
                r.n_computed += n
            for r in dec:
                r.n_computed += 1
            park = False
            for r in (*pre, *dec):
                if r.n_computed == r.prompt_tokens + r.n_generated:  # fully computed: sample
                    r.n_generated += 1
                    r.last_token_s = now
                    if r.n_generated == 1:
                        r.first_token_s = now
                    if self.on_token is not None:
                        self.on_token(r)
                    if spec and r.id in spec:  # a speculative prefill's first token: park
                        self._spec_done(r, now)
                        park = True
                    if r.n_generated >= r.output_tokens:
                        self._complete(r, now)
                        done = True
            for r in ver:  # keep the accepted prefix + 1 sampled token; trim rejected KV
                n_query, keep = verifying.pop(r.id)
                r.n_computed += keep
                kv.trim(r.id, r.n_computed)
                self.n_verifies += 1
                self.n_verify_query_tokens += n_query
                self.n_verify_kept_tokens += keep
                for _ in range(keep):
                    r.n_generated += 1
                    r.last_token_s = now
                    if self.on_token is not None:
                        self.on_token(r)
                self._spec_done(r, now)
                park = True
                if r.n_generated >= r.output_tokens:
                    self._complete(r, now)
                    done = True
            if park:
                parked = self.parked
                self.running = [
                    r for r in running if r.n_generated < r.output_tokens and r.id not in parked
                ]
            elif done:
                self.running = [r for r in running if r.n_generated < r.output_tokens]

    def _complete(self, r: Request, now: float) -> None:
        """``r`` sampled its last token at ``now``: free its KV, log it, tell the caller."""
        r.completion_s = now
        self.kv.free(r.id)
        if r.adapter >= 0 and self.adapters is not None:
            self.adapters.release(r.adapter)
        if self.routing is not None:
            self.routing.complete(r)
        if self.request_log is not None:
            self.request_log.write(r, self.replica, "finished")
        if self.on_complete is not None:
            self.on_complete(r)

    # ------------------------------------------------------------------------------------
    # Results
    # ------------------------------------------------------------------------------------
    def finalize(self, now_s: float) -> None:
        """Close the level series at ``now_s``; log the requests still in the server."""
        self._end_s = now_s
        self.levels.close(now_s)
        if self.request_log is not None:
            for r in (*self.running, *self.waiting, *self.parked.values(), *self._abandoned):
                self.request_log.write(r, self.replica, "unfinished")

    def request_table(self) -> pd.DataFrame:
        """One row per accepted request (unfinished ones have ``nan`` timestamps).

        With a request log: its finished and (after :meth:`finalize`) unfinished rows of this
        replica, with the log's ``replica`` and ``status`` columns. With adapter routing
        (``route_policy``): ``adapter`` is the adapter that served the request, and the columns
        of :data:`~edgetwin.sim.compute.adapter_route.ROUTE_COLUMNS` follow (``task``,
        ``route_hit``, ``routed_s``, ``utility``, ``regret`` against the oracle router,
        ``net_utility`` = utility − λ · ttft_s).
        """
        tab = self._request_rows()
        if self.routing is None:
            return tab
        # routing: the served adapter and the routing record of each request (by id)
        tab = tab.drop(columns="adapter", errors="ignore")
        return tab.merge(self.routing.table(), on="id", how="left", validate="one_to_one")

    def _request_rows(self) -> pd.DataFrame:
        log = self.request_log
        if log is not None:
            mine = (log.replica == self.replica) & log.has_status("finished", "unfinished")
            return log.table(mine)
        reqs = self.requests
        return pd.DataFrame(
            {
                "id": np.array([r.id for r in reqs], dtype=np.int64),
                "arrival_s": np.array([r.arrival_s for r in reqs], dtype=np.float64),
                "first_scheduled_s": np.array([r.first_scheduled_s for r in reqs], dtype=float),
                "first_token_s": np.array([r.first_token_s for r in reqs], dtype=np.float64),
                "completion_s": np.array([r.completion_s for r in reqs], dtype=np.float64),
                "ttft_s": np.array([r.ttft_s for r in reqs], dtype=np.float64),
                "tpot_s": np.array([r.tpot_s for r in reqs], dtype=np.float64),
                "e2e_s": np.array([r.e2e_s for r in reqs], dtype=np.float64),
                "queueing_s": np.array([r.queueing_s for r in reqs], dtype=np.float64),
                "preemptions": np.array([r.preemptions for r in reqs], dtype=np.int64),
                "prompt_tokens": np.array([r.prompt_tokens for r in reqs], dtype=np.int64),
                "output_tokens": np.array([r.output_tokens for r in reqs], dtype=np.int64),
                "generated_tokens": np.array([r.n_generated for r in reqs], dtype=np.int64),
                **(
                    {"adapter": np.array([r.adapter for r in reqs], dtype=np.int64)}
                    if self.adapters is not None
                    else {}
                ),
            }
        )

    def kv_table(self) -> pd.DataFrame:
        """Level series of ``config.level_rows``: times, the :data:`LEVELS` and ``kv_usage``.

        Columns ``t_s``, ``dt_s``, the levels and ``kv_usage`` (blocks used / pool); binned rows
        add each level's ``_max``. ``"change"``: one row per iteration start / idle start
        (counts as int64); ``"binned"``: time-weighted means per bin; ``"none"``: no rows.
        """
        tab = self.levels.table(t_end_s=self.env.now)
        if self.config.level_rows == "change":
            tab = tab.astype({name: np.int64 for name in LEVELS})
        tab.insert(3, "kv_usage", tab["kv_blocks_used"] / self.config.n_blocks)
        return tab

    def results(
        self, ttft_slo_s: float | None = None, tpot_slo_s: float | None = None
    ) -> RunResult:
        """Tables ``requests`` and ``kv`` plus headline metrics.

        SLO attainment is the fraction of *finished* requests whose TTFT <= ``ttft_slo_s``
        and TPOT <= ``tpot_slo_s`` (a missing SLO is not checked; a single-token request has
        no TPOT and passes that check); goodput is the number of such requests per second of
        the run (DistServe, Zhong et al., OSDI 2024). Defaults come from the config.

        Args:
            ttft_slo_s: TTFT SLO in seconds (overrides ``config.ttft_slo_s``).
            tpot_slo_s: TPOT SLO in seconds (overrides ``config.tpot_slo_s``).
        """
        ttft_slo = ttft_slo_s if ttft_slo_s is not None else self.config.ttft_slo_s
        tpot_slo = tpot_slo_s if tpot_slo_s is not None else self.config.tpot_slo_s
        req = self.request_table()
        kv = self.kv_table()
        duration_s = self._end_s if not math.isnan(self._end_s) else self.env.now
        fin = req[req["completion_s"].notna()]
        n_fin = len(fin)
        ok = np.ones(n_fin, dtype=bool)
        if ttft_slo is not None:
            ok &= fin["ttft_s"].to_numpy() <= ttft_slo
        if tpot_slo is not None:
            tp = fin["tpot_s"].to_numpy()
            ok &= np.isnan(tp) | (tp <= tpot_slo)
        n_blocks = self.config.n_blocks
        summary: dict[str, Any] = {
            "n_accepted": self.n_accepted,
            "n_rejected": self.n_rejected,
            "n_finished": n_fin,
            "n_running": len(self.running),
            "n_waiting": len(self.waiting),
            "n_iterations": self.n_iterations,
            "n_preemptions": self.n_preemptions,
            "utilization": min(1.0, self.busy_s / duration_s) if duration_s > 0 else _NAN,
            **(self.adapters.summary() if self.adapters is not None else {}),
            **(self.routing.summary() if self.routing is not None else {}),
            "throughput_rps": n_fin / duration_s if duration_s > 0 else _NAN,
            "throughput_tokens_per_s": (
                float(req["generated_tokens"].sum()) / duration_s if duration_s > 0 else _NAN
            ),
            "kv_usage_mean": self.levels.mean("kv_blocks_used", self.env.now) / n_blocks,
            "kv_usage_max": self.levels.max("kv_blocks_used") / n_blocks,
            "slo_attainment": float(ok.mean()) if n_fin else _NAN,
            "goodput_rps": float(ok.sum()) / duration_s if duration_s > 0 else _NAN,
        }
        if self.n_verifies or self.parked:  # speculative verification (issue 11)
            summary["n_verifies"] = self.n_verifies
            summary["n_parked"] = len(self.parked)
            summary["verify_query_tokens"] = self.n_verify_query_tokens
            summary["verify_kept_tokens"] = self.n_verify_kept_tokens
        for col in ("ttft_s", "tpot_s", "e2e_s", "queueing_s"):
            summary.update(_stats(col.removesuffix("_s"), fin[col].to_numpy()))
        return RunResult(tables={"requests": req, "kv": kv}, summary=summary)
