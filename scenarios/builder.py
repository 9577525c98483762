"""Build a :class:`Simulation` from a scenario: the ONLY place that wires components (§4.3).

(The module is ``builder``, not ``build``: a submodule named like the function it exports would
replace ``edgetwin.scenarios.build`` — the function the package re-exports — once imported.)

Policies attach inline to their family's decision point. Families not named in ``policies`` fall
back to the scenario's ``policies:`` block; families in ``detach`` (or given as ``None``) are left
detached, so an RL environment can drive them through ``Simulation.run_until_decision``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from edgetwin.agents.registry import check_policy_kwargs
from edgetwin.scenarios.schema import (
    DEFAULT_POLICIES,
    PolicyRef,
    ScenarioConfig,
    check_policy_id,
    split_policy_string,
)
from edgetwin.sim.engine import Simulation
from edgetwin.sim.radio.cell import CellGroup

if TYPE_CHECKING:
    from edgetwin.agents.protocol import Policy
    from edgetwin.sim.radio.uplink import UplinkCellGroup

#: Decision families a scenario has, in wiring order.
FAMILIES: tuple[str, ...] = tuple(DEFAULT_POLICIES)

#: What may stand for a policy: a built policy, a registered id / short name, a reference with
#: keyword arguments, or ``None`` (leave the family's decision point detached).
PolicyLike = Any


def _check_families(names: Iterable[str], what: str) -> None:
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown:
        raise ValueError(
            f"unknown decision famil{'ies' if len(unknown) > 1 else 'y'} in {what}: "
            f"{', '.join(unknown)}; allowed: {', '.join(FAMILIES)}"
        )


def policy_plan(
    config: ScenarioConfig,
    policies: Mapping[str, PolicyLike] | None = None,
    detach: Iterable[str] = (),
) -> dict[str, PolicyLike]:
    """Resolve what drives each family: a Policy object, a :class:`PolicyRef` or ``None``.

    Strings are resolved to registered ids (``"pf"`` → ``PolicyRef(id="prb/pf")``); ``ID:ARG``
    passes ``ARG`` as the ``path`` argument (``"ppo:m.pt"`` → ``PolicyRef(id="prb/ppo",
    kwargs={"path": "m.pt"})``) and ``ID:key=value[:key=value]`` as keyword arguments
    (``"pf:beta=0.99"`` → ``kwargs={"beta": 0.99}``). Keyword arguments are checked here, so a
    bad one fails before a run starts, naming its field (``policies.prb.beta: ...``).

    Raises:
        ValueError: For an unknown family, or a family both given and detached.
        PolicyRegistryError: For an unknown policy id (listing the allowed ones), or a keyword
            argument the policy does not take or refuses.
    """
    policies = dict(policies or {})
    detach = set(detach)
    _check_families(policies, "policies")
    _check_families(detach, "detach")
    absent = sorted(f for f in set(policies) | detach if f not in config.families)
    if absent:
        raise ValueError(
            f"scenario {config.name!r} has no {', '.join(absent)} decision; its families: "
            f"{', '.join(config.families)}"
        )
    both = sorted(f for f in detach & set(policies) if policies[f] is not None)
    if both:
        raise ValueError(f"families both given a policy and detached: {', '.join(both)}")
    configured = config.policies.as_dict()
    plan: dict[str, PolicyLike] = {}
    for family in config.families:
        if family in detach:
            plan[family] = None
            continue
        value = policies.get(family, configured[family])
        if isinstance(value, str):
            name, kwargs = split_policy_string(value)
            value = PolicyRef(id=check_policy_id(name, family), kwargs=kwargs)
        elif isinstance(value, PolicyRef):
            value = value.model_copy(update={"id": check_policy_id(value.id, family)})
        if isinstance(value, PolicyRef):
            check_policy_kwargs(value.id, value.kwargs, f"policies.{family}")
        plan[family] = value
    return plan


def policy_label(value: PolicyLike) -> str:
    """How a planned policy is named in results: its id (with kwargs), class, or 'detached'."""
    if value is None:
        return "detached"
    if isinstance(value, PolicyRef):
        return value.label
    for attr in ("policy_id", "id"):
        name = getattr(value, attr, None)
        if isinstance(name, str):
            return name
    return f"{type(value).__module__}:{type(value).__qualname__}"


def make_policies(plan: Mapping[str, PolicyLike]) -> dict[str, Policy[Any, Any] | None]:
    """Instantiate the :class:`PolicyRef` entries of a plan through the registry."""
    from edgetwin.agents import make_policy

    out: dict[str, Policy[Any, Any] | None] = {}
    for family, value in plan.items():
        out[family] = (
            make_policy(value.id, **value.kwargs) if isinstance(value, PolicyRef) else value
        )
    return out


def build(
    config: ScenarioConfig,
    policies: Mapping[str, PolicyLike] | None = None,
    seed: int | None = None,
    *,
    detach: Iterable[str] = (),
) -> Simulation:
    """Wire a ready-to-run simulation for ``config``.

    Every attached policy is reset with a seed derived from the run's seed (its own
    ``"policy.<family>"`` stream), so a policy object reused across runs starts afresh.

    Args:
        config: The validated scenario.
        policies: Family → Policy object, policy id / short name (``"pf"``), :class:`PolicyRef`,
            or ``None`` to leave that family detached. Families not named use
            ``config.policies``.
        seed: Seed of the run; default ``config.seed``.
        detach: Families whose decision points stay detached (external control, e.g. RL).

    Returns:
        The simulation, not yet started; components are in ``sim.components`` (the radio
        network as ``"radio"``) and decision points in ``sim.decision_points``.

    Raises:
        ValueError: Unknown family, or a family both given and detached.
        PolicyRegistryError: Unknown policy id or bad policy arguments.
    """
    seed = config.seed if seed is None else int(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    attached = make_policies(policy_plan(config, policies, detach))
    sim = Simulation(seed=seed, horizon_s=config.duration_s)
    for family, policy in attached.items():
        if policy is not None:
            policy.reset(seed=int(sim.streams.fresh(f"policy.{family}").integers(2**31)))
    background = None
    if config.workload is not None:  # the first UEs of each cell carry only LLM messages
        background = np.arange(config.topology.ues_per_cell) >= config.workload.llm_ues_per_cell
    cells = CellGroup(
        sim,
        cell=config.cell,
        topology=config.topology,
        mobility=config.mobility,
        channel=config.channel,
        traffic=config.traffic,
        prb_policy=attached["prb"],
        power_policy=attached["power"],
        traffic_ue_mask=background,
    )
    sim.add(cells)
    ul_cells = None
    if config.uplink is not None:
        from edgetwin.sim.radio.uplink import UplinkCellGroup

        ul_cells = UplinkCellGroup(
            sim,
            dl=cells,
            config=config.uplink,
            ul_prb_policy=attached.get("ul_prb"),
            traffic_ue_mask=background,
        )
        sim.add(ul_cells)
    if config.is_edge_cloud:
        _wire_edge_cloud(sim, config, cells, ul_cells, attached)
    return sim


def _wire_edge_cloud(
    sim: Simulation,
    config: ScenarioConfig,
    cells: CellGroup,
    ul_cells: UplinkCellGroup | None,
    attached: Mapping[str, Policy[Any, Any] | None],
) -> None:
    """Devices, edge and cloud servers, wired links, radio hops, offloader and sessions."""
    from edgetwin.scenarios.edge_cloud_schema import NetworkConfig
    from edgetwin.sim.compute.offload import Offloader, Tier
    from edgetwin.sim.compute.router import Router
    from edgetwin.sim.compute.server import LLMServer
    from edgetwin.sim.net.journey import Carrier, IdealLink, Journeys
    from edgetwin.sim.net.link import WiredLink
    from edgetwin.sim.net.radio_hop import RadioHop
    from edgetwin.sim.system import EdgeCloudSystem, SloTargets

    assert config.nodes is not None
    assert config.workload is not None
    env, nodes, wl = sim.env, config.nodes, config.workload
    net = config.network or NetworkConfig()
    ue_where = {
        f"c{c}u{u}": (c, u) for c in range(cells.n_cell) for u in range(wl.llm_ues_per_cell)
    }
    downlink: Any = IdealLink(env, "nr_dl")
    uplink: Any = IdealLink(env, "nr_ul")
    if net.radio == "nr":
        downlink = RadioHop(env, "nr_dl", cells, ue_where, "down")
    if net.radio == "nr" and ul_cells is not None:
        uplink = RadioHop(env, "nr_ul", ul_cells, ue_where, "up",
                          access_delay_s=ul_cells.access_delay_s())  # fmt: skip
    devices = _devices(env, nodes.device, list(ue_where)) if nodes.device is not None else {}
    # speculative rounds on the cloud's journeys; autoregressive: plain (streamed) journeys
    specdec = config.speculative
    if specdec is not None and specdec.mode == "autoregressive":
        specdec = None
    servers: dict[str, list[LLMServer]] = {}
    journeys: list[tuple[str, Any]] = []
    links: list[Any] = []
    tier_of_ue: dict[str, dict[str, Tier]] = {}
    # An edge server (its replicas and backhaul) at every site serves that site's UEs; the
    # cloud region serves every UE over one WAN.
    site_of_ue = {ue: int(cells.layout.site_of_cell[c]) for ue, (c, _u) in ue_where.items()}
    n_site = max(site_of_ue.values()) + 1
    groups = [
        ("edge", f"edge{s}" if n_site > 1 else "edge", nodes.edge, net.backhaul,
         [ue for ue, site in site_of_ue.items() if site == s])
        for s in range(n_site)
    ] + [("cloud", "cloud", nodes.cloud, net.wan, list(ue_where))]  # fmt: skip
    routed = _edge_routing(sim, wl)  # per-request adapter routing at the edge servers
    for tier, name, spec, link_cfg, ues in groups:
        if spec is None or not ues:
            continue
        replicas = _servers(env, name, spec, routed if tier == "edge" else None)
        for server in replicas:
            if server.routing is not None:
                sim.add_decision_point(f"route.{server.name}", server.routing.dp)
        router = Router(replicas, spec.router, rng=sim.streams.get(f"routing.{name}"), name=name)
        up: Carrier
        down: Carrier
        if link_cfg is None:
            up, down = IdealLink(env, f"{name}_up"), IdealLink(env, f"{name}_down")
        else:
            up = WiredLink(env, f"{name}_up", link_cfg, sim.streams.get(f"link.{name}_up"))
            down = WiredLink(env, f"{name}_down", link_cfg, sim.streams.get(f"link.{name}_down"))
            links += [up, down]
        path: Any
        if tier == "cloud" and specdec is not None:
            path = _speculative_path(
                sim, config, name, router, [uplink, up], [down, downlink], devices, ul_cells,
                ue_where, attached.get("draft"),
            )  # fmt: skip
        else:
            path = Journeys(env, name, router.submit, [uplink, up], [down, downlink], net.journey)
        for server in replicas:
            server.on_token = path.on_token
        servers.setdefault(tier, []).extend(replicas)
        journeys.append((tier, path))
        tier_of_ue.setdefault(tier, {}).update(dict.fromkeys(ues, Tier(path, tuple(replicas))))
    offloader = Offloader(
        env,
        "offload",
        device=devices or None,
        edge=tier_of_ue.get("edge"),
        cloud=tier_of_ue.get("cloud"),
        policy=attached.get("offload"),
    )
    sim.add_decision_point("offload", offloader.dp)
    system = EdgeCloudSystem(
        source=_request_source(sim, wl, list(ue_where), offloader.submit),
        offloader=offloader,
        devices=devices,
        servers=servers,
        journeys=journeys,
        links=links,
        ue_where=ue_where,
        slo=SloTargets(wl.ttft_slo_s, wl.tpot_slo_s),
        radio_hop_names=(uplink.name, downlink.name),
        uplink=ul_cells if net.radio == "nr" else None,
        tx_power_efficiency=nodes.device.tx_power_efficiency if nodes.device else 0.3,
    )
    sim.add(system)


def _speculative_path(
    sim: Simulation,
    config: ScenarioConfig,
    name: str,
    router: Any,
    up: list[Any],
    down: list[Any],
    devices: Mapping[str, Any],
    ul_cells: Any,
    ue_where: Mapping[str, tuple[int, int]],
    policy: Any,
) -> Any:
    """The cloud's speculative journeys: draft cost, per-UE energy, the ``draft`` point."""
    from edgetwin.scenarios.edge_cloud_schema import NetworkConfig
    from edgetwin.scenarios.serve import MODEL_DIMS, build_cost_model
    from edgetwin.sim.net.spec_journey import SpeculativeJourneys

    spec = config.speculative
    nodes = config.nodes
    assert spec is not None
    assert nodes is not None
    assert nodes.cloud is not None
    net = config.network or NetworkConfig()
    draft_model = spec.draft_model or (nodes.device.model if nodes.device else None)
    assert draft_model is not None
    if spec.mode == "fused":  # a draft model next to the target, on the cloud's hardware
        if draft_model not in MODEL_DIMS:
            raise ValueError(
                f"speculative.draft_model {draft_model!r} has no dimensions for the cloud "
                f"roofline; allowed: {', '.join(sorted(MODEL_DIMS))}"
            )
        draft_cost, _info = build_cost_model(draft_model, nodes.cloud.hardware, None)
    else:
        assert nodes.device is not None
        if draft_model == nodes.device.model:
            draft_cost = next(iter(devices.values())).cost_model
        else:
            draft_cost = next(
                iter(_devices(sim.env, nodes.device.model_copy(update={"model": draft_model}),
                              ["draft"]).values())
            ).cost_model  # fmt: skip
    efficiency = nodes.device.tx_power_efficiency if nodes.device else 0.3

    def j_per_bit(ue: str) -> float:
        """The UE's transmit (DC) energy per delivered uplink bit so far, J/bit."""
        if ul_cells is None or net.radio != "nr":
            return 0.0
        c, u = ue_where[ue]
        sent = float(ul_cells.delivered_bits[c, u])
        return float(ul_cells.m_energy_j[c, u]) / sent / efficiency if sent > 0 else 0.0

    replicas = router.servers

    def route() -> Any:
        k = router.choose()
        router.n_routed[k] += 1
        return replicas[k]

    path = SpeculativeJourneys(
        sim.env, name, route, up, down, net.journey, spec, sim.streams, draft_cost,
        devices=devices, policy=policy, uplink_j_per_bit=j_per_bit,
    )  # fmt: skip
    sim.add_decision_point("draft", path.dp)
    return path


def _request_source(sim: Simulation, wl: Any, ues: list[str], send: Any) -> Any:
    """Chat sessions per UE, or a trace's requests dealt to the UEs in turn."""
    from edgetwin.sim.workload.sessions import ChatSessions

    if wl.trace is None:
        return ChatSessions(sim.env, "sessions", ues, wl.sessions, sim.streams, send)
    from edgetwin.scenarios.serve import load_workload
    from edgetwin.sim.workload.request import Request
    from edgetwin.sim.workload.source import WorkloadSource

    work = load_workload(wl.trace, sim.streams)
    requests = [
        Request(i, float(t), int(p), int(o))
        for i, (t, p, o) in enumerate(
            zip(work["arrival_s"], work["prompt_tokens"], work["output_tokens"], strict=True)
        )
    ]
    n = len(ues)
    return WorkloadSource(sim.env, requests, lambda r: send(r, ues[r.id % n]), name="trace")


def _servers(env: Any, tier: str, spec: Any, routed: Any = None) -> list[Any]:
    """The replicas of one tier, timed by the spec's cost model (profiles or roofline).

    ``routed``: an ``AdapterRoutingPlan`` giving each replica a router (per-request routing).
    """
    from edgetwin.scenarios.serve import build_cost_model, lora_server_kwargs, server_config
    from edgetwin.sim.compute.server import LLMServer

    cost, _info = build_cost_model(spec.model, spec.hardware, spec.profiles)
    cfg = server_config(spec)
    return [
        LLMServer(
            env,
            cfg,
            cost,
            name=f"{tier}{i}",
            **lora_server_kwargs(spec),  # one cache policy object per replica
            **(routed.server_kwargs() if routed is not None else {}),
        )
        for i in range(spec.replicas)
    ]


def _edge_routing(sim: Simulation, wl: Any) -> Any:
    """The routing plan of ``workload.adapters`` (its router at every edge replica), or None."""
    if wl.adapters is None:
        return None
    from edgetwin.scenarios.serve import adapter_routing

    # the serving replay's rule: the model seeded from the "adapters" stream, shared contexts
    return adapter_routing(wl.adapters, sim.streams)


def _devices(env: Any, spec: Any, ues: list[str]) -> dict[str, Any]:
    """One device per LLM UE, all running ``spec.model`` on ``spec.hardware``."""
    from edgetwin.scenarios.serve import MODEL_DIMS, build_cost_model, param_count
    from edgetwin.sim.compute.device import Device, DeviceConfig
    from edgetwin.sim.compute.device_roofline import EDGE_DEVICES, EDGE_MODELS, jetson_cost_model

    cost: Any
    if spec.hardware in EDGE_DEVICES:
        if spec.model not in EDGE_MODELS:
            raise ValueError(
                f"nodes.device.model {spec.model!r} has no Jetson roofline; allowed: "
                f"{', '.join(sorted(EDGE_MODELS))}"
            )
        m = EDGE_MODELS[spec.model]
        cost = jetson_cost_model(spec.hardware, spec.model)
        weights, kv = m.streamed_params * 2.0, m.kv_bytes_per_token()
    else:
        if spec.model not in MODEL_DIMS:
            raise ValueError(
                f"nodes.device.model {spec.model!r} is unknown; allowed: "
                f"{', '.join(sorted(MODEL_DIMS))}"
            )
        dims = MODEL_DIMS[spec.model]
        cost, _info = build_cost_model(spec.model, spec.hardware, spec.profiles)
        weights, kv = param_count(dims) * dims.dtype_bytes, dims.kv_bytes_per_token()
    cfg = DeviceConfig(
        memory_bytes=spec.memory_bytes,
        weights_bytes=weights,
        kv_bytes_per_token=kv,
        active_power_w=spec.active_power_w,
        idle_power_w=spec.idle_power_w,
        battery_j=spec.battery_j,
    )
    return {ue: Device(env, ue, cfg, cost) for ue in ues}
