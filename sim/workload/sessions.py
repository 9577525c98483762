"""Per-UE chat sessions: closed-loop turns with think time, the conversation resent each turn.

Each UE runs sessions one after another. A session has a geometric number of turns (mean
``turns_mean``); a turn is one request whose new text has a geometric length (mean
``new_prompt_tokens_mean``) and whose answer has a geometric length (mean
``output_tokens_mean``). The loop is **closed**: the user reads the answer, thinks for an
exponential time (mean ``think_time_mean_s``) and only then sends the next turn, so a slow
system slows its own offered load, as real chat users do (the closed-system model of
Schroeder, Wierman & Harchol-Balter, NSDI 2006). Between sessions the UE is idle for an
exponential gap (mean ``session_gap_mean_s``).

With ``carry_history`` the prompt of turn ``k`` is the whole conversation so far — previous
prompt + previous answer + the new text — as chat APIs resend it (capped at
``max_context_tokens`` by dropping the oldest tokens).

Each UE draws from its own random stream (``sessions.<ue>``), and the sizes and think times of
its turns do not depend on how fast they are served: two policies with the same seed see the
same conversations (common random numbers); only the timing differs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import simpy
from pydantic import Field

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.rng import RandomStreams
from edgetwin.sim.workload.request import Request

__all__ = ["ChatSessionConfig", "ChatSessions"]


class ChatSessionConfig(StrictConfig):
    """Chat behaviour of every UE (see the module docstring)."""

    turns_mean: float = Field(4.0, ge=1, le=1e4)
    think_time_mean_s: float = Field(20.0, gt=0, le=1e5)
    session_gap_mean_s: float = Field(60.0, ge=0, le=1e6)
    new_prompt_tokens_mean: float = Field(60.0, ge=1, le=1e6)
    output_tokens_mean: float = Field(250.0, ge=1, le=1e6)
    carry_history: bool = True
    max_context_tokens: int = Field(8192, ge=2, le=10_000_000)


class ChatSessions:
    """One closed-loop chat process per UE, sending requests through ``send``.

    Args:
        env: The SimPy environment.
        name: Component name.
        ues: The UEs' names.
        config: Session behaviour.
        streams: The run's random streams (each UE uses ``sessions.<ue>``).
        send: Sends a request from a UE now and returns the event fired when its answer has
            been received (or its journey ended otherwise): e.g. ``Offloader.submit``.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        ues: list[str],
        config: ChatSessionConfig,
        streams: RandomStreams,
        send: Callable[[Request, str], simpy.Event],
    ) -> None:
        if not ues or len(set(ues)) != len(ues):
            raise ValueError(f"{name}: ues must be distinct names, at least one; got {ues!r}")
        self.env = env
        self.name = name
        self.ues = list(ues)
        self.config = config
        self.streams = streams
        self.send = send
        self.sent: list[tuple[str, int, int, int, int, float]] = []
        self._ids = itertools.count()

    def start(self) -> None:
        """Start one session process per UE."""
        for ue in self.ues:
            self.env.process(self._ue(ue))

    def finalize(self, now_s: float) -> None:
        """Nothing to close."""

    def _ue(self, ue: str) -> simpy.events.ProcessGenerator:
        cfg = self.config
        rng = self.streams.get(f"sessions.{ue}")
        session = 0
        while True:
            yield self.env.timeout(float(rng.exponential(cfg.session_gap_mean_s)))
            history = 0
            for turn in range(_geometric(rng, cfg.turns_mean)):
                new = _geometric(rng, cfg.new_prompt_tokens_mean)
                out = _geometric(rng, cfg.output_tokens_mean)
                think = float(rng.exponential(cfg.think_time_mean_s))
                prompt = min(history + new, cfg.max_context_tokens - 1)
                req = Request(next(self._ids), float(self.env.now), prompt, out)
                self.sent.append((ue, session, turn, prompt, out, float(self.env.now)))
                yield self.send(req, ue)  # closed loop: the answer comes first
                history = prompt + out if cfg.carry_history else 0
                yield self.env.timeout(think)
            session += 1


def _geometric(rng: np.random.Generator, mean: float) -> int:
    """A geometric count >= 1 with the given mean (success probability ``1 / mean``)."""
    return int(rng.geometric(1.0 / mean))
