"""DecisionPoint: the one seam between the simulator and its policies (ARCHITECTURE.md §4.5).

A component that needs a decision (a cell's PRB map, its power split, later an adapter to
evict or a draft length) owns a ``DecisionPoint`` and writes ``action = yield from dp.ask(obs)``.

* **Inline** (scenario runs): a policy is attached; ``ask`` calls ``policy.act(obs)`` and
  returns at once — no SimPy event, no suspension, so the slot loop stays fast.
* **External** (RL environments): no policy is attached; ``ask`` fires ``dp.requested`` with
  a :class:`DecisionRequest` and suspends the component until the environment replies through
  ``request.reply.succeed(action)``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import simpy

if TYPE_CHECKING:  # sim never imports agents at runtime (layering, §4.1)
    from edgetwin.agents.protocol import Policy

ObsT = TypeVar("ObsT")
ActT = TypeVar("ActT")


@dataclass(frozen=True, slots=True)
class DecisionRequest(Generic[ObsT, ActT]):
    """A pending external decision: the observation and the event to reply on."""

    family: str
    obs: ObsT
    reply: simpy.Event


class DecisionPoint(Generic[ObsT, ActT]):
    """Where a component asks one decision family for an action.

    Args:
        env: The SimPy environment.
        family: Decision family name (``"prb"``, ``"power"``, ...).
        policy: Inline policy; ``None`` leaves the point detached (external mode).
    """

    def __init__(self, env: simpy.Environment, family: str, policy: Policy[Any, Any] | None = None):
        self._env = env
        self.family = family
        self._policy = policy
        self.requested: simpy.Event = env.event()
        self.n_decisions = 0

    @property
    def policy(self) -> Policy[Any, Any] | None:
        """The attached inline policy, or ``None`` in external mode."""
        return self._policy

    @property
    def is_inline(self) -> bool:
        """True when a policy is attached (no suspension on ``ask``)."""
        return self._policy is not None

    def attach(self, policy: Policy[Any, Any] | None) -> None:
        """Attach an inline policy (or detach with ``None``)."""
        self._policy = policy

    def decide(self, obs: ObsT) -> ActT:
        """Inline fast path: the attached policy's action (no generator overhead)."""
        self.n_decisions += 1
        return self._policy.act(obs)  # type: ignore[union-attr,no-any-return]

    def ask(self, obs: ObsT) -> Generator[simpy.Event, Any, ActT]:
        """Return the action for ``obs``: inline, or by suspending until an external reply."""
        if self._policy is not None:
            self.n_decisions += 1
            return self._policy.act(obs)  # type: ignore[no-any-return]
        reply = self._env.event()
        fired, self.requested = self.requested, self._env.event()
        fired.succeed(DecisionRequest(family=self.family, obs=obs, reply=reply))
        self.n_decisions += 1
        action: ActT = yield reply
        return action
