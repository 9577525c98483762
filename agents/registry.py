"""Strict policy registry with lazy string entry points (Gymnasium's registry shape).

* Ids are ``family/name`` (``"prb/pf"``), families mirror decision points.
* Registering an id twice raises (Vidur silently ignores it; Gymnasium only warns).
* Entry points are ``"module:attr"`` strings imported on ``make_policy`` only, so listing the
  registry never imports torch.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from edgetwin.agents.protocol import Policy


class PolicyRegistryError(ValueError):
    """An unknown, malformed or duplicate policy id."""


@dataclass(frozen=True)
class PolicySpec:
    """A registered policy: how to build it.

    Attributes:
        id: ``family/name``.
        entry_point: ``"package.module:ClassName"`` (a class or factory returning a Policy).
        kwargs: Default keyword arguments, overridable in ``make_policy``.
        requires: Importable modules this policy needs (e.g. ``("torch",)``).
        description: One line shown by ``edgetwin list``.
    """

    id: str
    entry_point: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    description: str = ""

    @property
    def family(self) -> str:
        """The decision family (part of the id before the slash)."""
        return self.id.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The policy name (part of the id after the slash)."""
        return self.id.split("/", 1)[1]


_REGISTRY: dict[str, PolicySpec] = {}


def _check_id(policy_id: str) -> None:
    family, sep, name = policy_id.partition("/")
    if not sep or not family or not name or "/" in name:
        raise PolicyRegistryError(
            f"policy id {policy_id!r} is malformed: expected 'family/name', e.g. 'prb/pf'"
        )


def register_policy(
    policy_id: str,
    entry_point: str,
    kwargs: dict[str, Any] | None = None,
    requires: tuple[str, ...] = (),
    description: str = "",
) -> PolicySpec:
    """Register a policy under ``family/name``; registering an id twice raises."""
    _check_id(policy_id)
    if policy_id in _REGISTRY:
        raise PolicyRegistryError(f"policy id {policy_id!r} is already registered")
    spec = PolicySpec(policy_id, entry_point, dict(kwargs or {}), tuple(requires), description)
    _REGISTRY[policy_id] = spec
    return spec


def unregister_policy(policy_id: str) -> None:
    """Remove a registration (for tests and plugins that replace themselves)."""
    _REGISTRY.pop(policy_id, None)


def policy_ids(family: str | None = None) -> list[str]:
    """Registered ids, sorted, optionally only those of one family."""
    return sorted(i for i, s in _REGISTRY.items() if family is None or s.family == family)


def families() -> list[str]:
    """Decision families that have at least one registered policy."""
    return sorted({s.family for s in _REGISTRY.values()})


def policy_spec(policy_id: str) -> PolicySpec:
    """The spec of ``policy_id``; unknown ids raise with close-match suggestions."""
    spec = _REGISTRY.get(policy_id)
    if spec is None:
        close = difflib.get_close_matches(policy_id, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise PolicyRegistryError(
            f"unknown policy id {policy_id!r}.{hint} Registered: {', '.join(policy_ids())}"
        )
    return spec


def resolve_policy_id(name: str, family: str) -> str:
    """Accept ``"pf"`` as shorthand for ``"<family>/pf"``; full ids pass through."""
    return name if "/" in name else f"{family}/{name}"


def _load(entry_point: str) -> Any:
    module_name, _, attr = entry_point.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _import_requires(spec: PolicySpec) -> None:
    """Import the modules ``spec`` needs, or say which one is missing."""
    for module in spec.requires:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise PolicyRegistryError(
                f"policy {spec.id!r} needs the module {module!r}, which is not installed"
            ) from exc


def make_policy(policy_id: str, **kwargs: Any) -> Policy[Any, Any]:
    """Build the policy registered as ``policy_id``; ``kwargs`` override the spec's defaults."""
    spec = policy_spec(policy_id)
    _import_requires(spec)
    factory = _load(spec.entry_point)
    try:
        policy = factory(**{**spec.kwargs, **kwargs})
    except TypeError as exc:
        raise PolicyRegistryError(f"bad arguments for policy {policy_id!r}: {exc}") from exc
    if not isinstance(policy, Policy):
        raise PolicyRegistryError(f"{spec.entry_point} did not build a Policy (reset/act)")
    return policy


def _keywords(factory: Any) -> list[str] | None:
    """Keyword parameters ``factory`` accepts; ``None`` when it takes ``**kwargs``."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let the call judge
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in kinds]


def _check_numbers(factory: Any, kwargs: dict[str, Any], where: str) -> None:
    """Refuse a non-number, or a non-finite number, for a parameter annotated ``float``/``int``.

    Why: ``pf:beta=abc`` would otherwise fail as a ``TypeError`` deep in a comparison, and
    ``nan`` slips through range checks written as ``x < 0``.
    """
    params = inspect.signature(factory).parameters
    for key, value in kwargs.items():
        annotation = str(params[key].annotation) if key in params else ""
        if annotation not in ("float", "int", "<class 'float'>", "<class 'int'>"):
            continue
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not is_number or not math.isfinite(float(value)):
            raise PolicyRegistryError(f"{where}.{key}: expected a finite number, got {value!r}")


def _field_message(message: str, kwargs: dict[str, Any], where: str) -> str:
    """``"beta must be in (0, 1), got 2"`` → ``"policies.prb.beta: must be in (0, 1), got 2"``."""
    for key in kwargs:
        if message.startswith(f"{key} "):
            return f"{where}.{key}: {message[len(key) + 1 :]}"
    return f"{where}: {message}"


def check_policy_kwargs(policy_id: str, kwargs: dict[str, Any], where: str) -> None:
    """Check ``kwargs`` of ``policy_id`` before anything runs, naming the field path.

    The keywords are checked against the constructor's signature (the message lists the allowed
    ones); policies that need no optional module (the cheap analytic baselines) are also built
    once, so their range checks report here as ``<where>.<key>: ...`` rather than mid-run.
    Policies with ``requires`` (a checkpoint loaded with torch) are built by ``make_policy``.

    Args:
        policy_id: A registered id.
        kwargs: Keyword arguments over the spec's defaults.
        where: Field path of the policy in the scenario, e.g. ``"policies.prb"``.

    Raises:
        PolicyRegistryError: For an unknown keyword, a non-number where a number is expected,
            or a value the policy refuses.
    """
    spec = policy_spec(policy_id)
    if not kwargs:
        return
    _import_requires(spec)
    factory = _load(spec.entry_point)
    allowed = _keywords(factory)
    unknown = [k for k in kwargs if allowed is not None and k not in allowed]
    if unknown:
        listed = ", ".join(allowed or []) or "none (give the id alone)"
        raise PolicyRegistryError(
            f"{where}: {policy_id!r} takes no keyword {unknown[0]!r}; allowed keywords: {listed}"
        )
    _check_numbers(factory, kwargs, where)
    if spec.requires:
        return
    try:
        factory(**{**spec.kwargs, **kwargs})
    except (TypeError, ValueError) as exc:
        raise PolicyRegistryError(_field_message(str(exc), kwargs, where)) from None


def pprint_policies(family: str | None = None) -> str:
    """A table of registered policies (id, defaults, description), as ``edgetwin list`` shows."""
    rows = []
    for pid in policy_ids(family):
        s = _REGISTRY[pid]
        defaults = ", ".join(f"{k}={v}" for k, v in s.kwargs.items())
        rows.append(f"{pid:<24} {defaults:<28} {s.description}")
    return "\n".join(rows)
