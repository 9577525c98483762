"""Bad-input corpus of the Python API: envs, ``make_marl``, rewards (issue 12, "Reliability").

Every case is a call that must fail with the documented exception and a one-line message naming
the argument and its allowed values; a few cases are documented behaviours that must warn (never
stay silent). Constructors use a 20-slot scenario so that the table runs in seconds.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edgetwin.envs import make_marl
from edgetwin.envs.prb_power import PrbPowerEnv
from edgetwin.envs.prb_power_marl import raw_env
from edgetwin.envs.rewards import _PARAM_RANGES, REWARDS, make_reward

SHORT = {"duration_s": 0.01}  # 20 slots of 0.5 ms
MARL = "edgetwin/PrbPowerMARL-v0"


def _gym(**kw: Any) -> PrbPowerEnv:
    return PrbPowerEnv(**{"overrides": SHORT, **kw})


def _marl(**kw: Any) -> Any:
    return make_marl(MARL, **{"overrides": SHORT, **kw})


def _gym_step(action: Any, control: str = "joint") -> Any:
    env = _gym(control=control)
    env.reset(seed=0)
    return env.step(action)


def _gym_reset(options: Any) -> Any:
    return _gym().reset(seed=0, options=options)


def _marl_step(action: Any) -> Any:
    env = raw_env(overrides=SHORT)
    env.reset(seed=0)
    return env.step(action)


NAN40 = np.full(40, np.nan, np.float32)
INF20 = np.r_[np.zeros(19), np.inf].astype(np.float32)

#: (id, call, exception, words the message must contain).
CASES: list[tuple[str, Callable[[], Any], type[Exception], tuple[str, ...]]] = [
    ("max_ue-str", lambda: _gym(max_ue="32"), ValueError, ("max_ue", "integer", "1024")),
    ("max_ue-float", lambda: _gym(max_ue=32.0), ValueError, ("max_ue", "integer", "[20, 1024]")),
    ("max_ue-bool", lambda: _gym(max_ue=True), ValueError, ("max_ue", "integer", "bool")),
    ("max_ue-huge", lambda: _gym(max_ue=10**7), ValueError, ("max_ue", "[20, 1024]")),
    ("max_ue-small", lambda: _gym(max_ue=5), ValueError, ("max_ue=5", "[20, 1024]")),
    ("control", lambda: _gym(control="both"), ValueError, ("control", "prb, power, joint")),
    ("control-none", lambda: _gym(control=None), ValueError, ("control", "allowed")),
    ("reward", lambda: _gym(reward="nope"), ValueError, ("reward", "throughput_fairness")),
    ("reward-int", lambda: _gym(reward=3), ValueError, ("reward", "sum_log_rate")),
    (
        "reward_kwargs-str",
        lambda: _gym(reward_kwargs="lam"),
        ValueError,
        ("reward_kwargs", "dict"),
    ),
    (
        "reward_kwargs-unknown",
        lambda: _gym(reward_kwargs={"gamma": 1.0}),
        ValueError,
        ("gamma", "allowed: lam"),
    ),
    ("lam-str", lambda: _gym(reward_kwargs={"lam": "x"}), ValueError, ("lam", "[0, 1]")),
    ("lam-nan", lambda: _gym(reward_kwargs={"lam": float("nan")}), ValueError, ("lam", "[0, 1]")),
    ("lam-range", lambda: _gym(reward_kwargs={"lam": 2.0}), ValueError, ("lam", "[0, 1]")),
    (
        "floor-negative",
        lambda: _gym(reward="sum_log_rate", reward_kwargs={"floor": -1.0}),
        ValueError,
        ("floor", "> 0"),
    ),
    ("scenario-int", lambda: _gym(scenario=3), ValueError, ("scenario", "yaml path")),
    ("scenario-missing", lambda: _gym(scenario="nope"), ValueError, ("nope", "nr_cell")),
    ("scenario-multicell", lambda: _gym(scenario="multi_cell_57"), ValueError, ("'single'",)),
    ("overrides-key", lambda: PrbPowerEnv(overrides={"nope": 1}), ValueError, ("nope", "allowed")),
    ("render_mode", lambda: _gym(render_mode="human"), ValueError, ("render_mode", "none")),
    ("t_ref-str", lambda: _gym(t_ref_bps="x"), ValueError, ("t_ref_bps", "finite number > 0")),
    ("t_ref-inf", lambda: _gym(t_ref_bps=float("inf")), ValueError, ("t_ref_bps", "finite")),
    ("t_ref-zero", lambda: _gym(t_ref_bps=0.0), ValueError, ("t_ref_bps", "> 0")),
    ("step-nan", lambda: _gym_step(NAN40), ValueError, ("action", "nan", "[-1, 1]")),
    (
        "step-inf",
        lambda: _gym_step(INF20, control="prb"),
        ValueError,
        ("action", "inf", "index 19", "[-1, 1]"),
    ),
    ("step-shape", lambda: _gym_step(np.zeros(3)), ValueError, ("action", "shape (40,)")),
    ("step-str", lambda: _gym_step("a"), ValueError, ("action", "[-1, 1]", "str")),
    ("step-none", lambda: _gym_step(None), ValueError, ("action", "[-1, 1]", "none")),
    (
        "reset-unknown-key",
        lambda: _gym_reset({"episode_sed": 1}),
        ValueError,
        ("episode_sed", "allowed: episode_seed"),
    ),
    ("reset-not-dict", lambda: _gym_reset([1]), ValueError, ("options", "episode_seed")),
    (
        "episode_seed-str",
        lambda: _gym_reset({"episode_seed": "1"}),
        ValueError,
        ("episode_seed", "0..4294967295"),
    ),
    (
        "episode_seed-huge",
        lambda: _gym_reset({"episode_seed": 2**70}),
        ValueError,
        ("episode_seed", "0..4294967295"),
    ),
    (
        "episode_seed-negative",
        lambda: _gym_reset({"episode_seed": -1}),
        ValueError,
        ("episode_seed", "non-negative"),
    ),
    ("marl-id", lambda: make_marl("edgetwin/PrbPowerMARL"), ValueError, ("marl", "allowed")),
    ("marl-kwarg", lambda: _marl(control="prb"), TypeError, ("control", "allowed: scenario")),
    ("marl-max_ue", lambda: _marl(max_ue="32"), ValueError, ("max_ue", "[20, 1024]")),
    ("marl-step-nan", lambda: _marl_step(NAN40[:20]), ValueError, ("agent 'prb'", "[-1, 1]")),
    ("marl-step-none", lambda: _marl_step(None), ValueError, ("'prb'", "none")),
]


@pytest.mark.parametrize(
    ("call", "exc", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_call_raises_one_clear_line(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    assert len(message) <= 400, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)


def test_out_of_range_actions_are_clipped_with_one_warning_per_env():
    env = _gym(control="prb")
    env.reset(seed=0)
    with pytest.warns(UserWarning, match=r"outside the action space \[-1, 1\].*clipped"):
        _, r_big, *_ = env.step(np.full(20, 7.0, np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second out-of-range action is not warned again
        env.step(np.full(20, 7.0, np.float32))
    ref = _gym(control="prb")
    ref.reset(seed=0)
    _, r_one, *_ = ref.step(np.full(20, 1.0, np.float32))
    assert r_big == r_one  # clipped to the bound, not wrapped or rescaled


def test_marl_env_warns_about_unknown_reset_options():
    env = raw_env(overrides=SHORT)
    with pytest.warns(UserWarning, match="unknown reset option.*x; allowed: episode_seed"):
        env.reset(seed=0, options={"x": 1})


def test_every_reward_parameter_has_a_checked_range():
    for name, fn in REWARDS.items():
        for param in list(inspect.signature(fn).parameters)[2:]:
            assert param in _PARAM_RANGES, (name, param)
            make_reward(name, **{param: fn.__defaults__[0]})  # the default is allowed
