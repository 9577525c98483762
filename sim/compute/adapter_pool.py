"""LoRA adapters in a server: GPU / host / disk tiers, serialized loads, and their batch cost.

A server holds one base model and a library of ``n_adapters`` LoRA adapters. At most
``max_loras`` are resident in GPU memory (vLLM's ``max_loras``), either in slots of their own or
— ``memory: kv_pool`` — in blocks carved from the KV-cache pool, so that resident adapters cost
KV capacity (S-LoRA's unified paging, Sheng et al., MLSys 2024). Evicted adapters drop to host
memory (``max_cpu_loras``, vLLM's CPU LoRA cache, LRU), below which is the disk.

A request whose adapter is not resident waits: the server queues a load, loads run one at a
time per server (one copy engine, as vLLM's and S-LoRA's loaders), and the request rejoins the
head of the waiting queue when its adapter is in. A load takes

    t = [disk: read(n_bytes)] + n_bytes / host_link_bytes_per_s + load_overhead_s

(the read skipped on a host-memory hit). The victim of an eviction is the least recently used
resident adapter that no running request uses, unless a ``cache`` decision (family ``cache``)
picks it: the policy scores the adapters and the lowest-scored evictable resident one goes.

An iteration with LoRA requests pays the gathered shrink/expand GEMMs of every target of every
layer (Punica's SGMV, Chen et al., MLSys 2024): ``2 n r (d_in + d_out)`` FLOPs over the ``n``
LoRA tokens, and the weights of the ``m`` distinct adapters of the batch read once — so a batch
over many adapters is visibly more expensive than one over a single adapter.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import simpy
from pydantic import Field, model_validator

from edgetwin.sim.compute.adapters import AdapterSpec, adapter_params
from edgetwin.sim.compute.cost_model import TransformerDims
from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.decision import DecisionPoint

if TYPE_CHECKING:
    from edgetwin.agents.protocol import Policy
    from edgetwin.sim.compute.kv_cache import BlockManager

__all__ = ["CACHE_FAMILY", "AdapterPool", "LoraServingConfig", "lora_iteration_s"]

#: Decision family of the adapter cache.
CACHE_FAMILY = "cache"


class LoraServingConfig(StrictConfig):
    """The adapters a server can serve and where they live.

    Attributes:
        n_adapters: Adapters in the library (ids 0 .. n_adapters − 1).
        adapter: Rank, targets and dtype of every adapter.
        max_loras: Adapters resident in GPU memory at once.
        max_cpu_loras: Adapters kept in host memory after eviction (0: none; reloads read disk).
        memory: ``slots``: adapters have memory of their own; ``kv_pool``: a resident adapter
            holds ⌈bytes / KV block bytes⌉ blocks of the KV pool.
        disk_read_bytes_per_s: Storage read rate of an adapter file, byte/s.
        disk_read_overhead_s: Fixed cost of opening and parsing an adapter file, s.
        host_link_bytes_per_s: Host-to-GPU copy rate, byte/s.
        load_overhead_s: Fixed cost per GPU load (allocation, registration), s.
        cache_policy: The ``cache`` policy choosing eviction victims (null: LRU); resolved and
            built by the scenario layer, which knows the registry.
    """

    n_adapters: int = Field(..., ge=1, le=1_000_000)
    adapter: AdapterSpec = Field(default_factory=AdapterSpec)
    max_loras: int = Field(4, ge=1, le=100_000)
    max_cpu_loras: int = Field(0, ge=0, le=1_000_000)
    memory: Literal["slots", "kv_pool"] = "slots"
    disk_read_bytes_per_s: float = Field(
        2.0e9, gt=0, le=1e12, description="Storage read rate (NVMe PCIe 4.0 class), byte/s."
    )
    disk_read_overhead_s: float = Field(0.0, ge=0, le=10)
    host_link_bytes_per_s: float = Field(
        25.0e9, gt=0, le=1e13, description="Host-to-GPU rate (PCIe 4.0 x16 achieved), byte/s."
    )
    load_overhead_s: float = Field(0.0, ge=0, le=10)
    cache_policy: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="A registered 'cache' policy (id or short name: cache/lfu, lfu) asked for "
        "the victim when a load needs room; null: least recently used.",
    )

    @model_validator(mode="after")
    def _tiers(self) -> LoraServingConfig:
        if self.max_loras > self.n_adapters:
            raise ValueError(
                f"max_loras={self.max_loras} exceeds n_adapters={self.n_adapters}; allowed: "
                f"1..{self.n_adapters}"
            )
        return self


def lora_iteration_s(
    n_tokens: int,
    n_adapters: int,
    spec: AdapterSpec,
    dims: TransformerDims,
    *,
    peak_flops: float,
    mem_bandwidth_bytes_per_s: float,
) -> float:
    """Extra time of an iteration for its LoRA tokens, s (roofline of the SGMV kernels).

    Per target and layer: shrink ``x A`` and expand ``h B`` cost ``2 n r (d_in + d_out)``
    FLOPs; they read the ``m`` distinct adapters' ``r (d_in + d_out)`` weights and the
    activations ``n (d_in + d_out + 2 r)`` (Punica SGMV, Chen et al., MLSys 2024); each kernel
    is bounded by the larger of its compute and memory times (Williams et al. 2009).

    Args:
        n_tokens: Tokens of the iteration that carry an adapter.
        n_adapters: Distinct adapters among them.
        spec: Rank, targets, dtype.
        dims: Base model dimensions.
        peak_flops: Achievable FLOP/s.
        mem_bandwidth_bytes_per_s: Achievable memory bandwidth, byte/s.
    """
    if n_tokens <= 0 or n_adapters <= 0:
        return 0.0
    from edgetwin.sim.compute.adapters import _widths

    elt = spec.n_bytes(dims) / adapter_params(spec, dims)  # bytes per weight
    r = spec.rank
    total = 0.0
    for target in spec.targets:
        d_in, d_out = _widths(dims, target)
        flops = 2.0 * n_tokens * r * (d_in + d_out)
        moved = elt * (n_adapters * r * (d_in + d_out) + n_tokens * (d_in + d_out + 2 * r))
        total += max(flops / peak_flops, moved / mem_bandwidth_bytes_per_s)
    return dims.layers * total


class AdapterPool:
    """Residency and loading of one server's adapters (see the module docstring).

    Args:
        env: The SimPy environment.
        config: The library and its tiers.
        dims: Base model dimensions (adapter bytes).
        kv: The server's KV block manager (``memory: kv_pool``) and its KV bytes per block.
        kv_block_bytes: Bytes of one KV block (``memory: kv_pool``).
        on_loaded: Called with the adapter id when a load completes (the server requeues the
            requests that waited for it and wakes up).
        policy: Inline ``cache`` policy choosing eviction victims; None: LRU.
        name: For error messages.
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: LoraServingConfig,
        dims: TransformerDims,
        *,
        kv: BlockManager | None = None,
        kv_block_bytes: float = 0.0,
        on_loaded: Callable[[int], None] | None = None,
        policy: Policy[Any, Any] | None = None,
        name: str = "server",
    ) -> None:
        self.env = env
        self.config = config
        self.name = name
        self.n_bytes = float(config.adapter.n_bytes(dims))
        self.kv = kv
        self.kv_blocks = (
            math.ceil(self.n_bytes / kv_block_bytes)
            if config.memory == "kv_pool" and kv_block_bytes > 0
            else 0
        )
        if config.memory == "kv_pool" and (kv is None or self.kv_blocks == 0):
            raise ValueError(f"{name}: memory 'kv_pool' needs the server's KV pool")
        self.on_loaded = on_loaded
        self.gpu: OrderedDict[int, None] = OrderedDict()  # resident, least recently used first
        self.host: OrderedDict[int, None] = OrderedDict()
        #: GPU residency as a mask, bool [N] (the same set as ``gpu``, for vector reads)
        self.resident_mask = np.zeros(config.n_adapters, dtype=bool)
        self._in_host = np.zeros(config.n_adapters, dtype=bool)  # the same set as ``host``
        self.in_use = np.zeros(config.n_adapters, dtype=np.int64)  # running requests per id
        self._queue: deque[int] = deque()
        self._queued = np.zeros(config.n_adapters, dtype=bool)
        self._wakeup: simpy.Event = env.event()
        self._released: simpy.Event = env.event()
        self.n_loads = 0
        self.n_disk_loads = 0
        self.n_hits = np.zeros(config.n_adapters, dtype=np.int64)
        self.n_misses = np.zeros(config.n_adapters, dtype=np.int64)
        self.last_used = np.full(config.n_adapters, -np.inf)  # s, last admission
        self.load_busy_s = 0.0
        self.dp: DecisionPoint[dict[str, Any], Any] | None = (
            DecisionPoint(env, CACHE_FAMILY, policy) if policy is not None else None
        )
        self.max_resident_seen = 0
        env.process(self._loader())

    # ------------------------------------------------------------------ queries
    def check_id(self, adapter: int) -> None:
        """Raise ValueError for an adapter id outside the library."""
        if not 0 <= adapter < self.config.n_adapters:
            raise ValueError(
                f"{self.name}: adapter {adapter} is not in the library (ids 0.."
                f"{self.config.n_adapters - 1})"
            )

    def resident(self, adapter: int) -> bool:
        """Whether ``adapter`` is in GPU memory now."""
        return adapter in self.gpu

    def load_time_s(self, adapter: int) -> float:
        """Seconds a load of ``adapter`` would take now (host-memory hit or disk read)."""
        cfg = self.config
        t = self.n_bytes / cfg.host_link_bytes_per_s + cfg.load_overhead_s
        if adapter not in self.host:
            t += cfg.disk_read_overhead_s + self.n_bytes / cfg.disk_read_bytes_per_s
        return t

    def load_times_s(self) -> np.ndarray:
        """:meth:`load_time_s` of every adapter now, float64 [N] (resident ones included)."""
        cfg = self.config
        t = self.n_bytes / cfg.host_link_bytes_per_s + cfg.load_overhead_s
        disk = t + cfg.disk_read_overhead_s + self.n_bytes / cfg.disk_read_bytes_per_s
        return np.where(self._in_host, t, disk)

    # ------------------------------------------------------------------ requests
    def admit(self, adapter: int, *, count: bool = True) -> bool:
        """A request of ``adapter`` wants to run.

        Returns True if the adapter is resident (the request pins it), else queues a load and
        returns False (the request waits). ``count``: tally the hit or miss (once per request:
        not again when it retries after its load).
        """
        if adapter in self.gpu:
            self.gpu.move_to_end(adapter)
            self.n_hits[adapter] += int(count)
            self.in_use[adapter] += 1
            self.last_used[adapter] = float(self.env.now)
            return True
        self.n_misses[adapter] += int(count)
        if not self._queued[adapter]:
            self._queued[adapter] = True
            self._queue.append(adapter)
            if not self._wakeup.triggered:
                self._wakeup.succeed()
        return False

    def pin(self, adapter: int) -> None:
        """A request of ``adapter`` holds the resident adapter.

        A preempted request running again, or one whose load just completed.
        """
        self.gpu.move_to_end(adapter)
        self.in_use[adapter] += 1
        self.last_used[adapter] = float(self.env.now)

    def release(self, adapter: int) -> None:
        """A request of ``adapter`` left the running set (finished or preempted)."""
        self.in_use[adapter] -= 1
        if self.in_use[adapter] == 0 and not self._released.triggered:
            self._released.succeed()  # the loader may be waiting for an evictable adapter

    def set_resident(self, want: np.ndarray, order: Sequence[int]) -> None:
        """Move toward the resident set ``want`` (bool [N]) now: an epoch boundary's action.

        Resident adapters outside ``want`` that no running request uses are evicted at once;
        the adapters of ``order`` (those of ``want``, most wanted first) that are neither
        resident nor queued are queued for loading behind the loads already queued (a
        prefetch: no request waits for it). Adapters in use stay until their requests release
        them; the loader then makes room with the ``cache`` decision as for any load.
        """
        for a in [a for a in self.gpu if not want[a] and self.in_use[a] == 0]:
            self._evict(a)
        woke = False
        for a in order:
            if a not in self.gpu and not self._queued[a]:
                self._queued[a] = True
                self._queue.append(a)
                woke = True
        if woke and not self._wakeup.triggered:
            self._wakeup.succeed()
        if not self._released.triggered:  # a loader waiting for room may find it now
            self._released.succeed()

    # ------------------------------------------------------------------ loading
    def _loader(self) -> simpy.events.ProcessGenerator:
        while True:
            if not self._queue:
                self._wakeup = self.env.event()
                yield self._wakeup
                continue
            adapter = self._queue[0]
            if len(self.gpu) >= self.config.max_loras or not self._room_in_kv():
                victim = self._victim()
                if victim is None:  # every resident adapter is in use: wait for a release
                    self._released = self.env.event()
                    yield self._released
                    continue
                self._evict(victim)
                continue
            self._queue.popleft()
            t = self.load_time_s(adapter)
            disk = adapter not in self.host
            if self.kv_blocks:
                assert self.kv is not None
                self.kv.allocate(_kv_key(adapter), self.kv_blocks)
            self.load_busy_s += t
            yield self.env.timeout(t)
            self.host.pop(adapter, None)
            self._in_host[adapter] = False
            self.gpu[adapter] = None
            self.resident_mask[adapter] = True
            self._queued[adapter] = False
            self.n_loads += 1
            self.n_disk_loads += int(disk)
            self.max_resident_seen = max(self.max_resident_seen, len(self.gpu))
            if self.on_loaded is not None:
                self.on_loaded(adapter)

    def _room_in_kv(self) -> bool:
        if not self.kv_blocks:
            return True
        assert self.kv is not None
        return self.kv.can_allocate(self.kv_blocks)

    def _victim(self) -> int | None:
        """The resident adapter to evict: no running request uses it; LRU or the policy's."""
        free = [a for a in self.gpu if self.in_use[a] == 0]
        if not free:
            return None
        if self.dp is None:
            return free[0]
        scores = np.asarray(self.dp.decide(self.cache_obs()), dtype=np.float64)
        if scores.shape != (self.config.n_adapters,):
            raise ValueError(
                f"{self.name}: cache policy returned scores of shape {scores.shape}; expected "
                f"({self.config.n_adapters},), one score per adapter"
            )
        return min(free, key=lambda a: (scores[a], a))

    def _evict(self, adapter: int) -> None:
        del self.gpu[adapter]
        self.resident_mask[adapter] = False
        if self.kv_blocks:
            assert self.kv is not None
            self.kv.free(_kv_key(adapter))
        if self.config.max_cpu_loras > 0:
            self.host[adapter] = None
            self._in_host[adapter] = True
            while len(self.host) > self.config.max_cpu_loras:
                dropped, _ = self.host.popitem(last=False)
                self._in_host[dropped] = False

    def cache_obs(self) -> dict[str, Any]:
        """Observation of the ``cache`` decision (asked when a load needs a victim).

        The keys of the ``cache`` family (``agents/baselines/cache.py``) that a server knows:
        ``resident`` bool [N], ``capacity`` (max_loras), ``requested`` (the adapter being
        loaded), ``epoch`` (0: the server has no epochs), ``counts`` = ``total_counts`` int64 [N]
        (requests that named each adapter), ``hits`` / ``misses`` int64 [N], ``last_used``
        float64 [N] (s, −inf if never), ``load_time_s`` float64 [N]; and its own ``in_use``
        int64 [N] (running requests: such adapters cannot be evicted), ``queued`` bool [N]
        (loads waiting), ``now_s``. Future popularity is not known here (``cache/oracle`` is for
        the standalone loop and the environment). Action: a score per adapter, float [N]; the
        evictable resident adapter with the lowest score is evicted.
        """
        n = self.config.n_adapters
        resident = np.zeros(n, dtype=bool)
        resident[list(self.gpu)] = True
        demand = self.n_hits + self.n_misses
        return {
            "resident": resident,
            "epoch": 0,
            "counts": demand,
            "total_counts": demand.copy(),
            "last_used": self.last_used.copy(),
            "load_time_s": np.array([self.load_time_s(a) for a in range(n)]),
            "in_use": self.in_use.copy(),
            "hits": self.n_hits.copy(),
            "misses": self.n_misses.copy(),
            "queued": self._queued.copy(),
            "capacity": self.config.max_loras,
            "requested": int(self._queue[0]) if self._queue else -1,
            "now_s": float(self.env.now),
        }

    def summary(self) -> dict[str, float]:
        """Hit ratio, loads, disk loads, loader busy time."""
        hits, misses = int(self.n_hits.sum()), int(self.n_misses.sum())
        return {
            "lora_hit_ratio": hits / (hits + misses) if hits + misses else math.nan,
            "lora_loads": self.n_loads,
            "lora_disk_loads": self.n_disk_loads,
            "lora_load_busy_s": self.load_busy_s,
            "lora_max_resident": self.max_resident_seen,
        }


def _kv_key(adapter: int) -> int:
    """Owner id of an adapter's KV blocks (negative: never a request id)."""
    return -1 - adapter


def distinct(adapters: Sequence[int]) -> int:
    """Distinct adapter ids ≥ 0 among ``adapters``."""
    return len({a for a in adapters if a >= 0})
