"""Loading scenarios: built-in names or YAML paths, dotted overrides, readable errors (§4.6).

Overrides (``cell.bandwidth_hz=40e6``) are applied to the raw mapping *before* validation, so a
bad override is reported exactly like a bad YAML field: by its dotted path, with the bad value
and the allowed values or range.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import annotated_types
import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from edgetwin.scenarios.errors import FieldError, ScenarioError
from edgetwin.scenarios.schema import ScenarioConfig

__all__ = [
    "SCENARIO_DIR",
    "ScenarioError",
    "apply_overrides",
    "builtin_scenarios",
    "dump_yaml",
    "format_validation_error",
    "load_scenario",
    "parse_overrides",
    "parse_yaml",
    "read_yaml_file",
    "scenario_descriptions",
    "validate_scenario",
    "with_overrides",
]

#: Folder of the built-in scenarios (installed as package data of ``edgetwin.scenarios``).
SCENARIO_DIR = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------------
# YAML with YAML 1.2 numbers and booleans
# ----------------------------------------------------------------------------------------
#: The tags whose YAML 1.1 resolvers :class:`_Loader` replaces with YAML 1.2 (core) ones.
_NUMBER_TAGS = frozenset(
    {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
)


class _Loader(yaml.SafeLoader):
    """``SafeLoader`` reading booleans and numbers as YAML 1.2 does.

    PyYAML implements YAML 1.1, whose implicit types surprise: ``40e6`` is a *string* (a float
    needs a dot), ``1:30`` is the sexagesimal integer 90, ``010`` is octal 8, and ``yes``,
    ``no``, ``on``, ``off`` are booleans (``name: no`` would be ``False``). Here, as in YAML 1.2:
    ``40e6`` and ``1e-3`` are floats; integers are decimal (``010`` is 10), ``0o17`` or
    ``0x1F``; booleans are only ``true``/``false``; anything else is a string, which the
    schema then refuses by field name where a number is expected.
    """


# The class's own resolver table: SafeLoader's without its YAML 1.1 bool/int/float rules.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _NUMBER_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """A YAML 1.2 integer: decimal (leading zeros allowed, not octal), ``0o`` or ``0x``."""
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
    try:
        return sign * int(digits[2:] if base != 10 else digits, base)
    except ValueError:  # an explicit ``!!int`` tag on text that is no integer
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not an integer (decimal, 0o or 0x)", node.start_mark
        ) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


#: Deepest nesting a scenario may have; real scenarios use < 6 levels, and the composer
#: recurses per level, so a bound keeps a hostile file from ending in a RecursionError.
MAX_YAML_DEPTH = 64
#: Most nodes a document may expand to once aliases are resolved ("billion laughs" bound).
MAX_YAML_NODES = 100_000


def _mark(node_or_mark: Any) -> str:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> Any:
    """Mapping constructor that rejects a key given twice (PyYAML keeps the last silently)."""
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node)
        except TypeError:  # unhashable key: the base constructor reports it
            continue
        if first is not key_node:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first given at {_mark(first)})",
                key_node.start_mark,
            )
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of ``root`` with aliases expanded; raises on a recursive alias or too many."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise yaml.composer.ComposerError(
                None, None, "recursive alias (a node containing itself)", node.start_mark
            )
        active.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1 + sum(size(c) for c in children)
        active.discard(key)
        if total > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"expands to more than {MAX_YAML_NODES} values (aliases repeated too often)",
                node.start_mark,
            )
        sizes[key] = total
        return total

    return size(root)


class _BoundedLoader(_Loader):
    """``_Loader`` with a depth bound, an alias-expansion bound and no duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Compose one node, refusing nesting deeper than :data:`MAX_YAML_DEPTH`."""
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_YAML_DEPTH} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """Construct one value; a bad explicit tag or text is a ``ConstructorError`` at its line.

        PyYAML's constructors raise ``ValueError`` (``!!float abc``), ``KeyError``
        (``!!bool maybe``), ``AttributeError`` (``!!timestamp x``) or ``TypeError``
        (``!!map [1]``); a string with an unpaired surrogate (U+D800) could not be
        written back as UTF-8. Each becomes one YAML error naming the line.
        """
        try:
            value = super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError) as exc:
            if isinstance(node, yaml.ScalarNode):
                what = repr(node.value)
            else:
                what = "a sequence" if isinstance(node, yaml.SequenceNode) else "a mapping"
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"cannot read {what} as !!{node.tag.rsplit(':', 1)[-1]}",
                node.start_mark,
            ) from exc
        if isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a string holds an unpaired surrogate (not valid Unicode text)",
                node.start_mark,
            )
        return value

    def get_single_node(self) -> Any:
        """The document's node, checked against :data:`MAX_YAML_NODES` before construction."""
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node)
        return node


_BoundedLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def parse_yaml(text: str) -> Any:
    """Parse YAML text safely, reading ``40e6``-style numbers as floats.

    Duplicate keys, nesting deeper than :data:`MAX_YAML_DEPTH` and alias bombs (more than
    :data:`MAX_YAML_NODES` values) raise ``yaml.YAMLError``, so nothing is silently dropped and
    no hostile file ends in a ``RecursionError`` or exhausts memory.
    """
    return yaml.load(text, Loader=_BoundedLoader)


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: where (line, column) and what, without PyYAML's snippets."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        return f"{_mark(exc.problem_mark)}: {what}"
    return " ".join(str(exc).split())


def dump_yaml(data: Any) -> str:
    """YAML text of plain data (keys kept in order), readable back by :func:`parse_yaml`."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


# ----------------------------------------------------------------------------------------
# Built-in scenarios
# ----------------------------------------------------------------------------------------
def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenario names → their YAML files, sorted by name."""
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.yaml"))}


def scenario_descriptions() -> dict[str, str]:
    """Built-in scenario names → their ``description`` (empty if unreadable)."""
    out = {}
    for name, path in builtin_scenarios().items():
        try:
            raw = parse_yaml(path.read_text(encoding="utf-8"))
            out[name] = str(raw.get("description", "")) if isinstance(raw, dict) else ""
        except (OSError, yaml.YAMLError):
            out[name] = ""
    return out


def _resolve_source(name_or_path: str | Path) -> Path:
    if not isinstance(name_or_path, str | Path):
        raise TypeError(
            f"a scenario is a built-in name or a YAML path (str or Path), got "
            f"{type(name_or_path).__name__}"
        )
    if not str(name_or_path).strip():  # Path('') is '.', which would be "a directory"
        raise ScenarioError(
            f"scenario name is empty; give a built-in name ({', '.join(builtin_scenarios())}) "
            "or a YAML path"
        )
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    builtins = builtin_scenarios()
    text = str(name_or_path)
    stem = text[: -len(".yaml")] if text.endswith(".yaml") else text
    if "/" not in text and "\\" not in text and stem in builtins:
        return builtins[stem]
    listing = ", ".join(builtins) or "none"
    if path.is_dir():
        raise ScenarioError(f"scenario path {text!r} is a directory; built-in scenarios: {listing}")
    close = difflib.get_close_matches(Path(stem).name, list(builtins), n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ScenarioError(f"scenario file not found: {text!r}{hint}; built-in scenarios: {listing}")


# ----------------------------------------------------------------------------------------
# Overrides
# ----------------------------------------------------------------------------------------
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_overrides(overrides: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Turn ``["cell.bandwidth_hz=40e6", ...]`` into ``{"cell.bandwidth_hz": 40e6.0, ...}``.

    Values are parsed as YAML (``40e6`` → float, ``true`` → bool, ``[1, 2]`` → list,
    ``{id: pf}`` → mapping); a mapping passes through unchanged.

    Raises:
        ScenarioError: For an item without ``=``, a malformed key or a key given twice.
    """
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            key, sep, text = str(item).partition("=")
            if not sep:
                raise ScenarioError(
                    f"override {item!r} must look like key=value, e.g. cell.bandwidth_hz=40e6"
                )
            try:
                value = parse_yaml(text) if text.strip() else None
            except yaml.YAMLError as exc:
                raise ScenarioError(
                    f"override {item!r}: cannot parse the value: {yaml_error_text(exc)}"
                ) from None
            items.append((key.strip(), value))
    out: dict[str, Any] = {}
    for key, value in items:
        if not isinstance(key, str) or not _KEY.match(key):
            raise ScenarioError(
                f"override key {key!r} must be a dotted field path, e.g. cell.bandwidth_hz"
            )
        if key in out:  # --set x=1 --set x=2: which one was meant is a guess
            raise ScenarioError(
                f"override {key!r} is given twice ({out[key]!r} and {value!r}); give it once"
            )
        out[key] = value
    return out


def apply_overrides(
    raw: Mapping[str, Any], overrides: Iterable[str] | Mapping[str, Any] | None
) -> dict[str, Any]:
    """Return a deep copy of ``raw`` with the dotted overrides set (before validation).

    Missing intermediate mappings are created (validation then reports unknown keys). A policy
    given as a string (``policies.prb: pf``) becomes ``{id: pf}`` when a key below it is set.

    Raises:
        ScenarioError: When a key below a non-mapping value is set.
    """
    out: dict[str, Any] = copy.deepcopy(dict(raw))
    for key, value in parse_overrides(overrides).items():
        parts = key.split(".")
        node: dict[str, Any] = out
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif isinstance(child, str) and depth == 1 and parts[0] == "policies":
                child = node[part] = {"id": child}
            elif not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ScenarioError(
                    f"cannot set {key}: {where} is {child!r}, not a mapping of fields"
                )
            node = child
        node[parts[-1]] = value
    return out


# ----------------------------------------------------------------------------------------
# Validation errors → one readable message
# ----------------------------------------------------------------------------------------
def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic models inside an annotation (unwrapping Annotated, unions, Optional)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for a in typing.get_args(annotation) for m in _models_in(a)]
    return []


def _literal_values(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return list(typing.get_args(annotation))
    if origin is typing.Annotated:
        return _literal_values(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [v for a in typing.get_args(annotation) for v in _literal_values(a)]
    return []


def _range_text(field: FieldInfo) -> str:
    parts = []
    for m in field.metadata:
        if isinstance(m, annotated_types.Gt):
            parts.append(f"> {m.gt}")
        elif isinstance(m, annotated_types.Ge):
            parts.append(f">= {m.ge}")
        elif isinstance(m, annotated_types.Lt):
            parts.append(f"< {m.lt}")
        elif isinstance(m, annotated_types.Le):
            parts.append(f"<= {m.le}")
        elif isinstance(m, annotated_types.MinLen):
            parts.append(f"length >= {m.min_length}")
        elif isinstance(m, annotated_types.MaxLen):
            parts.append(f"length <= {m.max_length}")
    return " and ".join(parts)


def _tag_model(models: list[type[BaseModel]], tag: Any) -> type[BaseModel] | None:
    """The member of a discriminated union (on ``kind``) whose tag is ``tag``."""
    for m in models:
        kind = m.model_fields.get("kind")
        if kind is not None and tag in _literal_values(kind.annotation):
            return m
    return None


def _walk(
    loc: tuple[Any, ...], root: type[BaseModel]
) -> tuple[str, FieldInfo | None, list[type[BaseModel]]]:
    """Map a pydantic error location to (dotted path, leaf field, models holding the leaf)."""
    current: list[type[BaseModel]] = [root]
    parent: list[type[BaseModel]] = current
    path: list[str] = []
    field: FieldInfo | None = None
    for item in loc:
        if isinstance(item, int):
            path.append(f"[{item}]")
            continue
        owner = next((m for m in current if item in m.model_fields), None)
        if owner is not None:
            field = owner.model_fields[item]
            parent = [owner]
            current = _models_in(field.annotation)
            path.append(str(item))
            continue
        tagged = _tag_model(current, item) if len(current) > 1 else None
        if tagged is not None:  # discriminated-union tag in the location: not a field
            current = [tagged]
            continue
        parent, current, field = current, [], None
        path.append(str(item))
    text = ".".join(path).replace(".[", "[")
    return text, field, parent


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field_error(err: Mapping[str, Any], root: type[BaseModel]) -> FieldError:
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    path, field, parent = _walk(loc, root)
    msg = str(err.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = sorted({f for m in parent for f in m.model_fields})
        leaf = str(loc[-1]) if loc else ""
        close = difflib.get_close_matches(leaf, allowed, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = "top-level key" if len(path.split(".")) == 1 else "field"
        return FieldError(path, f"unknown {where}{hint}; allowed: {', '.join(allowed)}", value)
    if kind == "missing":
        desc = f" ({field.description})" if field is not None and field.description else ""
        return FieldError(path, f"required field is missing{desc}", None)
    extra = ""
    if field is not None and kind not in {"literal_error", "value_error", "assertion_error"}:
        rng = _range_text(field)
        choices = _literal_values(field.annotation)
        if rng:
            extra = f" [allowed: {rng}]"
        elif choices:
            extra = f" [allowed: {', '.join(repr(c) for c in choices)}]"
    got = "" if isinstance(value, Mapping) else f"; got {_short(value)}"
    return FieldError(path, f"{msg}{extra}{got}", value)


def format_validation_error(
    exc: ValidationError,
    source: str,
    root: type[BaseModel] = ScenarioConfig,
    what: str = "scenario",
) -> ScenarioError:
    """One :class:`ScenarioError` line: every bad field by dotted path, value, allowed range."""
    errors = [_field_error(e, root) for e in exc.errors(include_url=False)]
    n = len(errors)
    head = f"invalid {what} {source}: " + (f"{n} errors: " if n > 1 else "")
    return ScenarioError(head + "; ".join(str(e) for e in errors), errors)


# ----------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------
def validate_scenario(
    raw: Mapping[str, Any],
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    *,
    source: str = "<mapping>",
) -> ScenarioConfig:
    """Validate a raw scenario mapping (after applying ``overrides``).

    Args:
        raw: The scenario as plain data (what YAML parses to).
        overrides: Dotted overrides, ``["key=value", ...]`` or ``{"key": value}``.
        source: How to name the scenario in error messages.

    Raises:
        ScenarioError: Naming every bad field, its value and the allowed values or range.
    """
    if not isinstance(raw, Mapping):
        raise ScenarioError(
            f"invalid scenario {source}: expected a mapping of fields, got {type(raw).__name__}"
        )
    data = apply_overrides(raw, overrides)
    try:
        return ScenarioConfig.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, source) from None


def load_scenario(
    name_or_path: str | Path,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
) -> ScenarioConfig:
    """Load a built-in scenario by name (``"nr_cell"``) or a YAML file by path.

    Args:
        name_or_path: Built-in name (see :func:`builtin_scenarios`) or path to a YAML file.
        overrides: Dotted overrides applied before validation, e.g.
            ``["cell.bandwidth_hz=40e6", "duration_s=0.5"]`` or ``{"seed": 3}``.

    Returns:
        The validated, frozen scenario.

    Raises:
        ScenarioError: Missing file (listing the built-in scenarios), YAML syntax error, or
            invalid fields (each named by dotted path with value and allowed values/range).
    """
    path = _resolve_source(name_or_path)
    raw = read_yaml_file(path, "scenario")
    if raw is None:
        raise ScenarioError(
            f"scenario file {str(path)!r} is empty; a scenario needs at least name and duration_s"
        )
    return validate_scenario(raw, overrides, source=repr(str(name_or_path)))


def read_yaml_file(path: Path, what: str = "file") -> Any:
    """Parse a YAML file; every failure is one :class:`ScenarioError` naming the file.

    Raises:
        ScenarioError: Unreadable, not UTF-8 text, or invalid YAML (with line and column).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"cannot read {what} {str(path)!r}: not UTF-8 text (byte {exc.object[exc.start]:#04x} "
            f"at offset {exc.start}); a scenario is a YAML text file"
        ) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read {what} {str(path)!r}: {exc.strerror}") from None
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"invalid YAML in {str(path)!r}: {yaml_error_text(exc)}") from None


def with_overrides(
    config: ScenarioConfig, overrides: Iterable[str] | Mapping[str, Any] | None
) -> ScenarioConfig:
    """A new, re-validated scenario: ``config`` with the dotted ``overrides`` applied."""
    if not overrides:
        return config
    raw = config.model_dump(mode="json")
    return validate_scenario(raw, overrides, source=repr(config.name))
