"""Array and id aliases shared across the simulator (like SB3's ``type_aliases``)."""

from __future__ import annotations

from typing import Any, NewType

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
AnyArray = npt.NDArray[Any]

CellId = NewType("CellId", int)
UeId = NewType("UeId", int)

__all__ = ["AnyArray", "BoolArray", "CellId", "FloatArray", "IntArray", "UeId"]
