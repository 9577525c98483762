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
    both = sorted(f for f in detach & set(policies) if policies[f] is not None)
    if both:
        raise ValueError(f"families both given a policy and detached: {', '.join(both)}")
    configured = config.policies.as_dict()
    plan: dict[str, PolicyLike] = {}
    for family in FAMILIES:
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
    cells = CellGroup(
        sim,
        cell=config.cell,
        topology=config.topology,
        mobility=config.mobility,
        channel=config.channel,
        traffic=config.traffic,
        prb_policy=attached["prb"],
        power_policy=attached["power"],
    )
    sim.add(cells)
    return sim
