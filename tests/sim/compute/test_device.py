"""The device: timeline by hand, FIFO, energy, battery, memory, and real cost models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import simpy
from pydantic import ValidationError

from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.device import Device, DeviceConfig, LocalJob
from edgetwin.sim.compute.device_roofline import jetson_cost_model
from edgetwin.sim.compute.table_cost import load_cost_model

SHIPPED = Path(__file__).resolve().parents[3] / "kernels" / "profiles"
# 10 ms per iteration + 1 ms per new token + 0.01 ms per KV token read
COST = LinearCostModel(a_s=0.010, b_s_per_token=0.001, d_s_per_kv_token=1e-5)
CFG = {"memory_bytes": 1e9, "weights_bytes": 5e8, "kv_bytes_per_token": 1e3, "active_power_w": 5.0}


def _run(jobs: list[tuple[float, int, int]], horizon: float = 100.0, **cfg: float) -> Device:
    env = simpy.Environment()
    dev = Device(env, "phone", DeviceConfig.model_validate({**CFG, **cfg}), COST)
    dev.start()

    def arrivals() -> simpy.events.ProcessGenerator:
        for i, (t, p, o) in enumerate(jobs):
            yield env.timeout(t - env.now)
            dev.submit(LocalJob(i, t, p, o))

    env.process(arrivals())
    env.run(until=horizon)
    return dev


def test_one_job_timeline_by_hand() -> None:
    # prompt 100, 3 tokens: prefill 0.010 + 0.100 + 100e-5 = 0.111 s (first token);
    # decode over 101 and 102 KV tokens: 0.010 + 0.001 + 0.00101 / 0.00102 s
    job = _run([(1.0, 100, 3)]).jobs[0]
    assert job.first_token_s == pytest.approx(1.111)
    assert job.finish_s == pytest.approx(1.111 + 0.01201 + 0.01202)
    assert job.n_generated == 3
    assert job.status == "finished"
    assert job.energy_j == pytest.approx(5.0 * (job.finish_s - job.start_s))


def test_jobs_are_served_one_at_a_time_in_arrival_order() -> None:
    dev = _run([(0.0, 100, 50), (0.01, 10, 5), (0.02, 10, 5)])
    a, b, c = dev.jobs
    assert b.start_s == pytest.approx(a.finish_s)
    assert c.start_s == pytest.approx(b.finish_s)
    assert dev.results().summary["device_finished"] == 3


def test_energy_is_active_plus_idle() -> None:
    dev = _run([(2.0, 100, 3)], horizon=10.0, idle_power_w=0.5)
    s = dev.results().summary
    busy = dev.busy_s
    assert s["device_active_energy_j"] == pytest.approx(5.0 * busy)
    assert s["device_energy_j"] == pytest.approx(5.0 * busy + 0.5 * (10.0 - busy))
    assert s["device_utilization"] == pytest.approx(busy / 10.0)


def test_battery_stops_at_the_token_it_cannot_pay_for() -> None:
    # 5 W: the prefill costs 0.555 J, each decode step ~0.0601 J; 0.7 J buys prefill + 2 steps
    job = _run([(0.0, 100, 10)], battery_j=0.7).jobs[0]
    assert job.status == "battery_empty"
    assert job.n_generated == 3
    assert job.energy_j <= 0.7


def test_a_job_that_does_not_fit_is_refused() -> None:
    # weights 0.5 GB + (p + o) · 1 kB > 1 GB once p + o > 500,000 tokens
    dev = _run([(0.0, 499_000, 2_000), (0.0, 100, 2)])
    big, small = dev.jobs
    assert big.status == "out_of_memory"
    assert big.n_generated == 0
    assert small.status == "finished"


@pytest.mark.parametrize("bad", [{"active_power_w": -1}, {"memory_bytes": 0}, {"battery_j": 0}])
def test_bad_device_configs_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match=next(iter(bad))):
        DeviceConfig.model_validate({**CFG, **bad})


def test_real_cost_models_drive_the_device() -> None:
    # the shipped SmolLM-135M CPU profile and the Jetson Orin Nano Super roofline
    cpu = load_cost_model(SHIPPED, model="smollm-135m", hardware="cpu")
    jetson = jetson_cost_model("jetson-orin-nano-super", "llama-3.2-3b")
    for cm in (cpu, jetson):
        env = simpy.Environment()
        dev = Device(env, "d", DeviceConfig.model_validate(CFG), cm)
        steps = dev.step_times_s(LocalJob(0, 0.0, 128, 16))
        e = np.zeros(0, np.int64)
        assert steps[0] == pytest.approx(cm.iteration_time_s(np.array([128]), np.array([0]), e))
        assert steps[1] == pytest.approx(cm.iteration_time_s(e, e, np.array([129])))
        assert np.all(np.diff(steps[1:]) >= -1e-12)  # a longer context never decodes faster
        assert math.isfinite(steps.sum())
