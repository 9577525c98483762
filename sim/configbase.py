"""Common base of every validated config: numbers are numbers, and finite.

Pydantic's lax mode reads ``true`` as ``1`` for an ``int`` or ``float`` field and lets NaN/inf
through a ``le=3600`` bound with a misleading message; a scenario typo would then run silently
(``topology.ues_per_cell: true`` → 1 UE). Every config model inherits :class:`StrictConfig`, so
each numeric field of each config gets the same two checks in one place.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["StrictConfig", "check_path_name"]


def _leaves(annotation: Any) -> list[Any]:
    """The leaf types of ``annotation`` (unwrapping Annotated and unions); Literal values as is."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _leaves(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return [leaf for a in args for leaf in _leaves(a)]
    if origin is Literal:
        return list(args)
    return [annotation]


def _admits_bool(annotation: Any) -> bool:
    """True when ``annotation`` accepts a boolean on purpose (``bool``, ``Any``, a bool Literal)."""
    return any(
        leaf is bool or leaf is Any or isinstance(leaf, bool) for leaf in _leaves(annotation)
    )


def _is_numeric(annotation: Any) -> bool:
    """True when ``annotation`` holds a number (int, float or an int/float Literal)."""
    return any(
        leaf in (int, float) or (isinstance(leaf, int | float) and not isinstance(leaf, bool))
        for leaf in _leaves(annotation)
    )


class _BoolGiven:
    """A boolean found where a number belongs: fails the field's own check, named clearly."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"{str(self.value).lower()} (a boolean, not a number)"


class StrictConfig(BaseModel):
    """Frozen, no unknown keys, no NaN/inf, no boolean where a number is expected."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_number(cls, data: Any) -> Any:
        """Wrap booleans given to numeric fields, so the field's error names its own path.

        A ``mode="before"`` *field* validator on every field would be simpler, but pydantic
        forbids one on the ``kind`` discriminator fields.
        """
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            annotation = field.annotation if field is not None else None
            is_bool = isinstance(value, bool | np.bool_)  # numpy's too: np.True_ is no int
            if is_bool and _is_numeric(annotation) and not _admits_bool(annotation):
                out[name] = _BoolGiven(bool(value))
        return out


def check_path_name(name: str) -> str:
    """A run name that is used in result paths: no slash or backslash, no leading ``.``.

    Shared by the cell and serving scenarios (their ``name`` field validators).

    Raises:
        ValueError: Naming the rule.
    """
    if any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError("must not contain '/' or '\\' nor start with '.' (used in paths)")
    return name
