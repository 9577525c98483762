"""Schema of an LLM-serving scenario: ``serving:`` and ``workload:`` sections.

``serving:`` holds the engine, model, hardware and replicas; ``workload:`` a trace or a generated
arrival process with token-length distributions.

A scenario YAML with a top-level ``serving:`` key is a :class:`ServingScenarioConfig`; the
``edgetwin run`` command detects it with :func:`is_serving_scenario` and hands it to
:mod:`edgetwin.scenarios.serve` (the 5G cell scenarios keep :class:`ScenarioConfig`).

Example::

    name: azure_conv_serving
    seed: 0
    serving:
      model: llama-3.1-8b
      hardware: rtx4090
      max_num_seqs: 64
    workload:
      trace: azure-conv
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from edgetwin.sim.compute.adapter_pool import LoraServingConfig
from edgetwin.sim.compute.adapter_utility import AdapterUtilityConfig
from edgetwin.sim.compute.hardware import HardwareSpec, resolve_hardware
from edgetwin.sim.configbase import StrictConfig, check_path_name
from edgetwin.sim.rng import MAX_SEED

__all__ = [
    "MAX_REQUESTS",
    "ArrivalSpec",
    "LengthSpec",
    "ServingOutput",
    "ServingScenarioConfig",
    "ServingSpec",
    "WorkloadAdapters",
    "WorkloadSpec",
    "is_serving_scenario",
    "validate_serving",
]

RouterName = Literal["round_robin", "random", "least_outstanding", "least_kv"]

#: Most requests a generated workload may hold (as ``n_requests``, or expected from
#: ``rate_rps * duration_s``): each request is a row in memory (and in requests.csv), so a
#: typo such as ``duration_s: 1e9`` would otherwise exhaust memory instead of failing.
MAX_REQUESTS = 100_000_000


class _Frozen(StrictConfig):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServingSpec(_Frozen):
    """Replicas of a vLLM-like engine serving one model on one kind of hardware."""

    model: str = Field(
        "llama-3.1-8b", min_length=1, description="Model id, e.g. llama-3.1-8b, llama-2-7b."
    )
    hardware: str | HardwareSpec = Field(
        "rtx4090",
        description="A preset id (a100, h100, h200, l40s, rtx4090, rtx-pro-6000, a6000, "
        "rtx3090), any id with profiles (e.g. cpu), or a declared block {name, memory_bytes, "
        "mem_bandwidth_bytes_per_s, peak_flops: {bf16: ...}, interconnect_bandwidth_bytes_per_s, "
        "interconnect_latency_s, power_w, source}.",
    )

    @field_validator("hardware", mode="before")
    @classmethod
    def _hardware_id_or_block(cls, value: Any) -> Any:
        """A block is validated here, so its error names the block's field (not the union)."""
        if isinstance(value, Mapping):
            return resolve_hardware(value)
        if isinstance(value, str) and not value.strip():
            raise ValueError("hardware must be a non-empty id or a hardware block")
        return value

    profiles: str | None = Field(
        None,
        min_length=1,
        description="Table cost model: a profile folder (EdgeTwin, LLMServingSim or Vidur format, "
        "detected; only it is used), 'shipped' or 'public'; None: roofline.",
    )
    replicas: int = Field(1, ge=1, le=1024, description="Number of server replicas.")
    router: RouterName = Field("least_outstanding", description="Routing over replicas.")
    max_num_seqs: int = Field(256, ge=1, le=1_000_000)
    max_num_batched_tokens: int = Field(8192, ge=1, le=10_000_000)
    block_size: int = Field(16, ge=1, le=4096)
    kv_blocks: int | None = Field(
        None, ge=1, le=100_000_000, description="KV blocks per replica; None: from GPU memory."
    )
    chunked_prefill: bool = False
    lora: LoraServingConfig | None = Field(
        None, description="LoRA adapters: library, GPU slots, host tier, load costs."
    )
    reserve_full_sequence: bool = Field(
        True,
        description="Admit a waiting request only if its whole sequence's KV blocks are free "
        "(vLLM scheduler_reserve_full_isl, on by default).",
    )
    prefix_caching: bool = Field(
        True,
        description="Automatic prefix caching (vLLM v1 default): a preempted request reuses its "
        "blocks not yet evicted.",
    )
    overhead_s: float = Field(0.0, ge=0, le=10, description="Added to every iteration (s).")

    @model_validator(mode="after")
    def _known_cache_policy(self) -> ServingSpec:
        """``lora.cache_policy`` names a registered ``cache`` policy (one line otherwise)."""
        if self.lora is not None and self.lora.cache_policy is not None:
            from edgetwin.scenarios.schema import check_policy_id

            check_policy_id(self.lora.cache_policy, "cache")
        return self

    ttft_slo_s: float | None = Field(None, gt=0)
    tpot_slo_s: float | None = Field(None, gt=0)


class ArrivalSpec(_Frozen):
    """A generated renewal arrival process (Poisson or Gamma gaps)."""

    process: Literal["poisson", "gamma"] = "poisson"
    rate_rps: float = Field(..., gt=0, le=1e6)
    cv: float = Field(1.0, gt=0, le=100, description="Gamma coefficient of variation.")
    n_requests: int | None = Field(None, ge=1, le=MAX_REQUESTS)
    duration_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_size(self) -> ArrivalSpec:
        if (self.n_requests is None) == (self.duration_s is None):
            raise ValueError("give exactly one of n_requests and duration_s")
        if self.duration_s is not None and self.rate_rps * self.duration_s > MAX_REQUESTS:
            raise ValueError(
                f"rate_rps * duration_s = {self.rate_rps * self.duration_s:.3g} expected "
                f"requests; allowed: at most {MAX_REQUESTS}"
            )
        return self


class LengthSpec(_Frozen):
    """Token-length distribution: fixed or geometric with the given mean."""

    dist: Literal["fixed", "geometric"] = "fixed"
    mean: float = Field(..., ge=1, le=10_000_000)

    @model_validator(mode="after")
    def _whole_fixed_length(self) -> LengthSpec:
        """A fixed length is a token count: ``mean: 1.5`` would be rounded without a word."""
        if self.dist == "fixed" and not float(self.mean).is_integer():
            raise ValueError(
                f"mean={self.mean:g} is not a whole number of tokens; allowed: an integer for "
                "dist: fixed (a fractional mean needs dist: geometric)"
            )
        return self


class WorkloadAdapters(AdapterUtilityConfig):
    """``workload.adapters``: the utility model of the adapters, and who picks them.

    Without ``router`` each request runs on its own task's adapter (the ``adapter`` column).
    With ``router`` every request carries its task and a context ``x ∈ R^d`` drawn from the
    same seeded model, and each replica's ``route`` decision point asks the router which
    adapter serves it (``sim/compute/adapter_route.py``); ``route/cache_aware`` and
    ``route/oracle`` weigh paging with this section's ``latency_weight_per_s`` unless the id's
    keywords give it, and ``route/oracle`` knows the hidden θ.
    """

    router: str | None = Field(
        None,
        min_length=1,
        description="A route policy id or short name (fixed, linucb, cache_aware, greedy, "
        "oracle; ID:key=value for keywords) routing each request by its context; None: each "
        "request on its own task's adapter.",
    )

    @field_validator("router")
    @classmethod
    def _known_router(cls, value: str | None) -> str | None:
        """Resolve to a registered ``route/...`` id now (one line naming the allowed ids)."""
        if value is None:
            return None
        route_id, kwargs = route_policy(value)
        from edgetwin.agents.registry import check_policy_kwargs

        check_policy_kwargs(route_id, kwargs, "workload.adapters.router")
        return value


def route_policy(text: str) -> tuple[str, dict[str, Any]]:
    """A ``router`` string (``ID``, short name, ``ID:key=value``) → (registered id, kwargs)."""
    from edgetwin.scenarios.schema import check_policy_id, split_policy_string

    name, kwargs = split_policy_string(text)
    return check_policy_id(name, "route"), kwargs


class WorkloadSpec(_Frozen):
    """Either ``trace`` (CSV path, ``azure-conv`` or ``azure-code``) or a generator."""

    trace: str | None = Field(None, min_length=1, description="CSV path, azure-conv, azure-code.")
    max_requests: int | None = Field(None, ge=1, description="Keep the first N requests.")
    arrival: ArrivalSpec | None = None
    prompt_tokens: LengthSpec | None = None
    output_tokens: LengthSpec | None = None
    adapters: WorkloadAdapters | None = Field(
        None,
        description="Give each request a LoRA adapter: its task drawn by Zipf popularity "
        "(stationary or drifting) over n_adapters (needs serving.lora); with router, a "
        "context per request and per-request routing in the servers.",
    )

    @model_validator(mode="after")
    def _trace_or_generator(self) -> WorkloadSpec:
        generated = (self.arrival, self.prompt_tokens, self.output_tokens)
        if self.trace is not None and any(g is not None for g in generated):
            raise ValueError("give either trace or arrival/prompt_tokens/output_tokens, not both")
        if self.trace is None and any(g is None for g in generated):
            raise ValueError("give trace, or all of arrival, prompt_tokens and output_tokens")
        return self


class ServingOutput(_Frozen):
    """Where and how results are written."""

    dir: str | None = None
    progress: bool | None = Field(
        default=None, description="Show a progress bar; null = only when stderr is a terminal."
    )


class ServingScenarioConfig(_Frozen):
    """An LLM-serving scenario (see the module docstring)."""

    name: str = Field("serve", min_length=1, max_length=100)
    description: str = ""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    horizon_s: float | None = Field(
        None, gt=0, description="Stop at this simulated time; None: run until drained."
    )
    serving: ServingSpec = ServingSpec()
    workload: WorkloadSpec
    output: ServingOutput = ServingOutput()

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        return check_path_name(name)

    @model_validator(mode="after")
    def _adapters_match(self) -> ServingScenarioConfig:
        check_adapters(self.serving.lora, self.workload.adapters, "serving.lora")
        return self


def check_adapters(
    lora: LoraServingConfig | None, adapters: AdapterUtilityConfig | None, where: str
) -> None:
    """A workload with adapters needs servers with the same library.

    Raises:
        ValueError: One line naming both fields.
    """
    if adapters is None:
        return
    if lora is None:
        raise ValueError(f"workload.adapters needs {where} (the servers' adapter library)")
    if adapters.n_adapters != lora.n_adapters:
        raise ValueError(
            f"workload.adapters.n_adapters={adapters.n_adapters} differs from "
            f"{where}.n_adapters={lora.n_adapters}; they name the same library"
        )


def is_serving_scenario(raw: Any) -> bool:
    """True when the parsed YAML ``raw`` is a serving scenario (has a ``serving:`` key)."""
    return isinstance(raw, Mapping) and "serving" in raw


def validate_serving(raw: Mapping[str, Any], *, source: str = "<mapping>") -> ServingScenarioConfig:
    """Validate a raw serving scenario.

    Raises:
        ScenarioError: Naming every bad field by dotted path with its message.
    """
    from edgetwin.scenarios.load import format_validation_error  # load imports the 5G schema

    try:
        return ServingScenarioConfig.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(
            exc, source, ServingScenarioConfig, "serving scenario"
        ) from None
