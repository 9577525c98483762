"""The server's speculative verify: k + 1 query tokens batched, KV grown by accepted + 1."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.server import LLMServer, ServerConfig, VerifyOutcome
from edgetwin.sim.types import IntArray
from edgetwin.sim.workload.request import Request

COST = LinearCostModel(a_s=0.01, b_s_per_token=1e-4, c_s_per_seq=1e-3, d_s_per_kv_token=1e-6)


class Recording:
    """A linear cost that records each iteration's arrays and checks the KV accounting."""

    def __init__(self, inner: LinearCostModel) -> None:
        self.inner = inner
        self.calls: list[tuple[list[int], list[int], list[int]]] = []
        self.server: LLMServer | None = None

    def breakdown_s(self, pt: IntArray, pc: IntArray, dc: IntArray) -> dict[str, float]:
        return self.inner.breakdown_s(pt, pc, dc)

    def iteration_time_s(self, pt: IntArray, pc: IntArray, dc: IntArray) -> float:
        s = self.server
        if s is not None:  # every block is held by a running or a parked request
            kv = s.kv
            held = sum(kv.held(r.id) for r in (*s.running, *s.parked.values()))
            assert kv.n_used == held
            assert all(r.id not in kv for r in s.waiting)
            assert int(pt.sum()) + dc.size <= s.config.max_num_batched_tokens
            self.calls.append((pt.tolist(), pc.tolist(), dc.tolist()))
        return self.inner.iteration_time_s(pt, pc, dc)


def _server(cfg: ServerConfig | None = None) -> tuple[simpy.Environment, LLMServer, Recording]:
    env = simpy.Environment()
    cost = Recording(COST)
    server = LLMServer(env, cfg or ServerConfig(n_blocks=400, block_size=16), cost)
    cost.server = server
    server.start()
    return env, server, cost


def test_prefill_parks_then_a_verify_keeps_only_the_accepted_prefix_plus_one() -> None:
    env, server, cost = _server()
    req = Request(0, 0.0, prompt_tokens=40, output_tokens=20)
    got: dict[str, VerifyOutcome] = {}

    def ue() -> simpy.events.ProcessGenerator:
        got["prefill"] = yield server.submit_speculative(req)
        assert req.id in server.parked
        assert req not in server.running
        assert req.n_generated == 1
        assert req.n_computed == 40
        yield env.timeout(0.05)  # the draft travels; the request holds its KV meanwhile
        assert server.kv.held(req.id) == 3  # ceil(40 / 16)
        got["verify"] = yield server.verify(req, n_draft=8, n_accepted=3)

    env.process(ue())
    env.run(until=1.0)
    # the verify iteration: a prefill chunk of k + 1 = 9 query tokens over its 40-token context
    assert cost.calls[-1] == ([9], [40], [])
    assert got["verify"].end_s - got["verify"].start_s == pytest.approx(
        COST.iteration_time_s(np.array([9]), np.array([40]), np.zeros(0, np.int64))
    )
    # KV grows by accepted + 1 = 4 tokens (last sampled token + 3 accepted drafts), not by 9
    assert req.n_computed == 44
    assert got["verify"].kv_tokens == 44
    assert req.n_generated == 1 + 4
    assert server.kv.held(req.id) == got["verify"].kv_blocks == 3  # ceil(44 / 16)
    assert server.n_verify_query_tokens == 9
    assert server.n_verify_kept_tokens == 4


def test_rejected_positions_are_trimmed_from_the_kv_pool() -> None:
    # 46 tokens cached; a 9-token query would reach 55 (4 blocks), only 46 + 1 = 47 are kept
    env, server, _cost = _server()
    req = Request(0, 0.0, prompt_tokens=46, output_tokens=30)

    def ue() -> simpy.events.ProcessGenerator:
        yield server.submit_speculative(req)
        out = yield server.verify(req, n_draft=8, n_accepted=0)
        assert out.kv_tokens == 47
        assert server.kv.held(req.id) == 3  # ceil(47 / 16); the 4th block went back
        assert server.kv.n_used == 3

    env.process(ue())
    env.run(until=1.0)


def test_a_zero_length_draft_is_costed_as_a_decode_and_batched_with_others() -> None:
    env, server, cost = _server()
    spec = Request(0, 0.0, prompt_tokens=30, output_tokens=5)
    plain = Request(1, 0.0, prompt_tokens=100, output_tokens=50)
    ends: list[float] = []

    def ue() -> simpy.events.ProcessGenerator:
        yield server.submit_speculative(spec)
        out = yield server.verify(spec, n_draft=0, n_accepted=0)
        ends.append(out.end_s)
        yield server.verify(spec, n_draft=3, n_accepted=1)

    server.submit(plain)
    env.process(ue())
    env.run(until=5.0)
    # k = 0: one decode of context n_computed + 1 = 31, in the same batch as the plain decode
    zero = [c for c in cost.calls if 31 in c[2]]
    assert len(zero) == 1
    assert len(zero[0][2]) == 2
    assert zero[0][0] == []
    # k = 3: a 4-token chunk over context 31, batched with the plain request's decode
    chunk = [c for c in cost.calls if c[0] == [4]]
    assert len(chunk) == 1
    assert chunk[0][1] == [31]
    assert len(chunk[0][2]) == 1
    assert spec.n_generated == 1 + 1 + 2
    assert plain.finished


def test_the_last_verify_completes_the_request_and_frees_its_kv() -> None:
    env, server, _cost = _server()
    req = Request(0, 0.0, prompt_tokens=10, output_tokens=4)
    done: list[Request] = []
    server.on_complete = done.append

    def ue() -> simpy.events.ProcessGenerator:
        yield server.submit_speculative(req)
        yield server.verify(req, n_draft=5, n_accepted=2)  # 1 + 3 = 4 tokens: done

    env.process(ue())
    env.run(until=1.0)
    assert done == [req]
    assert req.n_generated == 4
    assert req.id not in server.parked
    assert not server.running
    assert server.kv.n_used == 0


@pytest.mark.parametrize(
    ("n_draft", "n_accepted"), [(3, 4), (2, -1), (20, 19)], ids=["acc>k", "neg", "overshoot"]
)
def test_bad_verifies_are_refused(n_draft: int, n_accepted: int) -> None:
    env, server, _cost = _server()
    req = Request(0, 0.0, prompt_tokens=10, output_tokens=8)
    errors: list[str] = []

    def ue() -> simpy.events.ProcessGenerator:
        yield server.submit_speculative(req)
        with pytest.raises(ValueError, match="n_accepted") as exc:
            server.verify(req, n_draft, n_accepted)
        errors.append(str(exc.value))

    env.process(ue())
    env.run(until=1.0)
    assert errors
    with pytest.raises(ValueError, match="not parked"):
        server.verify(Request(9, 0.0, 5, 5), 1, 0)


def test_verifies_under_kv_pressure_conserve_every_token() -> None:
    # A pool too small for everyone forces preemptions of verifying and plain requests alike;
    # each speculative request still ends with exactly output_tokens generated, the KV pool
    # empties, and every iteration's accounting holds (Recording's asserts).
    cfg = ServerConfig(n_blocks=24, block_size=4, max_num_batched_tokens=64, max_num_seqs=8)
    env, server, cost = _server(cfg)
    rng = np.random.default_rng(7)
    reqs = [Request(i, 0.0, int(rng.integers(3, 20)), int(rng.integers(2, 25))) for i in range(8)]
    kept: dict[int, int] = {}

    def ue(req: Request) -> simpy.events.ProcessGenerator:
        yield env.timeout(float(rng.uniform(0, 0.05)))
        event = server.submit_speculative(req)
        assert event is not None
        yield event
        kept[req.id] = 1
        while req.n_generated < req.output_tokens:
            yield env.timeout(float(rng.uniform(0, 0.02)))
            left = req.output_tokens - req.n_generated
            k = int(rng.integers(0, min(6, left - 1) + 1))
            acc = int(rng.integers(0, k + 1))
            before = req.n_generated
            yield server.verify(req, k, acc)
            assert req.n_generated == before + acc + 1
            kept[req.id] += acc + 1

    for r in reqs:
        env.process(ue(r))
    plain = [Request(100 + i, 0.0, int(rng.integers(5, 30)), 20) for i in range(4)]
    for r in plain:
        server.submit(r)
    env.run(until=200.0)
    assert server.n_preemptions > 0
    assert any(r.preemptions for r in reqs)
    assert all(r.n_generated == r.output_tokens == kept[r.id] for r in reqs)
    assert all(r.finished for r in plain)
    assert server.kv.n_used == 0
    assert not server.parked
    assert not server.running
    assert len(cost.calls) == server.n_iterations
