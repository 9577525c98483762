"""A UE's own compute: a small LLM run on the device, one request at a time, with its energy.

The device serves local requests first come, first served, one stream at a time (an on-device
runtime decodes one sequence: llama.cpp, MLC, ExecuTorch). A request costs one prefill pass over
its prompt, which also yields the first token, then one decode step per further token, each
timed by the device's cost model — the CPU profiles of ``kernels/`` (``TableCostModel``, with
the framework terms of the runtime that was profiled) or the published-device roofline
(``device_roofline.DeviceCostModel``, e.g. a Jetson Orin Nano)::

    t_first = t_prefill(p) ;  t_i = t_decode(context = p + i),  i = 1 .. o - 1

Energy is the device's active power times its busy time plus its idle power times the rest
(a two-state power model, e.g. Carroll & Heiser, USENIX ATC 2010, for a phone's SoC). With a
battery, a request that would need more energy than is left stops at the token where the
battery runs out (status ``battery_empty``); a model whose weights plus the request's KV cache
do not fit the device's memory is refused (status ``out_of_memory``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import simpy
from pydantic import Field

from edgetwin.sim.compute.cost_model import CostModel
from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.metrics.summary import RunResult

__all__ = ["Device", "DeviceConfig", "LocalJob"]

Status = Literal["finished", "battery_empty", "out_of_memory", "unfinished"]
_E = np.zeros(0, np.int64)


class DeviceConfig(StrictConfig):
    """One device and the model it runs.

    Attributes:
        memory_bytes: Memory the model may use (weights + KV cache), bytes.
        weights_bytes: The model's weights, bytes.
        kv_bytes_per_token: KV-cache bytes per token of context (all layers).
        active_power_w: Power while computing, W.
        idle_power_w: Power while idle, W.
        battery_j: Energy available, J (None: mains powered).
    """

    memory_bytes: float = Field(..., gt=0, le=1e13)
    weights_bytes: float = Field(..., ge=0, le=1e13)
    kv_bytes_per_token: float = Field(..., ge=0, le=1e9)
    active_power_w: float = Field(..., ge=0, le=1e4)
    idle_power_w: float = Field(0.0, ge=0, le=1e4)
    battery_j: float | None = Field(None, gt=0, le=1e9)


@dataclass(slots=True)
class LocalJob:
    """One request run on the device (times in simulated seconds, ``nan`` until they happen).

    Attributes:
        id: Request id.
        arrival_s: When it reached the device.
        prompt_tokens: Prompt length, >= 1.
        output_tokens: Tokens to generate, >= 1.
        start_s: When the device started its prefill.
        first_token_s: When its first token came out.
        finish_s: When it ended (finished, or stopped).
        n_generated: Tokens generated.
        energy_j: Energy the device spent on it (active power × its compute time), J.
        status: ``finished``, ``battery_empty``, ``out_of_memory`` or ``unfinished``.
    """

    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    start_s: float = math.nan
    first_token_s: float = math.nan
    finish_s: float = math.nan
    n_generated: int = 0
    energy_j: float = 0.0
    status: Status = "unfinished"

    def __post_init__(self) -> None:
        if self.prompt_tokens < 1 or self.output_tokens < 1:
            raise ValueError(
                f"job {self.id}: prompt_tokens and output_tokens must be >= 1, got "
                f"{self.prompt_tokens} and {self.output_tokens}"
            )


class Device:
    """A device that runs local requests one at a time (see the module docstring).

    Args:
        env: The SimPy environment.
        name: Component name.
        config: Memory, power and battery.
        cost_model: Times of the device's model (prefill and decode iterations of batch 1).
    """

    def __init__(
        self, env: simpy.Environment, name: str, config: DeviceConfig, cost_model: CostModel
    ) -> None:
        self.env = env
        self.name = name
        self.config = config
        self.cost_model = cost_model
        self.jobs: list[LocalJob] = []
        self._done: dict[int, simpy.Event] = {}
        self._queue: simpy.Store = simpy.Store(env)
        self.busy_s = 0.0
        self.active_energy_j = 0.0

    # ---------------------------------------------------------------- component
    def start(self) -> None:
        """Start the device's serving loop."""
        self.env.process(self._loop())

    def submit(self, job: LocalJob) -> simpy.Event:
        """Queue ``job`` now (its ``arrival_s`` is set to the current time).

        Returns:
            An event fired with the job when it ends (finished, or stopped: see its status).
        """
        job.arrival_s = float(self.env.now)
        self.jobs.append(job)
        done = self._done[id(job)] = self.env.event()
        self._queue.put(job)
        return done

    def finalize(self, now_s: float) -> None:
        """Nothing to close: the records are complete at any time."""

    # ---------------------------------------------------------------- serving
    def fits(self, job: LocalJob) -> bool:
        """Whether weights plus the job's whole KV cache fit the device's memory."""
        kv = self.config.kv_bytes_per_token * (job.prompt_tokens + job.output_tokens)
        return self.config.weights_bytes + kv <= self.config.memory_bytes

    def step_times_s(self, job: LocalJob) -> np.ndarray:
        """Seconds of each step: the prefill (first token), then each decode step, ``[o]``."""
        p, o = job.prompt_tokens, job.output_tokens
        cm = self.cost_model
        out = np.empty(o, np.float64)
        out[0] = cm.iteration_time_s(np.array([p]), np.array([0]), _E)
        for i in range(1, o):  # token i attends over the prompt and the i tokens before it
            out[i] = cm.iteration_time_s(_E, _E, np.array([p + i]))
        return out

    def energy_left_j(self, now_s: float) -> float:
        """Battery energy left at ``now_s`` (inf without a battery)."""
        if self.config.battery_j is None:
            return math.inf
        idle_s = max(now_s - self.busy_s, 0.0)
        return self.config.battery_j - self.active_energy_j - self.config.idle_power_w * idle_s

    def spend(self, busy_s: float) -> float:
        """Account ``busy_s`` seconds of compute outside a local job (e.g. drafting); its J.

        The energy is the active power times ``busy_s`` (the two-state model above). Such
        compute is not queued behind local jobs: a scenario that drafts on a device should not
        also run local requests on it (overlaps are not modelled).
        """
        energy = self.config.active_power_w * busy_s
        self.busy_s += busy_s
        self.active_energy_j += energy
        return energy

    def _loop(self) -> simpy.events.ProcessGenerator:
        power = self.config.active_power_w
        while True:
            job: LocalJob = yield self._queue.get()
            job.start_s = float(self.env.now)
            if not self.fits(job):
                job.status, job.finish_s = "out_of_memory", job.start_s
                self._done.pop(id(job)).succeed(job)
                continue
            steps = self.step_times_s(job)
            # the battery (minus idle drain up to now) buys this many steps
            left = self.energy_left_j(float(self.env.now))
            affordable = len(steps)
            if math.isfinite(left) and power > 0:
                cum = np.cumsum(steps) * power
                affordable = int(np.searchsorted(cum, left, side="right"))
            for i, dt in enumerate(steps[:affordable]):
                yield self.env.timeout(float(dt))
                self.busy_s += float(dt)
                self.active_energy_j += power * float(dt)
                job.energy_j += power * float(dt)
                job.n_generated = i + 1
                if i == 0:
                    job.first_token_s = float(self.env.now)
            job.finish_s = float(self.env.now)
            job.status = "finished" if affordable == len(steps) else "battery_empty"
            self._done.pop(id(job)).succeed(job)

    # ---------------------------------------------------------------- results
    def results(self) -> RunResult:
        """``device_jobs`` (one row per job) and a summary (times in s, energy in J)."""
        table = pd.DataFrame(
            [
                {
                    "device": self.name,
                    "id": j.id,
                    "arrival_s": j.arrival_s,
                    "start_s": j.start_s,
                    "first_token_s": j.first_token_s,
                    "finish_s": j.finish_s,
                    "prompt_tokens": j.prompt_tokens,
                    "output_tokens": j.output_tokens,
                    "n_generated": j.n_generated,
                    "energy_j": j.energy_j,
                    "status": j.status,
                }
                for j in self.jobs
            ]
        )
        now = float(self.env.now)
        done = table[table.status == "finished"] if len(table) else table
        return RunResult(
            tables={"device_jobs": table},
            summary={
                "device_jobs": len(self.jobs),
                "device_finished": len(done),
                "device_ttft_mean_s": float((done.first_token_s - done.arrival_s).mean())
                if len(done)
                else math.nan,
                "device_utilization": self.busy_s / now if now > 0 else math.nan,
                "device_active_energy_j": self.active_energy_j,
                "device_energy_j": self.active_energy_j
                + self.config.idle_power_w * max(now - self.busy_s, 0.0),
            },
        )
