"""Fuzz: one leaf of a built-in scenario set to a bad value → ScenarioError naming that leaf.

Each example mutates one leaf (or adds an unknown key) of a built-in scenario's raw YAML and
validates it in-process (no simulation). The outcome must be either a one-line
:class:`ScenarioError` that names the mutated field's dotted path, or — when the value happens
to be allowed there — a valid config; any other exception fails.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edgetwin.scenarios.load import ScenarioError, builtin_scenarios, parse_yaml, validate_scenario

RAW: dict[str, dict[str, Any]] = {
    name: parse_yaml(path.read_text(encoding="utf-8")) for name, path in builtin_scenarios().items()
}


def _leaves(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*prefix, str(k)))]
    return [prefix]


LEAVES = sorted((name, path) for name, raw in RAW.items() for path in _leaves(raw))

BAD_VALUES = st.one_of(
    st.sampled_from(
        [True, False, math.nan, math.inf, -math.inf, -1, -1e300, 1e300, 2**70, "", "junk", None]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["a", "kind", "x"]), st.integers(), max_size=2),
    st.recursive(st.integers(), lambda c: st.lists(c, max_size=2), max_leaves=5),
    st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _set(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    node = out
    for part in path[:-1]:
        node[part] = dict(node[part])
        node = node[part]
    node[path[-1]] = value
    return out


def _check(raw: dict[str, Any], path: tuple[str, ...]) -> None:
    dotted = ".".join(path)
    try:
        validate_scenario(raw, source="fuzz")
    except ScenarioError as exc:
        line = str(exc)
        assert "\n" not in line, line
        parent, leaf = ".".join(path[:-1]), path[-1]
        # a bad discriminator ``kind`` is reported on its section; a check across fields of a
        # section (a model validator) as "section: field=..."
        named = dotted in line or (parent and f"{parent}: " in line and leaf in line)
        named = named or (leaf == "kind" and parent in line)
        assert named, (dotted, line)


@settings(max_examples=200, deadline=None)
@given(leaf=st.sampled_from(LEAVES), value=BAD_VALUES)
def test_mutated_leaf_is_named(leaf: tuple[str, tuple[str, ...]], value: Any) -> None:
    name, path = leaf
    _check(_set(RAW[name], path, value), path)


@settings(max_examples=50, deadline=None)
@given(
    leaf=st.sampled_from(LEAVES),
    key=st.from_regex(r"\Azz[a-z_]{0,6}\Z"),
    value=BAD_VALUES,
)
def test_unknown_key_is_named(leaf: tuple[str, tuple[str, ...]], key: str, value: Any) -> None:
    name, path = leaf
    section = path[:-1]
    if section and not isinstance(_get(RAW[name], section), dict):
        return
    _check(_set(RAW[name], (*section, key), value), (*section, key))


def _get(raw: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = raw
    for part in path:
        node = node[part]
    return node
