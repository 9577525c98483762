"""Chat sessions: closed loop, conversation history, common random numbers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import simpy

from edgetwin.sim.rng import RandomStreams
from edgetwin.sim.workload.request import Request
from edgetwin.sim.workload.sessions import ChatSessionConfig, ChatSessions


def _run(service_s: float, seed: int = 0, horizon: float = 600.0, **cfg: object):
    """Sessions of 3 UEs against a target that answers after ``service_s`` seconds."""
    env = simpy.Environment()
    answered: list[tuple[str, float, float]] = []

    def send(req: Request, ue: str) -> simpy.Event:
        done = env.event()

        def answer() -> simpy.events.ProcessGenerator:
            yield env.timeout(service_s)
            answered.append((ue, req.arrival_s, env.now))
            done.succeed(req)

        env.process(answer())
        return done

    config = ChatSessionConfig.model_validate(
        {"think_time_mean_s": 5.0, "session_gap_mean_s": 10.0, **cfg}
    )
    s = ChatSessions(env, "chat", ["a", "b", "c"], config, RandomStreams(seed), send)
    s.start()
    env.run(until=horizon)
    return s, answered


def test_the_next_turn_waits_for_the_answer() -> None:
    # closed loop: a UE never has two requests out; each turn starts after the last answer
    s, answered = _run(service_s=3.0)
    for ue in ("a", "b", "c"):
        sent = [t for u, *_, t in s.sent if u == ue]
        done = [d for u, _, d in answered if u == ue]
        assert len(sent) >= 5
        for k in range(1, len(sent)):
            assert sent[k] >= done[k - 1]  # sent after the previous answer arrived


def test_a_slower_system_gets_fewer_requests() -> None:
    fast, _ = _run(service_s=0.5)
    slow, _ = _run(service_s=20.0)
    assert len(slow.sent) < len(fast.sent)


def test_prompts_carry_the_conversation() -> None:
    s, _ = _run(service_s=1.0, turns_mean=6.0)
    rows = [r for r in s.sent if r[0] == "a"]
    for prev, cur in itertools.pairwise(rows):
        if cur[1] == prev[1]:  # same session: the new prompt holds the previous turn
            assert cur[3] > prev[3] + prev[4]
        else:
            assert cur[2] == 0  # a new session starts from scratch
    no_history, _ = _run(service_s=1.0, turns_mean=6.0, carry_history=False)
    assert np.mean([r[3] for r in no_history.sent]) < np.mean([r[3] for r in s.sent])


def test_history_is_capped_at_the_context_window() -> None:
    s, _ = _run(service_s=0.1, turns_mean=50.0, max_context_tokens=512)
    assert max(r[3] for r in s.sent) == 511


def test_same_seed_same_conversations_whatever_the_speed() -> None:
    # common random numbers: the k-th turn of each UE has the same sizes, fast or slow
    fast, _ = _run(service_s=0.5, seed=4)
    slow, _ = _run(service_s=5.0, seed=4)
    for ue in ("a", "b", "c"):
        f = [(r[1], r[2], r[3], r[4]) for r in fast.sent if r[0] == ue]
        w = [(r[1], r[2], r[3], r[4]) for r in slow.sent if r[0] == ue]
        assert f[: len(w)] == w
    other, _ = _run(service_s=0.5, seed=5)
    assert [r[3] for r in other.sent[:10]] != [r[3] for r in fast.sent[:10]]


@pytest.mark.parametrize(
    "bad", [{"turns_mean": 0.5}, {"think_time_mean_s": 0}, {"max_context_tokens": 1}]
)
def test_bad_session_configs_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        ChatSessionConfig.model_validate(bad)


def test_ue_names_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="distinct"):
        ChatSessions(simpy.Environment(), "c", ["a", "a"], ChatSessionConfig(), RandomStreams(0),
                     lambda r, u: simpy.Environment().event())  # fmt: skip
