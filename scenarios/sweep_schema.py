"""The YAML sweep file of ``edgetwin sweep --sweep FILE.yaml``: grid, policy sets, seeds.

Example::

    grid:                          # dotted scenario field -> values (one axis each, in order)
      cell.bandwidth_hz: [20e6, 40e6]
      topology.ues_per_cell: [10, 20]
    policies:                      # set name -> "family=id[+family=id...]" or a mapping
      B0: prb=pf+power=equal
      RR: {prb: rr}
    seeds: 4                       # a count (from the scenario's seed) or a list [0, 1, 2]
    baseline: B0                   # paired differences against this set (default: the first)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgetwin.scenarios.errors import ScenarioError
from edgetwin.scenarios.load import read_yaml_file

__all__ = ["SweepFile", "load_sweep_file"]


class SweepFile(BaseModel):
    """A sweep file: what to vary, which policy sets, which seeds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="dotted scenario field (e.g. cell.bandwidth_hz) -> list of values",
    )
    policies: dict[str, str | dict[str, str]] = Field(
        default_factory=dict,
        description="policy-set name -> 'prb=pf+power=equal' or {prb: pf, power: equal}",
    )
    seeds: int | list[int] | None = Field(
        default=None, description="number of seeds (>= 1) or an explicit list of seeds"
    )
    baseline: str | None = Field(default=None, description="name of the baseline policy set")


def load_sweep_file(path: str | Path) -> SweepFile:
    """Read and validate a sweep file.

    Raises:
        ScenarioError: Unreadable file, YAML error, or a bad field (named, with what is allowed).
    """
    raw = read_yaml_file(Path(path), "sweep file")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScenarioError(
            f"sweep file {str(path)!r}: expected a mapping with grid, policies, seeds, baseline; "
            f"got {type(raw).__name__}"
        )
    try:
        return SweepFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        field = SweepFile.model_fields.get(str(err["loc"][0])) if err["loc"] else None
        hint = (
            f"expected {field.description}"
            if field is not None
            else f"allowed fields: {', '.join(SweepFile.model_fields)}"
        )
        raise ScenarioError(f"sweep file {str(path)!r}: {where}: {err['msg']} ({hint})") from None
