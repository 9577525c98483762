"""EdgeTwin's simulation core (SimPy time, vectorized NR slots, metrics).

Imports only numpy, scipy, simpy, pydantic and pandas — never torch, gymnasium or matplotlib
(enforced by ``tests/test_imports.py``).
"""

from edgetwin.sim.clock import SlotClock
from edgetwin.sim.decision import DecisionPoint, DecisionRequest
from edgetwin.sim.engine import Simulation
from edgetwin.sim.rng import RandomStreams

__all__ = ["DecisionPoint", "DecisionRequest", "RandomStreams", "Simulation", "SlotClock"]
