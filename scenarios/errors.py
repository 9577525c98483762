"""The one exception type of scenario loading and validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One invalid field of a scenario.

    Attributes:
        path: Dotted path of the field (``"cell.bandwidth_hz"``); empty for the whole scenario.
        message: What is wrong, including the allowed values or range when known.
        value: The offending input value (``None`` when the field is missing).
    """

    path: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ScenarioError(ValueError):
    """A scenario that cannot be found, parsed or validated.

    The message names every bad field by its dotted path, the bad value and the allowed values or
    range; ``errors`` holds the same information as :class:`FieldError` records.

    Args:
        message: One-line description.
        errors: The individual field errors, if any.
    """

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors: list[FieldError] = list(errors or [])
