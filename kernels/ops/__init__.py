"""Operator families timed by ``kernels/``: one module per family, one ``OpSpec`` per operator."""

from __future__ import annotations

from typing import Final

from edgetwin.kernels.ops import adapter_io, attention, elementwise, kv_quant, layer, linear, lora
from edgetwin.kernels.ops.base import OpSpec, Shape

#: Operator name (as in ``edgetwin.sim.compute.profiles.OPS``) -> its spec.
OP_SPECS: Final[dict[str, OpSpec]] = {
    spec.name: spec
    # `decoder_layer` last: a whole layer is timed after its operators
    for module in (linear, attention, elementwise, lora, kv_quant, adapter_io, layer)
    for spec in module.SPECS
}

__all__ = ["OP_SPECS", "OpSpec", "Shape"]
