"""Where each request runs: on the UE, at the edge or in the cloud (decision family ``offload``).

For each new request the :class:`Offloader` builds an observation of what each tier would cost
it *now* and asks its ``offload`` DecisionPoint for a tier (inline policy, or an external agent):

* ``tier`` — the tiers in action order, ``("local", "edge", "cloud")``;
* ``available`` bool [3] — the tier exists (and, for ``local``, the request fits the device);
* ``est_up_s``, ``est_down_s`` float64 [3] — prompt up / first token chunk down every hop of the
  tier's path (each hop's backlog, serialization and mean delay; 0 for ``local``);
* ``est_queue_s`` float64 [3] — work ahead of the request: the device's queued and remaining
  steps, or the prefills of the server's waiting requests;
* ``est_compute_s`` float64 [3] — the request's own prefill plus its decode steps (on a server,
  each decode step of a batch one larger than the running one);
* ``prompt_tokens``, ``output_tokens`` — the request's sizes.

Action: the tier index (0, 1, 2). The estimates are what a real offloading controller could
know (queue lengths and link rates) — not the simulator's future — so a policy that minimises
their sum (``offload/min_latency``) is a heuristic, not an oracle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
import simpy

from edgetwin.sim.compute.device import Device, LocalJob
from edgetwin.sim.compute.server import LLMServer
from edgetwin.sim.decision import DecisionPoint
from edgetwin.sim.metrics.summary import RunResult
from edgetwin.sim.net.journey import Journeys
from edgetwin.sim.workload.request import Request

__all__ = ["OFFLOAD_FAMILY", "TIERS", "Offloader", "Tier"]

OFFLOAD_FAMILY: Final[str] = "offload"
TIERS: Final[tuple[str, ...]] = ("local", "edge", "cloud")
_E = np.zeros(0, np.int64)


@dataclass(frozen=True, slots=True)
class Tier:
    """A remote tier: the journeys that reach it and the server(s) behind them."""

    journeys: Journeys
    servers: tuple[LLMServer, ...]


class Offloader:
    """Route each request to a tier (see the module docstring).

    Args:
        env: The SimPy environment.
        name: Component name.
        device: The UEs' own compute (``local``): one :class:`Device` shared by every UE, a
            mapping UE name → its :class:`Device`, or None.
        edge: The edge tier: one :class:`Tier` for every UE, a mapping UE name → its tier (e.g.
            the edge server of its site), or None.
        cloud: The cloud tier, the same way.
        policy: Inline ``offload`` policy; None leaves the DecisionPoint external.

    Raises:
        ValueError: No tier at all.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        *,
        device: Device | Mapping[str, Device] | None = None,
        edge: Tier | Mapping[str, Tier] | None = None,
        cloud: Tier | Mapping[str, Tier] | None = None,
        policy: Any = None,
    ) -> None:
        if device is None and edge is None and cloud is None:
            raise ValueError(f"{name}: an offloader needs at least one of device, edge, cloud")
        self.env = env
        self.name = name
        self._devices: Mapping[str, Device] = device if isinstance(device, Mapping) else {}
        self._shared_device = device if isinstance(device, Device) else None
        self.remote: dict[str, Tier | Mapping[str, Tier] | None] = {"edge": edge, "cloud": cloud}
        self.dp: DecisionPoint[dict[str, Any], int] = DecisionPoint(env, OFFLOAD_FAMILY, policy)
        self.decisions: list[dict[str, Any]] = []

    def start(self) -> None:
        """Nothing to start: decisions are made as requests come."""

    def finalize(self, now_s: float) -> None:
        """Nothing to close."""

    # ------------------------------------------------------------------ observation
    def observe(self, request: Request, ue: str | None = None) -> dict[str, Any]:
        """What each tier would cost ``request`` of ``ue`` now (see the module docstring)."""
        n = len(TIERS)
        obs: dict[str, Any] = {
            "tier": TIERS,
            "available": np.zeros(n, bool),
            "est_up_s": np.zeros(n),
            "est_down_s": np.zeros(n),
            "est_queue_s": np.zeros(n),
            "est_compute_s": np.zeros(n),
            "prompt_tokens": request.prompt_tokens,
            "output_tokens": request.output_tokens,
        }
        job = LocalJob(
            request.id, float(self.env.now), request.prompt_tokens, request.output_tokens
        )
        device = self.device_of(ue)
        if device is not None and device.fits(job):
            obs["available"][0] = True
            obs["est_queue_s"][0] = _device_backlog_s(device)
            obs["est_compute_s"][0] = float(device.step_times_s(job).sum())
        for k, key in enumerate(("edge", "cloud"), start=1):
            tier = self.tier_of(key, ue)
            if tier is None:
                continue
            obs["available"][k] = True
            obs["est_up_s"][k], obs["est_down_s"][k] = tier.journeys.estimate_s(request, ue)
            server = min(tier.servers, key=lambda s: len(s.waiting) + len(s.running))
            obs["est_queue_s"][k], obs["est_compute_s"][k] = _server_estimate(server, request)
        return obs

    def device_of(self, ue: str | None) -> Device | None:
        """The device that runs ``ue``'s local requests (None: it has none)."""
        if self._shared_device is not None:
            return self._shared_device
        return self._devices.get(ue) if ue is not None else None

    def tier_of(self, key: str, ue: str | None) -> Tier | None:
        """The ``edge`` or ``cloud`` tier that serves ``ue`` (None: it has none)."""
        tier = self.remote[key]
        if tier is None or isinstance(tier, Tier):
            return tier
        return tier.get(ue) if ue is not None else None

    @property
    def devices(self) -> list[Device]:
        """Every device of the tier ``local``, once each."""
        if self._shared_device is not None:
            return [self._shared_device]
        return list(self._devices.values())

    # ------------------------------------------------------------------ routing
    def submit(self, request: Request, ue: str = "ue") -> simpy.Event:
        """Decide where ``request`` (created now by ``ue``) runs, and send it there.

        Returns:
            An event fired when the request ends where it was sent (the device's job or the
            tier's journey: every token received, or stopped on the way).
        """
        done = self.env.event()
        self.env.process(self._route(request, ue, done))
        return done

    def _route(self, request: Request, ue: str, done: simpy.Event) -> simpy.events.ProcessGenerator:
        obs = self.observe(request, ue)
        action = yield from self.dp.ask(obs)
        k = int(action)
        if not (0 <= k < len(TIERS)) or not obs["available"][k]:
            allowed = ", ".join(f"{i} ({t})" for i, t in enumerate(TIERS) if obs["available"][i])
            raise ValueError(
                f"{self.name}: offload action {action!r} for request {request.id} is not an "
                f"available tier; allowed: {allowed}"
            )
        est = (obs["est_up_s"] + obs["est_queue_s"] + obs["est_compute_s"] + obs["est_down_s"])[k]
        self.decisions.append(
            {
                "id": request.id,
                "ue": ue,
                "t_s": float(self.env.now),
                "tier": TIERS[k],
                "est_latency_s": float(est),
            }
        )
        if k == 0:
            device = self.device_of(ue)
            assert device is not None
            job = LocalJob(
                request.id, float(self.env.now), request.prompt_tokens, request.output_tokens
            )
            ended = device.submit(job)
        else:
            tier = self.tier_of(TIERS[k], ue)
            assert tier is not None
            ended = tier.journeys.send(request, ue)
        yield ended
        done.succeed(request)

    def results(self) -> RunResult:
        """``offload`` decisions (one row per request) and the share of each tier."""
        df = pd.DataFrame(self.decisions, columns=["id", "ue", "t_s", "tier", "est_latency_s"])
        share = {
            f"offload_share_{t}": float((df["tier"] == t).mean()) if len(df) else math.nan
            for t in TIERS
        }
        return RunResult(tables={"offload": df}, summary={"offload_decisions": len(df), **share})


def _device_backlog_s(device: Device) -> float:
    """Compute time of the jobs queued on ``device``, plus the one it is on (s)."""
    total = 0.0
    for j in device.jobs:
        if math.isnan(j.finish_s):
            total += float(device.step_times_s(j)[j.n_generated :].sum())
    return total


def _server_estimate(server: LLMServer, request: Request) -> tuple[float, float]:
    """(queue, compute) seconds of ``request`` on ``server`` now.

    Queue: the waiting requests' prefills. Compute: its own prefill, then its decode steps in a
    batch one larger than the running one, at its mid-way context.
    """
    cm = server.cost_model
    queue = sum(
        cm.iteration_time_s(np.array([r.prompt_tokens]), np.array([0]), _E) for r in server.waiting
    )
    prefill = cm.iteration_time_s(np.array([request.prompt_tokens]), np.array([0]), _E)
    batch = len(server.running) + 1
    mid = request.prompt_tokens + request.output_tokens // 2  # decode context, mid-way
    step = cm.iteration_time_s(_E, _E, np.full(batch, mid, np.int64))
    return float(queue), float(prefill + (request.output_tokens - 1) * step)
