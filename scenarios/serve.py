"""LLM-serving runs: replay a request trace (or a generated workload) through LLM replicas.

Used by ``edgetwin serve`` (command-line settings) and ``edgetwin run`` of a serving scenario
(a YAML with a ``serving:`` key, see :mod:`edgetwin.scenarios.serving_schema`). Both build a
:class:`ServingScenarioConfig` and call :func:`run_serving`, which writes atomically

* ``requests.csv``: one row per request (timestamps, ``ttft_s``, ``tpot_s``, ``e2e_s``, ...);
* ``summary.json``: mean and p50/p90/p99 of TTFT/TPOT/E2E/queueing, throughput, KV usage, SLO
  attainment and goodput, the cost model, inputs, versions and wall time;
* ``config.resolved.yaml``: the effective settings (derived KV blocks filled in).

Cost model (:func:`build_cost_model`): with a profile folder, the measured-table model of that
folder only, whose format (EdgeTwin, LLMServingSim, Vidur) is detected
(``edgetwin.sim.compute.profile_loader.load_profile_folder``; ``summary.json`` records the
format, folder, content hash and tables used); without, a
:class:`~edgetwin.sim.compute.cost_model.RooflineCostModel` on the peak numbers of
:data:`HARDWARE` derated by :data:`FLOPS_EFFICIENCY` and :data:`BANDWIDTH_EFFICIENCY`.

Request scheduler: FCFS (built in) unless ``scheduler`` names a policy of the ``"serve"``
family (``sjf`` or ``serve/sjf``, see ``edgetwin list``); each replica gets its own instance.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import simpy

from edgetwin.scenarios.run import (
    _jsonable,
    _progress_bar,
    _write_text,
    atomic_dir,
    check_output_dir,
    git_commit,
    versions,
)
from edgetwin.scenarios.serving_schema import (
    ServingScenarioConfig,
    ServingSpec,
    WorkloadAdapters,
    WorkloadSpec,
)
from edgetwin.sim.compute.adapter_pool import lora_iteration_s
from edgetwin.sim.compute.adapter_route import AdapterContexts, route_summary
from edgetwin.sim.compute.cost_model import (
    MODEL_DIMS,
    CostModel,
    RooflineCostModel,
    TransformerDims,
)
from edgetwin.sim.compute.hardware import (
    HARDWARE_PRESETS,
    HardwareSpec,
    hardware_name,
    resolve_hardware,
)
from edgetwin.sim.compute.router import Router
from edgetwin.sim.compute.server import LLMServer, ServerConfig
from edgetwin.sim.rng import RandomStreams
from edgetwin.sim.workload.arrivals import gamma_arrivals, poisson_arrivals
from edgetwin.sim.workload.lengths import fixed_lengths, geometric_lengths
from edgetwin.sim.workload.request import Request
from edgetwin.sim.workload.request_log import RequestLog
from edgetwin.sim.workload.servegen import SERVEGEN_COLUMNS
from edgetwin.sim.workload.source import WorkloadSource
from edgetwin.sim.workload.traces import (
    AZURE_2023_COLUMNS,
    AZURE_2023_FILES,
    load_azure_llm_2023,
    load_mooncake,
    load_request_csv,
    shared_data_dir,
)

__all__ = [
    "BANDWIDTH_EFFICIENCY",
    "FLOPS_EFFICIENCY",
    "GPU_MEMORY_UTILIZATION",
    "HARDWARE",
    "MODEL_DIMS",
    "PUBLIC_PROFILES",
    "SHIPPED_PROFILES",
    "ServingRun",
    "build_cost_model",
    "default_kv_blocks",
    "load_workload",
    "run_serving",
    "simulate",
]


#: Built-in hardware by id (``sim/compute/hardware.py``: vendor figures, each cited); a scenario
#: may declare any other as a ``hardware:`` block. ``cpu`` has no entry: it is supported with
#: measured profiles only.
HARDWARE: Final[dict[str, HardwareSpec]] = HARDWARE_PRESETS

#: Fraction of peak FLOP/s a roofline GEMM attains (typical prefill MFU of vLLM is 50-70 %).
FLOPS_EFFICIENCY: Final[float] = 0.6
#: Fraction of peak memory bandwidth attained by weight/KV streaming in decode (~80 %).
BANDWIDTH_EFFICIENCY: Final[float] = 0.8
#: Share of device memory given to weights + KV cache (vLLM's ``gpu_memory_utilization``).
GPU_MEMORY_UTILIZATION: Final[float] = 0.9

#: Folder of the Azure LLM inference trace 2023 (override with ``EDGETWIN_AZURE_LLM_2023``).
AZURE_DIR_ENV: Final[str] = "EDGETWIN_AZURE_LLM_2023"
AZURE_TRACES: Final[dict[str, str]] = {"azure-conv": "conv", "azure-code": "code"}

#: ``profiles`` value selecting only the shipped public profiles of the table cost model
#: (LLMServingSim rtx4090/llama-3.1-8b; Vidur a100/llama-2-7b and a100/llama-3-8b).
PUBLIC_PROFILES: Final[str] = "public"
#: ``profiles`` value naming the profiles measured for this release with ``edgetwin kernels
#: profile`` (``kernels/profiles``, installed as package data), so that the name works from
#: any working directory.
SHIPPED_PROFILES: Final[str] = "shipped"


def shipped_profiles_dir() -> Path:
    """Folder of the shipped measured profiles (``<hardware>/<model>/`` tree).

    Found without importing :mod:`edgetwin.kernels` (which imports torch).
    """
    spec = importlib.util.find_spec("edgetwin.kernels")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the edgetwin.kernels package (shipped profiles) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "profiles"


# ----------------------------------------------------------------------------------------
# Cost model and KV cache size
# ----------------------------------------------------------------------------------------
def param_count(m: TransformerDims) -> float:
    q, kv = m.heads * m.head_dim, m.kv_heads * m.head_dim
    per_layer = m.hidden * (q + 2 * kv) + q * m.hidden + 3 * m.hidden * m.intermediate
    return m.layers * per_layer + 2.0 * m.vocab * m.hidden  # embedding + untied LM head


def default_kv_blocks(model: str, hardware: str | HardwareSpec, block_size: int) -> int:
    """KV blocks that fit next to the weights: ``(0.9·memory − weights) / block bytes``.

    ``hardware`` is a preset id or a declared :class:`HardwareSpec`.

    Activation memory is not reserved (vLLM reserves its profiled peak, a few % more).

    Raises:
        ValueError: Unknown model or hardware, or weights that do not fit.
    """
    if model not in MODEL_DIMS:
        raise ValueError(
            f"no dimensions for model {model!r} to size the KV cache (known: "
            f"{sorted(MODEL_DIMS)}); give --kv-blocks"
        )
    spec = resolve_hardware(hardware)
    if spec is None:
        raise ValueError(
            f"no memory size for hardware {hardware!r} (presets: {', '.join(sorted(HARDWARE))}; "
            "or declare it in a hardware: block); give --kv-blocks"
        )
    if block_size < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    dims = MODEL_DIMS[model]
    free = GPU_MEMORY_UTILIZATION * spec.memory_bytes
    free -= param_count(dims) * dims.dtype_bytes
    n = int(free // (block_size * dims.kv_bytes_per_token()))
    if n < 1:
        raise ValueError(f"model {model!r} does not fit on {spec.name!r}: no room for a KV cache")
    return n


def _table_loaders() -> tuple[Any, Any] | None:
    """``(load_cost_model, load_profile_folder)``, or None without the table cost model."""
    try:
        from edgetwin.sim.compute.profile_loader import load_profile_folder
        from edgetwin.sim.compute.table_cost import load_cost_model
    except ImportError:
        return None
    return load_cost_model, load_profile_folder


def build_cost_model(
    model: str, hardware: str | HardwareSpec, profiles: str | Path | None
) -> tuple[CostModel, dict[str, Any]]:
    """The iteration cost model and a description of it (for ``summary.json``).

    Args:
        model: Model id (e.g. ``"llama-3.1-8b"``).
        hardware: Hardware id (a preset of :data:`HARDWARE`, or any id with profiles, e.g.
            ``cpu``) or a declared :class:`HardwareSpec` (profiles are looked up under its name).
        profiles: Profile folder of any detected format (an EdgeTwin ``<hardware>/<model>/``
            tree, an LLMServingSim ``perf/<GPU>/<org>/<model>/<dtype>/`` folder, a Vidur
            ``profiling/compute/<gpu>/<org>/<model>/`` folder, or an ancestor of one; only it
            is used), ``"shipped"`` for the profiles measured for this release
            (:func:`shipped_profiles_dir`), ``"public"`` for the shipped public profiles, or
            ``None`` for the roofline model.

    Returns:
        The model, and ``kind`` plus, for a folder, the ``format``, ``folder``, ``sha256`` and
        ``tables`` used (``edgetwin.sim.compute.profile_loader.load_profile_folder``).

    Raises:
        ValueError: Unknown model/hardware, or a folder with nothing usable for the pair (one
            line saying what it holds and what was expected).
        FileNotFoundError: A missing profile folder.
    """
    name = hardware_name(hardware)
    if profiles is not None:
        public = str(profiles) == PUBLIC_PROFILES
        folder = shipped_profiles_dir() if str(profiles) == SHIPPED_PROFILES else Path(profiles)
        if not public and not folder.is_dir():
            raise FileNotFoundError(
                f"profile folder not found: {str(profiles)!r} (or give {SHIPPED_PROFILES!r} for "
                f"the profiles measured for this release, {PUBLIC_PROFILES!r} for the shipped "
                "public profiles)"
            )
        loaders = _table_loaders()
        if loaders is not None:
            load_cost_model, load_profile_folder = loaders
            used: dict[str, Any]
            if public:
                cost = load_cost_model(None, model=model, hardware=name)
                used = {"format": "public", "tables": sorted(getattr(cost, "tables", {}))}
            else:
                cost, used = load_profile_folder(folder, model=model, hardware=name)
            return cost, {"kind": "table", "profiles": str(profiles), **used}
        sys.stderr.write(
            "edgetwin: warning: the table cost model (edgetwin.sim.compute.table_cost) is not "
            "available; --profiles is ignored and the roofline model is used\n"
        )
    if model not in MODEL_DIMS:
        raise ValueError(f"unknown model {model!r}; known: {sorted(MODEL_DIMS)}")
    hw = resolve_hardware(hardware)
    if hw is None:
        extra = " ('cpu' is supported with measured profiles only: give --profiles)"
        raise ValueError(
            f"no roofline numbers for hardware {name!r}; presets: {', '.join(sorted(HARDWARE))} "
            "(or declare it in a hardware: block)" + (extra if name == "cpu" else "")
        )
    cost = RooflineCostModel(
        MODEL_DIMS[model],
        peak_flops=hw.dense_flops * FLOPS_EFFICIENCY,
        mem_bandwidth_bytes_per_s=hw.mem_bandwidth_bytes_per_s * BANDWIDTH_EFFICIENCY,
    )
    info = {
        "kind": "roofline",
        "peak_flops": hw.dense_flops,
        "mem_bandwidth_bytes_per_s": hw.mem_bandwidth_bytes_per_s,
        "flops_efficiency": FLOPS_EFFICIENCY,
        "bandwidth_efficiency": BANDWIDTH_EFFICIENCY,
    }
    if profiles is not None:
        info["note"] = "table cost model unavailable; profiles ignored"
    return cost, info


def server_config(spec: ServingSpec) -> ServerConfig:
    """The engine configuration of every replica of ``spec`` (``kv_blocks`` resolved).

    Per-iteration level rows are off: only the exact KV mean/max are reported, so memory stays
    flat in the number of requests.
    """
    kv_blocks = spec.kv_blocks or default_kv_blocks(spec.model, spec.hardware, spec.block_size)
    return ServerConfig(
        max_num_seqs=spec.max_num_seqs,
        max_num_batched_tokens=spec.max_num_batched_tokens,
        block_size=spec.block_size,
        n_blocks=kv_blocks,
        chunked_prefill=spec.chunked_prefill,
        lora=spec.lora,
        reserve_full_sequence=spec.reserve_full_sequence,
        prefix_caching=spec.prefix_caching,
        overhead_s=spec.overhead_s,
        ttft_slo_s=spec.ttft_slo_s,
        tpot_slo_s=spec.tpot_slo_s,
        level_rows="none",
    )


def lora_server_kwargs(spec: ServingSpec) -> dict[str, Any]:
    """What an ``LLMServer`` serving ``spec.lora`` needs: dims, a LoRA cost, a cache policy.

    The ``cache`` policy is a new object per call: call it once per replica.

    The LoRA cost is the SGMV roofline of :func:`~edgetwin.sim.compute.adapter_pool.
    lora_iteration_s` on the declared hardware, derated like the roofline cost model.

    Raises:
        ValueError: A model without dimensions, or hardware without roofline numbers.
    """
    if spec.lora is None:
        return {}
    if spec.model not in MODEL_DIMS:
        raise ValueError(
            f"serving.lora needs the dimensions of model {spec.model!r}; known: "
            f"{', '.join(sorted(MODEL_DIMS))}"
        )
    hw = resolve_hardware(spec.hardware)
    if hw is None:
        raise ValueError(
            f"serving.lora needs roofline numbers for hardware {hardware_name(spec.hardware)!r}; "
            f"presets: {', '.join(sorted(HARDWARE))} (or declare it in a hardware: block)"
        )
    dims = MODEL_DIMS[spec.model]
    cost = functools.partial(
        lora_iteration_s,
        spec=spec.lora.adapter,
        dims=dims,
        peak_flops=hw.dense_flops * FLOPS_EFFICIENCY,
        mem_bandwidth_bytes_per_s=hw.mem_bandwidth_bytes_per_s * BANDWIDTH_EFFICIENCY,
    )
    kwargs: dict[str, Any] = {"dims": dims, "lora_cost": cost}
    if spec.lora.cache_policy is not None:  # a fresh policy object per call: one per replica
        from edgetwin.agents import make_policy
        from edgetwin.scenarios.schema import check_policy_id

        kwargs["cache_policy"] = make_policy(check_policy_id(spec.lora.cache_policy, "cache"))
    return kwargs


def _hardware_record(hardware: str | HardwareSpec) -> dict[str, Any] | None:
    """The declared or preset numbers of the run's hardware (None for a bare id, e.g. cpu)."""
    spec = resolve_hardware(hardware)
    return None if spec is None else spec.model_dump(mode="json")


# ----------------------------------------------------------------------------------------
# Workload
# ----------------------------------------------------------------------------------------
def _read_trace(trace: str) -> pd.DataFrame:
    if trace in AZURE_TRACES:
        folder = Path(os.environ.get(AZURE_DIR_ENV) or shared_data_dir() / "azure_llm_2023")
        path = folder / AZURE_2023_FILES[AZURE_TRACES[trace]]
        if not path.is_file():
            raise FileNotFoundError(
                f"Azure LLM 2023 trace {trace!r} not found at {str(path)!r}; download "
                f"{path.name} from github.com/Azure/AzurePublicDataset (data/) and set "
                f"{AZURE_DIR_ENV} to its folder"
            )
        return load_azure_llm_2023(path)
    path = Path(trace).expanduser()
    if not path.is_file():
        known = ", ".join(AZURE_TRACES)
        raise FileNotFoundError(f"trace file not found: {trace!r} (or give one of: {known})")
    kind = _trace_format(path)
    if kind == "mooncake":
        return load_mooncake(path).drop(columns="hash_ids")
    if kind == "azure":
        return load_azure_llm_2023(path)
    if kind == "servegen":
        raise ValueError(
            f"trace {trace!r} holds ServeGen client windows (arrival-process parameters), not "
            "requests; give a request trace: CSV arrival_s,prompt_tokens,output_tokens, an Azure "
            "LLM 2023 CSV or a Mooncake JSONL (or draw arrivals in Python with "
            "edgetwin.sim.workload.servegen.servegen_arrivals)"
        )
    return load_request_csv(path)  # it names an empty, binary or malformed file itself


def _trace_format(path: Path) -> str:
    """``"mooncake"`` (JSON lines), ``"azure"``, ``"servegen"`` or ``"csv"``, from its start."""
    with path.open("rb") as f:
        head = f.read(65536).decode("utf-8", errors="replace").lstrip()
    if head.startswith("{"):
        return "mooncake"
    header = {c.strip() for c in head.partition("\n")[0].split(",")}
    if set(AZURE_2023_COLUMNS) <= header:
        return "azure"
    if set(SERVEGEN_COLUMNS) <= header:
        return "servegen"
    return "csv"


def load_workload(spec: WorkloadSpec, streams: RandomStreams) -> pd.DataFrame:
    """The requests of a workload: ``arrival_s, prompt_tokens, output_tokens`` (``adapter``).

    ``adapter`` (a LoRA adapter id per request) only with ``spec.adapters``.

    Args:
        spec: A trace (path or Azure name) or an arrival process with length distributions.
        streams: Random streams of the run (``arrivals``, ``prompt_tokens``, ``output_tokens``).

    Raises:
        FileNotFoundError: A missing trace file.
        ValueError: A malformed trace or an empty workload.
    """
    if spec.trace is not None:
        df = _read_trace(spec.trace)
    else:
        assert spec.arrival is not None
        assert spec.prompt_tokens is not None
        assert spec.output_tokens is not None
        a = spec.arrival
        rng = streams.get("arrivals")
        size = {"n": a.n_requests} if a.n_requests is not None else {"horizon_s": a.duration_s}
        if a.process == "poisson":
            t = poisson_arrivals(rng, a.rate_rps, **size)
        else:
            t = gamma_arrivals(rng, a.rate_rps, a.cv, **size)
        lengths = []
        for key, ls in (
            ("prompt_tokens", spec.prompt_tokens),
            ("output_tokens", spec.output_tokens),
        ):
            if ls.dist == "fixed":
                lengths.append(fixed_lengths(len(t), round(ls.mean)))
            else:
                lengths.append(geometric_lengths(streams.get(key), ls.mean, len(t)))
        df = pd.DataFrame(
            {"arrival_s": t, "prompt_tokens": lengths[0], "output_tokens": lengths[1]}
        )
    if spec.max_requests is not None:
        df = df.iloc[: spec.max_requests].reset_index(drop=True)
    if df.empty:
        raise ValueError("the workload has no requests")
    if spec.adapters is not None:
        # each request's task names its adapter, in arrival order (its own stream: the same
        # tasks for every policy); sorted first so that the k-th arrival gets the k-th task
        from edgetwin.sim.compute.adapter_utility import AdapterUtilityModel

        df = df.sort_values("arrival_s", kind="stable").reset_index(drop=True)
        seed = int(streams.get("adapters").integers(2**31))
        tasks = AdapterUtilityModel(spec.adapters, seed=seed).source().take(len(df)).task
        df["adapter"] = np.asarray(tasks, dtype=np.int64)
    return df


@dataclass
class AdapterRoutingPlan:
    """Per-request routing of a serving run (``workload.adapters.router``).

    Attributes:
        route_id: The registered route policy id.
        kwargs: Its keyword arguments from the scenario.
        contexts: The requests' tasks and contexts, shared by the replicas (the model seeded
            as :func:`load_workload`'s ``adapter`` column: request k's task is the k-th).
        seed: Seed of the policies (each replica's router is reset with it).
    """

    route_id: str
    kwargs: dict[str, Any]
    contexts: AdapterContexts
    seed: int

    def server_kwargs(self) -> dict[str, Any]:
        """``route_policy`` (a fresh router per replica) and ``adapter_contexts``."""
        from edgetwin.agents.baselines.route import bind_router

        model = self.contexts.model
        policy = bind_router(
            self.route_id,
            self.kwargs,
            latency_weight_per_s=model.config.latency_weight_per_s,
            theta=model.theta,
        )
        policy.reset(seed=self.seed)
        return {"route_policy": policy, "adapter_contexts": self.contexts}

    def merge(self, req: pd.DataFrame, servers: list[LLMServer]) -> pd.DataFrame:
        """The run's request table with every replica's routing record (by id)."""
        routes = pd.concat([srv.routing.table() for srv in servers if srv.routing is not None])
        out = req.drop(columns="adapter", errors="ignore").merge(
            routes, on="id", how="left", validate="one_to_one"
        )
        for col in ("task", "adapter"):  # requests that never reached a server: -1
            out[col] = out[col].fillna(-1).astype(np.int64)
        out["route_hit"] = out["route_hit"].astype("boolean").fillna(False).astype(bool)
        return out


def adapter_routing(
    adapters: WorkloadAdapters | None, streams: RandomStreams
) -> AdapterRoutingPlan | None:
    """The routing plan of ``adapters.router`` (None without a router).

    The utility model is seeded from the first draw of the ``adapters`` stream, as
    :func:`load_workload`'s tasks, so that the k-th arrival's task is the workload's k-th.
    """
    ad = adapters
    if ad is None or ad.router is None:
        return None
    from edgetwin.scenarios.serving_schema import route_policy
    from edgetwin.sim.compute.adapter_utility import AdapterUtilityModel

    route_id, kwargs = route_policy(ad.router)
    seed = int(streams.fresh("adapters").integers(2**31))
    model = AdapterUtilityModel(ad, seed=seed)
    policy_seed = int(streams.fresh("policy.route").integers(2**31))
    return AdapterRoutingPlan(route_id, kwargs, AdapterContexts(model), policy_seed)


# ----------------------------------------------------------------------------------------
# Simulation
# ----------------------------------------------------------------------------------------
@dataclass
class ServingRun:
    """Result of :func:`simulate`.

    Attributes:
        config: The resolved configuration (``serving.kv_blocks`` filled in).
        requests: One row per request (``status``: finished, unfinished, rejected, or
            not_arrived before ``horizon_s``; ``replica`` -1 for the last).
        summary: Headline metrics (see :func:`_metrics`).
        cost_model: Description of the cost model used.
        wall_s: Wall-clock seconds of the simulation (loading excluded).
        scheduler: Registered id of the request scheduler, ``None`` for the built-in FCFS.
    """

    config: ServingScenarioConfig
    requests: pd.DataFrame
    summary: dict[str, Any]
    cost_model: dict[str, Any]
    wall_s: float
    scheduler: str | None = None


_STATS_COLUMNS: Final[tuple[str, ...]] = ("ttft_s", "tpot_s", "e2e_s", "queueing_s")


def _metrics(
    req: pd.DataFrame,
    makespan_s: float,
    ttft_slo_s: float | None,
    tpot_slo_s: float | None,
) -> dict[str, Any]:
    """Headline metrics from the request table (SLO semantics as ``LLMServer.results``)."""
    fin = req[req["status"] == "finished"]
    ok = np.ones(len(fin), dtype=bool)
    if ttft_slo_s is not None:
        ok &= fin["ttft_s"].to_numpy() <= ttft_slo_s
    if tpot_slo_s is not None:
        tp = fin["tpot_s"].to_numpy()
        ok &= np.isnan(tp) | (tp <= tpot_slo_s)
    per_s = (lambda x: x / makespan_s) if makespan_s > 0 else (lambda x: math.nan)
    out: dict[str, Any] = {
        "n_requests": len(req),
        "n_finished": len(fin),
        "n_unfinished": int((req["status"] == "unfinished").sum()),
        "n_rejected": int((req["status"] == "rejected").sum()),
        "n_not_arrived": int((req["status"] == "not_arrived").sum()),
        "makespan_s": makespan_s,
        "throughput_rps": per_s(len(fin)),
        "throughput_tokens_per_s": per_s(float(req["generated_tokens"].sum())),
        "ttft_slo_s": ttft_slo_s,
        "tpot_slo_s": tpot_slo_s,
        "slo_attainment": float(ok.mean()) if len(fin) else math.nan,
        "goodput_rps": per_s(float(ok.sum())),
    }
    for col in _STATS_COLUMNS:
        x = fin[col].to_numpy(dtype=np.float64)
        x = x[~np.isnan(x)]
        name = col.removesuffix("_s")
        if x.size:
            p50, p90, p99 = np.percentile(x, [50, 90, 99])
            out.update(
                {
                    f"{name}_mean_s": float(x.mean()),
                    f"{name}_p50_s": float(p50),
                    f"{name}_p90_s": float(p90),
                    f"{name}_p99_s": float(p99),
                }
            )
        else:
            out.update({f"{name}_{k}_s": math.nan for k in ("mean", "p50", "p90", "p99")})
    return out


def _scheduler_id(scheduler: str | None) -> str | None:
    """Resolve ``--scheduler`` (short name within ``serve`` or full id) to a registered id."""
    if scheduler is None:
        return None
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be a policy id (str) or None, got {scheduler!r}")
    from edgetwin.scenarios.schema import check_policy_id

    return check_policy_id(scheduler, "serve")


def simulate(
    config: ServingScenarioConfig,
    scheduler: str | None = None,
    progress: Callable[[float], None] | None = None,
    n_chunks: int = 50,
) -> ServingRun:
    """Run a serving scenario until every request is done (or ``horizon_s``).

    Args:
        config: The scenario.
        scheduler: Request scheduler of every replica: a ``"serve"`` policy id or short name
            (``"sjf"``); ``None`` for the built-in FCFS.
        progress: Called with the fraction of requests submitted so far after each of the first
            ``n_chunks - 1`` equal slices of the arrival span and once at the end of the run
            (a progress bar, or the soak benchmark's memory sampler).
        n_chunks: Number of slices (``progress`` only).

    Raises:
        ValueError: Bad model/hardware/profiles, an unknown scheduler (a
            ``PolicyRegistryError`` listing the allowed ids) or an empty workload.
        FileNotFoundError: A missing trace or profile folder.
    """
    if not isinstance(config, ServingScenarioConfig):
        raise TypeError(
            "config must be a ServingScenarioConfig (see serving_schema.validate_serving), got "
            f"{type(config).__name__}"
        )
    scheduler_id = _scheduler_id(scheduler)
    s = config.serving
    streams = RandomStreams(config.seed)
    cost, cost_info = build_cost_model(s.model, s.hardware, s.profiles)
    kv_blocks = s.kv_blocks or default_kv_blocks(s.model, s.hardware, s.block_size)
    config = config.model_copy(update={"serving": s.model_copy(update={"kv_blocks": kv_blocks})})
    s = config.serving
    work = load_workload(config.workload, streams)
    routing = adapter_routing(config.workload.adapters, streams)
    # the requests' columns, allocated once; Request objects exist only while in a server
    log = RequestLog(
        work["arrival_s"],
        work["prompt_tokens"],
        work["output_tokens"],
        adapter=None if routing is not None else work.get("adapter"),
    )
    del work
    n_total = len(log)

    env = simpy.Environment()
    server_cfg = server_config(s)
    all_done = env.event()
    n_done = [0]

    def _count(_: Request | None = None) -> None:
        n_done[0] += 1
        if n_done[0] >= n_total and not all_done.triggered:
            all_done.succeed()

    def _policy() -> Any:
        if scheduler_id is None:
            return None
        from edgetwin.agents import make_policy

        policy = make_policy(scheduler_id)
        policy.reset(seed=config.seed)
        return policy

    servers = [
        LLMServer(
            env,
            server_cfg,
            cost,
            name=f"server{i}",
            on_complete=_count,
            scheduler=_policy(),
            request_log=log,
            replica=i,
            **lora_server_kwargs(s),
            **(routing.server_kwargs() if routing is not None else {}),
        )
        for i in range(s.replicas)
    ]
    router = Router(servers, s.router, rng=streams.get("routing"))

    def _submit(req: Request) -> None:
        k = router.choose()
        router.n_routed[k] += 1
        if not servers[k].submit(req):
            _count()

    source = WorkloadSource(env, log, _submit)
    for srv in servers:
        srv.start()
    source.start()
    t0 = time.perf_counter()
    until = all_done if config.horizon_s is None else all_done | env.timeout(config.horizon_s)
    if progress is not None:  # slices of the arrival span (a time stop never reorders events)
        span_s = float(log.arrival_s[-1])
        if config.horizon_s is not None:
            span_s = min(span_s, config.horizon_s)
        for i in range(1, n_chunks):
            if span_s * i / n_chunks > env.now:
                env.run(until=span_s * i / n_chunks)
            progress(source.n_submitted / n_total)
    env.run(until=until)
    if progress is not None:
        progress(source.n_submitted / n_total)
    wall_s = time.perf_counter() - t0
    end_s = env.now
    for srv in servers:
        srv.finalize(end_s)

    kv_mean = [srv.levels.mean("kv_blocks_used") / kv_blocks for srv in servers]
    kv_max = [srv.levels.max("kv_blocks_used") / kv_blocks for srv in servers]
    req = log.table()
    if routing is not None:
        req = routing.merge(req, servers)
    summary = _metrics(req, end_s, s.ttft_slo_s, s.tpot_slo_s)
    pools = [srv.adapters.summary() for srv in servers if srv.adapters is not None]
    if pools:  # the adapter tiers of all replicas: loads summed, hit ratio over all lookups
        hits = sum(int(srv.adapters.n_hits.sum()) for srv in servers if srv.adapters is not None)
        misses = sum(
            int(srv.adapters.n_misses.sum()) for srv in servers if srv.adapters is not None
        )
        summary["lora_hit_ratio"] = hits / (hits + misses) if hits + misses else math.nan
        for key in ("lora_loads", "lora_disk_loads", "lora_load_busy_s"):
            summary[key] = float(sum(p[key] for p in pools))
    if routing is not None:
        summary["router"] = routing.route_id
        summary.update(route_summary(req))
    if summary["n_rejected"]:
        limit = (
            "" if s.chunked_prefill else f" or max_num_batched_tokens={s.max_num_batched_tokens}"
        )
        warnings.warn(
            f"{summary['n_rejected']} of {n_total} requests were rejected (status 'rejected' in "
            f"requests.csv): prompt + output tokens exceed the KV cache ({kv_blocks} blocks of "
            f"{s.block_size} tokens){limit}; raise kv_blocks"
            + ("" if s.chunked_prefill else ", max_num_batched_tokens or use chunked prefill"),
            stacklevel=2,
        )
    summary.update(
        {
            "kv_blocks": kv_blocks,
            "kv_usage_mean": float(np.mean(kv_mean)),
            "kv_usage_max": float(np.max(kv_max)),
            "n_iterations": sum(srv.n_iterations for srv in servers),
            "n_preemptions": sum(srv.n_preemptions for srv in servers),
        }
    )
    if s.replicas > 1:
        summary["n_routed"] = [int(c) for c in router.n_routed]
    return ServingRun(config, req, summary, cost_info, wall_s, scheduler_id)


# ----------------------------------------------------------------------------------------
# Result files
# ----------------------------------------------------------------------------------------
def _inputs(config: ServingScenarioConfig, run: ServingRun) -> dict[str, Any]:
    w = config.workload
    req = run.requests
    out: dict[str, Any] = {"trace": w.trace, "max_requests": w.max_requests}
    if w.trace is None:
        out["generator"] = {
            "arrival": w.arrival.model_dump() if w.arrival else None,
            "prompt_tokens": w.prompt_tokens.model_dump() if w.prompt_tokens else None,
            "output_tokens": w.output_tokens.model_dump() if w.output_tokens else None,
        }
    out.update(
        {
            "n_requests": len(req),
            "last_arrival_s": float(req["arrival_s"].max()),
            "prompt_tokens_mean": float(req["prompt_tokens"].mean()),
            "output_tokens_mean": float(req["output_tokens"].mean()),
        }
    )
    return out


def run_serving(
    config: ServingScenarioConfig,
    out_dir: str | Path | None = None,
    scheduler: str | None = None,
    notify: Callable[[str], None] | None = None,
    progress: bool = False,
) -> tuple[ServingRun, dict[str, Any]]:
    """Simulate ``config`` and, with ``out_dir``, write its result directory atomically.

    Args:
        config: The scenario.
        out_dir: Result directory (replaced atomically); ``None`` writes nothing.
        scheduler: Request scheduler (see :func:`simulate`).
        progress: Show a progress bar (requests submitted) on stderr.
        notify: Called with one line when an existing result is replaced (see
            :func:`edgetwin.scenarios.run.atomic_dir`); the CLI prints it.

    Returns:
        The run and the content of ``summary.json``.

    Raises:
        ValueError: A bad ``out_dir`` (:func:`~edgetwin.scenarios.run.check_output_dir`),
            before the simulation runs.
    """
    if out_dir is not None:  # fail at once, not after a long replay
        check_output_dir(out_dir)
    t0 = time.perf_counter()
    with _progress_bar(progress, f"{config.name}: requests") as update:
        run = simulate(config, scheduler=scheduler, progress=update)
    cfg = run.config
    summary = _jsonable(
        {
            "scenario": cfg.name,
            "description": cfg.description,
            "seed": cfg.seed,
            "model": cfg.serving.model,
            "hardware": hardware_name(cfg.serving.hardware),
            "hardware_spec": _hardware_record(cfg.serving.hardware),
            "replicas": cfg.serving.replicas,
            "router": cfg.serving.router,
            "scheduler": run.scheduler or "fcfs (built-in)",
            "cost_model": run.cost_model,
            "inputs": _inputs(cfg, run),
            "metrics": run.summary,
            "wall_s": run.wall_s,
            "total_wall_s": time.perf_counter() - t0,
            "sim_requests_per_wall_s": len(run.requests) / run.wall_s if run.wall_s > 0 else None,
            "versions": versions(),
            "git_commit": git_commit(),
        }
    )
    if out_dir is not None:
        from edgetwin.scenarios.load import dump_yaml

        with atomic_dir(out_dir, notify) as tmp:
            _write_text(tmp / "config.resolved.yaml", dump_yaml(cfg.model_dump(mode="json")))
            _write_text(tmp / "requests.csv", run.requests.to_csv(index=False))
            _write_text(tmp / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return run, summary


def summary_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows of the short table printed by the CLI."""
    m = summary["metrics"]

    def ms(key: str) -> str:
        v = m.get(key)
        return "n/a" if v is None else f"{1e3 * v:.1f}"

    rows = [
        ("requests (finished/total)", f"{m['n_finished']}/{m['n_requests']}"),
        (
            "rejected / unfinished / not arrived",
            f"{m['n_rejected']} / {m['n_unfinished']} / {m['n_not_arrived']}",
        ),
    ]
    rows.extend(
        (
            f"{name.upper()} mean/p50/p90/p99 (ms)",
            " / ".join(ms(f"{name}_{k}_s") for k in ("mean", "p50", "p90", "p99")),
        )
        for name in ("ttft", "tpot", "e2e")
    )
    tput = m.get("throughput_rps")
    toks = m.get("throughput_tokens_per_s")
    rows += [
        ("throughput (req/s, tok/s)", f"{tput or 0:.3f}, {toks or 0:.1f}"),
        ("KV usage mean/max", f"{m['kv_usage_mean']:.3f} / {m['kv_usage_max']:.3f}"),
        ("preemptions", str(m["n_preemptions"])),
    ]
    if m.get("ttft_slo_s") is not None or m.get("tpot_slo_s") is not None:
        att = m.get("slo_attainment")
        rows.append(
            (
                "SLO attainment, goodput (req/s)",
                f"{'n/a' if att is None else f'{att:.3f}'}, {m.get('goodput_rps') or 0:.3f}",
            )
        )
    return rows
