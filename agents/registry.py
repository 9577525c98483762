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
import re
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

#: An entry point: ``"package.module:attr"`` (``attr`` may be dotted: ``"mod:Class.create"``).
_ENTRY_POINT = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _registered(policy_id: str | None = None) -> str:
    """What is registered, for one-line messages.

    The ids of ``policy_id``'s family when it names a registered one; otherwise the families
    (every id would not fit on one line: ``policy_ids(family)`` or ``edgetwin list`` show them).
    """
    ids = policy_ids()
    if not ids:
        return "none"
    families = sorted({i.split("/", 1)[0] for i in ids})
    family = policy_id.split("/", 1)[0] if isinstance(policy_id, str) else None
    if family in families:
        return ", ".join(i for i in ids if i.startswith(f"{family}/"))
    return f"the families {', '.join(families)} (their ids: policy_ids(family), edgetwin list)"


def _require_str_id(policy_id: Any) -> str:
    """``policy_id`` itself if it is a string, else an error saying what is expected."""
    if not isinstance(policy_id, str):
        raise PolicyRegistryError(
            f"policy id must be a string 'family/name' such as 'prb/pf', got "
            f"{type(policy_id).__name__} {_shown(policy_id)}; registered (policy_ids()): "
            f"{_registered()}"
        )
    return policy_id


def _is_well_formed(policy_id: str) -> bool:
    """``family/name`` with both parts non-empty and one slash."""
    family, sep, name = policy_id.partition("/")
    return bool(sep and family and name and "/" not in name)


def _check_id(policy_id: Any) -> None:
    """A string ``family/name``, else an error naming what was given."""
    if not _is_well_formed(_require_str_id(policy_id)):
        raise PolicyRegistryError(
            f"policy id {policy_id!r} is malformed: expected 'family/name', e.g. 'prb/pf'"
        )


def _check_registration(
    policy_id: str, entry_point: Any, kwargs: Any, requires: Any, description: Any
) -> None:
    """The arguments of :func:`register_policy` other than the id, naming the bad one."""
    where = f"register_policy({policy_id!r})"
    if not isinstance(entry_point, str) or not _ENTRY_POINT.fullmatch(entry_point):
        raise PolicyRegistryError(
            f"{where}: entry_point must be a string 'package.module:attr', e.g. "
            f"'edgetwin.agents.baselines.prb:ProportionalFair', got {_shown(entry_point)}"
        )
    if kwargs is not None and (
        not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs)
    ):
        raise PolicyRegistryError(
            f"{where}: kwargs must be a dict of keyword defaults (str keys) or None, got "
            f"{_shown(kwargs)}"
        )
    if not isinstance(requires, tuple | list) or not all(isinstance(m, str) for m in requires):
        raise PolicyRegistryError(
            f"{where}: requires must be a tuple of module names, e.g. ('torch',), got "
            f"{_shown(requires)}"
        )
    if not isinstance(description, str):
        raise PolicyRegistryError(
            f"{where}: description must be a string, got {_shown(description)}"
        )


def register_policy(
    policy_id: str,
    entry_point: str,
    kwargs: dict[str, Any] | None = None,
    requires: tuple[str, ...] = (),
    description: str = "",
) -> PolicySpec:
    """Register a policy under ``family/name``; registering an id twice raises.

    Args:
        policy_id: ``family/name``, e.g. ``"prb/best_rate_first"``.
        entry_point: ``"package.module:attr"``, imported on :func:`make_policy` only.
        kwargs: Default keyword arguments of the factory.
        requires: Modules the policy needs (a tuple, e.g. ``("torch",)``).
        description: One line shown by ``edgetwin list``.

    Raises:
        PolicyRegistryError: A malformed or already registered id, or an argument of the wrong
            form (the message names it and what is expected).
    """
    _check_id(policy_id)
    _check_registration(policy_id, entry_point, kwargs, requires, description)
    if policy_id in _REGISTRY:
        raise PolicyRegistryError(f"policy id {policy_id!r} is already registered")
    spec = PolicySpec(policy_id, entry_point, dict(kwargs or {}), tuple(requires), description)
    _REGISTRY[policy_id] = spec
    return spec


def unregister_policy(policy_id: str) -> None:
    """Remove a registration (for tests and plugins that replace themselves); unknown: no-op."""
    _REGISTRY.pop(_require_str_id(policy_id), None)


def policy_ids(family: str | None = None) -> list[str]:
    """Registered ids, sorted, optionally only those of one family (none: an empty list).

    Raises:
        PolicyRegistryError: ``family`` is neither a string nor None.
    """
    if family is not None and not isinstance(family, str):
        raise PolicyRegistryError(
            f"family must be a string such as 'prb', or None for all, got {_shown(family)}; "
            f"families: {', '.join(families())}"
        )
    return sorted(i for i, s in _REGISTRY.items() if family is None or s.family == family)


def families() -> list[str]:
    """Decision families that have at least one registered policy."""
    return sorted({s.family for s in _REGISTRY.values()})


def _suggestions(policy_id: str) -> list[str]:
    """Registered ids close to ``policy_id``: same short name (``"pf"``), then by spelling."""
    family, _, name = policy_id.partition("/")
    short = name or family
    same_name = [i for i in policy_ids() if short and i.split("/", 1)[1] == short]
    close = difflib.get_close_matches(policy_id, list(_REGISTRY), n=3, cutoff=0.5)
    return list(dict.fromkeys(same_name + close))[:3]


def policy_spec(policy_id: str) -> PolicySpec:
    """The spec of ``policy_id``; unknown ids raise with close-match suggestions.

    Raises:
        PolicyRegistryError: ``policy_id`` is not a string, is malformed or is not registered
            (the message lists the registered ids).
    """
    spec = _REGISTRY.get(_require_str_id(policy_id))
    if spec is None:
        close = _suggestions(policy_id)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        problem = (
            f"unknown policy id {policy_id!r}"
            if _is_well_formed(policy_id)
            else f"policy id {policy_id!r} is malformed: expected 'family/name', e.g. 'prb/pf'"
        )
        raise PolicyRegistryError(f"{problem}.{hint} Registered: {_registered(policy_id)}")
    return spec


def resolve_policy_id(name: str, family: str) -> str:
    """Accept ``"pf"`` as shorthand for ``"<family>/pf"``; full ids pass through."""
    _require_str_id(name)
    return name if "/" in name else f"{family}/{name}"


def _load(spec: PolicySpec) -> Any:
    """Import ``spec``'s entry point; a failure names the policy, the entry point and why."""
    module_name, _, attr = spec.entry_point.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PolicyRegistryError(
            f"policy {spec.id!r}: cannot load entry point {spec.entry_point!r}: {exc}"
        ) from exc
    if not callable(obj):
        raise PolicyRegistryError(
            f"policy {spec.id!r}: entry point {spec.entry_point!r} is a "
            f"{type(obj).__name__}, not a class or factory"
        )
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
    """Build the policy registered as ``policy_id``; ``kwargs`` override the spec's defaults.

    Keywords are checked as in :func:`check_policy_kwargs`, with the id as the field path
    (``prb/pf.beta: must be in (0, 1), got 2``).

    Raises:
        PolicyRegistryError: A non-string, malformed or unknown id (listing the registered
            ones), a missing required module, an entry point that does not load, an unknown
            keyword or a keyword value the policy refuses.
    """
    spec = policy_spec(policy_id)
    _import_requires(spec)
    factory = _load(spec)
    if kwargs:
        _check_keywords(spec, factory, kwargs, spec.id)
    try:
        policy = factory(**{**spec.kwargs, **kwargs})
    except TypeError as exc:
        raise PolicyRegistryError(f"bad arguments for policy {spec.id!r}: {exc}") from exc
    except ValueError as exc:
        if _keyword_in(str(exc), kwargs) is None:  # not about a keyword: the policy's own error
            raise
        raise PolicyRegistryError(_field_message(str(exc), kwargs, spec.id)) from None
    if not isinstance(policy, Policy):
        raise PolicyRegistryError(
            f"policy {spec.id!r}: entry point {spec.entry_point!r} built a "
            f"{type(policy).__name__}, not a Policy (it needs reset(seed=...) and act(obs))"
        )
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


def _param_doc(factory: Any, key: str) -> str:
    """First sentence of ``key``'s entry under ``Args:`` in ``factory``'s docstring, or ``""``.

    ``"beta: Discount factor β in (0, 1)."`` → ``"discount factor β in (0, 1)"``: the documented
    meaning and range, quoted when a value has the wrong type.
    """
    doc = inspect.getdoc(factory) or ""
    match = re.search(
        rf"^([ \t]*){re.escape(key)}(?: \([^)]*\))?:[ \t]*(.+(?:\n\1[ \t]+\S.*)*)",
        doc,
        re.MULTILINE,
    )
    if match is None:
        return ""
    text = " ".join(match.group(2).split())
    text = re.split(r"(?<=[^.\s][^.\s])\.(?:\s|$)", text, maxsplit=1)[0].strip().rstrip(".")
    if text[1:2].islower():
        text = text[:1].lower() + text[1:]
    return text if len(text) <= 100 else text[:97] + "..."


def _check_numbers(factory: Any, kwargs: dict[str, Any], where: str) -> None:
    """Refuse a non-number, or a non-finite number, for a parameter annotated ``float``/``int``.

    Why: ``pf:beta=abc`` would otherwise fail as a ``TypeError`` deep in a comparison, and
    ``nan`` slips through range checks written as ``x < 0``. The message quotes the documented
    meaning and range of the parameter (:func:`_param_doc`).
    """
    params = inspect.signature(factory).parameters
    for key, value in kwargs.items():
        annotation = str(params[key].annotation) if key in params else ""
        if annotation not in ("float", "int", "<class 'float'>", "<class 'int'>"):
            continue
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not is_number or not math.isfinite(float(value)):
            doc = _param_doc(factory, key)
            raise PolicyRegistryError(
                f"{where}.{key}: expected a finite number, got {type(value).__name__} "
                f"{_shown(value)}{f' ({key}: {doc})' if doc else ''}"
            )


def _keyword_in(message: str, kwargs: dict[str, Any]) -> str | None:
    """The keyword of ``kwargs`` that ``message`` starts with (``"beta must be ..."``), if any."""
    return next((key for key in kwargs if message.startswith(f"{key} ")), None)


def _field_message(message: str, kwargs: dict[str, Any], where: str) -> str:
    """``"beta must be in (0, 1), got 2"`` → ``"policies.prb.beta: must be in (0, 1), got 2"``."""
    key = _keyword_in(message, kwargs)
    if key is None:
        return f"{where}: {message}"
    return f"{where}.{key}: {message[len(key) + 1 :]}"


def _check_keywords(spec: PolicySpec, factory: Any, kwargs: dict[str, Any], where: str) -> None:
    """Keywords the factory accepts (the message lists them), numbers where numbers are due."""
    allowed = _keywords(factory)
    unknown = [k for k in kwargs if allowed is not None and k not in allowed]
    if unknown:
        listed = ", ".join(allowed or []) or "none (give the id alone)"
        prefix = "" if where == spec.id else f"{where}: "
        raise PolicyRegistryError(
            f"{prefix}policy {spec.id!r} takes no keyword {unknown[0]!r}; allowed keywords: "
            f"{listed}"
        )
    _check_numbers(factory, kwargs, where)


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
    factory = _load(spec)
    _check_keywords(spec, factory, kwargs, where)
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
