"""The scenario schema: one validated, frozen model composing the component configs (§4.6).

YAML is data, the schema is code. Each component's config lives next to the component that
consumes it (``CellConfig`` in ``sim/radio/config.py``, ...); this module only composes them and
adds what belongs to a *run*: its name, duration, seed, policies and output options.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from edgetwin.scenarios.edge_cloud_schema import (
    NetworkConfig,
    NodesConfig,
    SpecDecConfig,
    UeWorkloadConfig,
)
from edgetwin.sim.configbase import StrictConfig, check_path_name
from edgetwin.sim.radio.channel import ChannelConfig
from edgetwin.sim.radio.config import CellConfig, UplinkConfig
from edgetwin.sim.radio.geometry import TopologyConfig
from edgetwin.sim.radio.mobility import MobilityConfig
from edgetwin.sim.radio.numerology import slot_duration_s
from edgetwin.sim.radio.traffic import FullBufferTraffic, TrafficConfig
from edgetwin.sim.rng import MAX_SEED

#: Decision families a scenario attaches policies to, with their default policy ids.
DEFAULT_POLICIES: dict[str, str] = {
    "prb": "prb/pf",
    "power": "power/equal",
    "ul_prb": "ul_prb/pf",
    "offload": "offload/min_latency",
    "draft": "draft/fixed",
}


def _registered_ids(family: str) -> list[str]:
    """Registered policy ids of ``family`` (imports the light registry only when needed)."""
    from edgetwin.agents import policy_ids  # lazy: the schema stays importable on its own

    return list(policy_ids(family))


def check_policy_id(name: str, family: str) -> str:
    """Resolve a policy name of ``family`` to its registered id.

    Args:
        name: A full id (``"prb/pf"``) or a short name (``"pf"``) of ``family``.
        family: Decision family (``"prb"``, ``"power"``).

    Returns:
        The full registered id.

    Raises:
        PolicyRegistryError: (a ``ValueError``) naming the unknown id, the closest registered id
            and all allowed ids.
    """
    from edgetwin.agents import resolve_policy_id
    from edgetwin.agents.registry import PolicyRegistryError

    name = name.strip()
    policy_id = resolve_policy_id(name, family)
    allowed = _registered_ids(family)
    if policy_id in allowed:
        return policy_id
    if policy_id.split("/", 1)[0] != family:
        raise PolicyRegistryError(
            f"policy {name!r} is not a {family!r} policy; allowed: {', '.join(allowed) or 'none'}"
        )
    close = difflib.get_close_matches(policy_id, allowed, n=1, cutoff=0.4)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise PolicyRegistryError(
        f"unknown {family} policy {name!r}{hint}; allowed: {', '.join(allowed) or 'none'}"
    )


class PolicyRef(BaseModel):
    """A registered policy and the keyword arguments to build it with.

    In YAML either a string (``pf`` or ``prb/pf``) or a mapping ``{id: prb/pf, kwargs: {...}}``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(
        description="Registered policy id 'family/name' (a short name is resolved in its family)."
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments overriding the policy's defaults."
    )

    @property
    def label(self) -> str:
        """The id, with its keyword arguments when any (for tables and plots)."""
        if not self.kwargs:
            return self.id
        args = ",".join(f"{k}={v}" for k, v in sorted(self.kwargs.items()))
        return f"{self.id}({args})"


#: Keyword argument that the ``ARG`` of a policy string ``ID:ARG`` sets (``prb=ppo:model.pt``).
POLICY_ARG_KWARG = "path"

#: ``ARG`` of ``ID:ARG`` holds keyword arguments when it starts with ``identifier=``; a path
#: (``runs/lr=3/m.pt``, ``C:/m.pt``) never does, so ``ppo:PATH`` keeps working.
_KWARG_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$", re.DOTALL)

_POLICY_SYNTAX = (
    "ID or ID:ARG, ARG a PATH or key=value[:key=value...], e.g. pf, ppo:runs/m.pt, pf:beta=0.99"
)


def _policy_syntax_error(text: str, problem: str) -> Exception:
    from edgetwin.agents.registry import PolicyRegistryError

    return PolicyRegistryError(f"policy {text!r}: {problem}; expected {_POLICY_SYNTAX}")


def _kwarg_value(text: str) -> Any:
    """A keyword value as YAML reads it (``0.99`` → float, ``true`` → bool, ``x`` → str)."""
    import yaml

    from edgetwin.scenarios.load import parse_yaml

    try:
        return parse_yaml(text)
    except yaml.YAMLError:  # kept as the text the user typed; the constructor judges it
        return text


def _split_kwargs(text: str, arg: str) -> dict[str, Any]:
    """``"beta=0.9:initial_rate_bps=2"`` → ``{"beta": 0.9, "initial_rate_bps": 2}``."""
    kwargs: dict[str, Any] = {}
    for item in arg.split(":"):
        match = _KWARG_ITEM.match(item)
        if match is None or not match.group(2).strip():
            raise _policy_syntax_error(text, f"{item!r} is not key=value")
        key, value = match.group(1), match.group(2).strip()
        if key in kwargs:
            raise _policy_syntax_error(text, f"the keyword {key!r} is given twice")
        kwargs[key] = _kwarg_value(value)
    return kwargs


def split_policy_string(text: str) -> tuple[str, dict[str, Any]]:
    """Split a policy string ``ID``, ``ID:PATH`` or ``ID:key=value[:key=value...]``.

    ``"ppo:runs/x/model.pt"`` → ``("ppo", {"path": "runs/x/model.pt"})``; ``"pf:beta=0.99"`` →
    ``("pf", {"beta": 0.99})``; ``"pf"`` → ``("pf", {})``. Only the first ``:`` splits off
    ``ARG``; ``ARG`` is keyword arguments when it starts with ``identifier=`` (values are read
    as YAML scalars), else it is the ``path`` (which may contain colons). ``:`` rather than
    ``,`` joins keywords because ``,`` already separates the sets of ``--policies``.

    Raises:
        PolicyRegistryError: (a ``ValueError``) for an empty id or ``ARG``, an item that is not
            ``key=value``, or a keyword given twice; the message shows the syntax.
    """
    name, sep, arg = (x.strip() for x in text.partition(":"))
    if not sep:
        return name, {}
    if not name or not arg:
        raise _policy_syntax_error(text, "empty id or argument")
    if _KWARG_ITEM.match(arg.split(":", 1)[0]):
        return name, _split_kwargs(text, arg)
    return name, {POLICY_ARG_KWARG: arg}


def _as_policy_ref(value: Any) -> Any:
    if isinstance(value, str):
        name, kwargs = split_policy_string(value)
        return {"id": name, "kwargs": kwargs} if kwargs else {"id": name}
    return value


class PoliciesConfig(BaseModel):
    """The policy attached inline to each decision family of the scenario."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prb: PolicyRef = Field(
        default_factory=lambda: PolicyRef(id=DEFAULT_POLICIES["prb"]),
        description="PRB scheduler, e.g. 'pf', 'rr', 'maxrate' (ids 'prb/...').",
    )
    power: PolicyRef = Field(
        default_factory=lambda: PolicyRef(id=DEFAULT_POLICIES["power"]),
        description="Power allocator, e.g. 'equal', 'waterfilling', 'alpha_fair' "
        "(ids 'power/...').",
    )

    ul_prb: PolicyRef | None = Field(
        None,
        description="Uplink PRB scheduler, e.g. 'pf', 'rr', 'maxrate' (ids 'ul_prb/...'; "
        "scenarios with an uplink only).",
    )
    offload: PolicyRef | None = Field(
        None,
        description="Where each LLM request runs: 'local', 'edge', 'cloud', 'min_latency' "
        "(ids 'offload/...'; edge-cloud scenarios only; null: offload/min_latency).",
    )

    draft: PolicyRef | None = Field(
        None,
        description="Draft length of speculative decoding per round: 'fixed', 'osd', "
        "'specdecpp', 'flexspec' (ids 'draft/...'; scenarios with a speculative section only; "
        "null: draft/fixed).",
    )

    @field_validator("prb", "power", "ul_prb", "offload", "draft", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        family = str(info.field_name)
        value = _as_policy_ref(value)
        if value is None:
            return value
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            value = {**value, "id": check_policy_id(value["id"], family)}
        elif isinstance(value, PolicyRef):
            value = value.model_copy(update={"id": check_policy_id(value.id, family)})
        return value

    def as_dict(self) -> dict[str, PolicyRef]:
        """Family → policy reference (a family left null gets its default)."""
        return {
            name: getattr(self, name) or PolicyRef(id=DEFAULT_POLICIES[name])
            for name in type(self).model_fields
        }


class OutputConfig(StrictConfig):
    """What a run writes and shows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dir: str | None = Field(
        default=None,
        description="Result directory; default 'results/<name>_run_seed<seed>' for a run and "
        "'results/<name>_compare' for a comparison (the CLI's --out wins).",
    )
    plots: bool = Field(default=True, description="Write PNG plots next to the tables.")
    csv: bool = Field(
        default=False, description="Also write every table as CSV (parquet is always written)."
    )
    progress: bool | None = Field(
        default=None, description="Show a progress bar; null = only when stderr is a terminal."
    )
    time_bins: int = Field(
        default=50, ge=1, le=10_000, description="Time bins of the MCS / BLER-over-time plots."
    )


class ScenarioConfig(StrictConfig):
    """A complete, validated scenario: network, traffic, policies, duration, seed and output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="Short identifier, used in result paths.")
    description: str = Field(default="", description="One line shown by 'edgetwin list'.")
    duration_s: float = Field(gt=0, le=3600, description="Simulated time in seconds.")
    seed: int = Field(
        default=0,
        ge=0,
        le=MAX_SEED,
        description="Seed of every random stream (common random numbers).",
    )
    cell: CellConfig = Field(
        default_factory=lambda: CellConfig.model_validate({}),
        description="NR carrier, LA and HARQ.",
    )
    topology: TopologyConfig = Field(
        default_factory=lambda: TopologyConfig.model_validate({}),
        description="Sites, sectors and UE drops.",
    )
    mobility: MobilityConfig = Field(
        default_factory=lambda: MobilityConfig.model_validate({}), description="UE movement."
    )
    channel: ChannelConfig = Field(
        default_factory=lambda: ChannelConfig.model_validate({}),
        description="Channel backend, TR 38.901 scenario, fading.",
    )
    traffic: TrafficConfig = Field(
        default_factory=FullBufferTraffic,
        description="Downlink traffic: {kind: full_buffer} or {kind: poisson, ...} (with a "
        "workload section: the background users' traffic).",
    )
    uplink: UplinkConfig | None = Field(
        None,
        description="The NR uplink (PUSCH, SR/BSR, UL power control); an edge-cloud scenario "
        "over the NR radio gets the defaults when it leaves this out.",
    )
    nodes: NodesConfig | None = Field(
        None, description="Where LLM requests run: device, edge, cloud (edge-cloud scenarios)."
    )
    network: NetworkConfig | None = Field(
        None, description="Wired hops behind the gNB and message sizes (edge-cloud scenarios)."
    )
    workload: UeWorkloadConfig | None = Field(
        None, description="UEs sending LLM requests in chat sessions (edge-cloud scenarios)."
    )
    speculative: SpecDecConfig | None = Field(
        None,
        description="Speculative decoding of the cloud's requests: draft on the device, verify "
        "in the cloud (edge-cloud scenarios with a cloud node).",
    )
    policies: PoliciesConfig = Field(
        default_factory=PoliciesConfig, description="Policy per decision family (prb, power)."
    )
    output: OutputConfig = Field(
        default_factory=lambda: OutputConfig.model_validate({}), description="Result writing."
    )

    @model_validator(mode="after")
    def _at_least_one_slot(self) -> ScenarioConfig:
        """A run shorter than one slot would simulate nothing (slot = 1 ms / 2^μ, TS 38.211)."""
        slot_s = slot_duration_s(self.cell.numerology)
        if self.duration_s < slot_s:
            raise ValueError(
                f"duration_s={self.duration_s:g} s is shorter than one slot "
                f"({slot_s:g} s at cell.numerology={self.cell.numerology}); "
                f"allowed: duration_s >= {slot_s:g}"
            )
        return self

    @model_validator(mode="after")
    def _statistical_channel_for_calibration_geometry(self) -> ScenarioConfig:
        """Refuse wrap-around and the 3D antenna outside the statistical channel.

        The Sionna and ray-traced backends would ignore them (unwrapped path loss, horizontal
        pattern).
        """
        topo = self.topology
        special = [
            name
            for name, on in (
                ("topology.wrap_around=true", topo.wrap_around),
                ("topology.bs_antenna_pattern='3d'", topo.bs_antenna_pattern == "3d"),
            )
            if on
        ]
        if special and self.channel.backend != "statistical":
            raise ValueError(
                f"{' and '.join(special)} need channel.backend='statistical' (got "
                f"{self.channel.backend!r}, which does not model them)"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _prompts_ride_the_uplink(cls, raw: Any) -> Any:
        """Requests over the NR radio cross its uplink: default it in when it is left out."""
        if not isinstance(raw, dict) or raw.get("nodes") is None or raw.get("uplink") is not None:
            return raw
        network = raw.get("network")
        radio = network.get("radio", "nr") if isinstance(network, dict) else "nr"
        return {**raw, "uplink": {}} if radio == "nr" else raw

    @model_validator(mode="after")
    def _edge_cloud_sections(self) -> ScenarioConfig:
        """``nodes`` and ``workload`` come together; LLM UEs are a subset of each cell's UEs."""
        if (self.nodes is None) != (self.workload is None):
            given, missing = ("nodes", "workload") if self.nodes else ("workload", "nodes")
            raise ValueError(
                f"{given} needs a {missing} section too (an edge-cloud scenario has both: "
                "where requests run, and who sends them)"
            )
        named = {
            f for f in type(self.policies).model_fields if getattr(self.policies, f) is not None
        }
        extra = sorted(named - set(self.families))
        if extra:
            raise ValueError(
                f"policies.{extra[0]} is set but this scenario has no {extra[0]} decision "
                f"(its families: {', '.join(self.families)})"
            )
        spec = self.speculative
        if spec is not None:
            if self.nodes is None or self.nodes.cloud is None:
                raise ValueError(
                    "speculative needs nodes.cloud (the target model verifies in the cloud)"
                )
            if (
                spec.mode != "autoregressive"
                and spec.draft_model is None
                and (self.nodes.device is None)
            ):
                raise ValueError(
                    f"speculative.mode={spec.mode!r} needs a draft model: give nodes.device "
                    "(its model drafts) or speculative.draft_model"
                )
            if spec.mode == "distributed" and self.nodes.device is None:
                raise ValueError(
                    "speculative.mode='distributed' drafts on the UEs: give nodes.device"
                )
        if self.network is not None and self.nodes is None:
            raise ValueError("network applies to edge-cloud scenarios only: add nodes and workload")
        if self.workload is not None and self.workload.adapters is not None:
            from edgetwin.scenarios.serving_schema import check_adapters

            edge = self.nodes.edge if self.nodes is not None else None
            if edge is None:
                raise ValueError("workload.adapters needs nodes.edge (requests are routed there)")
            check_adapters(edge.lora, self.workload.adapters, "nodes.edge.lora")
            if self.workload.adapters.router is None:
                raise ValueError(
                    "workload.adapters.router is required in an edge-cloud scenario (the UEs' "
                    "requests name no adapter: the edge server routes each one)"
                )
        if self.workload is not None:
            n_ue = self.topology.ues_per_cell
            if self.workload.llm_ues_per_cell > n_ue:
                raise ValueError(
                    f"workload.llm_ues_per_cell={self.workload.llm_ues_per_cell} exceeds "
                    f"topology.ues_per_cell={n_ue}; allowed: 1..{n_ue}"
                )
        return self

    @property
    def families(self) -> tuple[str, ...]:
        """Decision families this scenario has (a policy is attached to each)."""
        present = {"prb", "power"}
        if self.uplink is not None:
            present.add("ul_prb")
        if self.nodes is not None:
            present.add("offload")
        if self.speculative is not None:
            present.add("draft")
        return tuple(f for f in DEFAULT_POLICIES if f in present)

    @property
    def is_edge_cloud(self) -> bool:
        """True when the scenario carries LLM requests over the radio (nodes + workload)."""
        return self.nodes is not None

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        return check_path_name(name)
