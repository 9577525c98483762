import simpy

from edgetwin.sim.decision import DecisionPoint, DecisionRequest
from edgetwin.sim.engine import Simulation
from edgetwin.sim.metrics.summary import RunResult


class Doubler:
    def reset(self, *, seed=None):
        pass

    def act(self, obs):
        return 2 * obs


class Asker:
    """A component asking one decision per time unit."""

    name = "asker"

    def __init__(self, sim, policy):
        self.env = sim.env
        self.dp = DecisionPoint(sim.env, "x", policy)
        sim.add_decision_point("x", self.dp)
        self.answers = []

    def start(self):
        self.env.process(self._run())

    def _run(self):
        i = 0
        while True:
            a = yield from self.dp.ask(i)
            self.answers.append((self.env.now, a))
            i += 1
            yield self.env.timeout(1.0)

    def finalize(self, now_s):
        pass

    def results(self):
        return RunResult(summary={"n": len(self.answers)})


def test_inline_policy_answers_without_suspension():
    sim = Simulation(seed=0, horizon_s=3.5)
    comp = Asker(sim, Doubler())
    sim.add(comp)
    sim.run()
    assert comp.answers == [(0.0, 0), (1.0, 2), (2.0, 4), (3.0, 6)]
    assert sim.results().summary["n"] == 4


def test_external_mode_hands_control_back_and_resumes():
    sim = Simulation(seed=0, horizon_s=2.5)
    comp = Asker(sim, None)
    sim.add(comp)
    seen = []
    req = sim.run_until_decision("x")
    while req is not None:
        assert isinstance(req, DecisionRequest)
        assert req.family == "x"
        seen.append((sim.env.now, req.obs))
        req.reply.succeed(10 + req.obs)
        req = sim.run_until_decision("x")
    assert seen == [(0.0, 0), (1.0, 1), (2.0, 2)]
    assert comp.answers == [(0.0, 10), (1.0, 11), (2.0, 12)]
    assert sim.finished


def test_decision_point_counts_and_attach():
    env = simpy.Environment()
    dp = DecisionPoint(env, "x")
    assert not dp.is_inline
    dp.attach(Doubler())
    assert dp.is_inline
    assert dp.decide(3) == 6
    assert dp.n_decisions == 1
