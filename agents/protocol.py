"""The Policy protocol: anything that maps one observation to one action (ARCHITECTURE.md §4.3).

Analytic baselines and trained networks implement the same two methods, so one object drives a
scenario run (attached inline to a ``DecisionPoint``), a Gymnasium env and a PettingZoo agent.
The observation is the raw ``Dict`` of named arrays (lossless); the action is an element of the
family's action space.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

ObsT_contra = TypeVar("ObsT_contra", contravariant=True)
ActT_co = TypeVar("ActT_co", covariant=True)


@runtime_checkable
class Policy(Protocol[ObsT_contra, ActT_co]):
    """A decision-maker: analytic rule or trained network."""

    def reset(self, *, seed: int | None = None) -> None:
        """Clear internal state (averages, bandit statistics, recurrent state) at episode start."""

    def act(self, obs: ObsT_contra) -> ActT_co:
        """Return the action for this decision. Must not mutate ``obs``."""
