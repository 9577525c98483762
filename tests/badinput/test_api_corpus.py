"""Bad-input corpus of the Python API: envs, ``make_marl``, rewards, the policy registry (issue 12).

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

from edgetwin.agents.registry import (
    PolicyRegistryError,
    check_policy_kwargs,
    make_policy,
    policy_ids,
    policy_spec,
    register_policy,
    resolve_policy_id,
    unregister_policy,
)
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


TEMP_ID = "corpus/temp"


def _make_registered(entry_point: str) -> Any:
    """Register ``entry_point`` as :data:`TEMP_ID` (a well-formed registration) and build it."""
    register_policy(TEMP_ID, entry_point)
    try:
        return make_policy(TEMP_ID)
    finally:
        unregister_policy(TEMP_ID)


PRE = PolicyRegistryError

#: The policy registry: ids, keywords, registrations (same columns as :data:`CASES`).
REGISTRY_CASES: list[tuple[str, Callable[[], Any], type[Exception], tuple[str, ...]]] = [
    ("id-int", lambda: make_policy(3), PRE, ("policy id", "'family/name'", "int 3", "prb/pf")),
    # every id would not fit one line: the families, and where their ids are listed
    ("id-none", lambda: make_policy(None), PRE, ("NoneType None", "policy_ids(", "ul_prb")),
    ("id-list", lambda: make_policy(["prb/pf"]), PRE, ("list ['prb/pf']", "string")),
    ("id-empty", lambda: make_policy(""), PRE, ("''", "malformed", "'family/name'", "prb/pf")),
    ("id-no-name", lambda: make_policy("prb/"), PRE, ("'prb/'", "malformed", "did you mean")),
    ("id-no-family", lambda: make_policy("/pf"), PRE, ("'/pf'", "did you mean 'prb/pf'")),
    ("id-short", lambda: make_policy("pf"), PRE, ("'pf'", "did you mean 'prb/pf'")),
    ("id-unknown", lambda: make_policy("prb/pff"), PRE, ("unknown policy id", "'prb/pf'")),
    (
        "kw-str",
        lambda: make_policy("prb/pf", beta="x"),
        PRE,
        ("prb/pf.beta", "finite number", "str 'x'", "in (0, 1)"),
    ),
    ("kw-nan", lambda: make_policy("prb/pf", beta=float("nan")), PRE, ("prb/pf.beta", "nan")),
    ("kw-bool", lambda: make_policy("prb/pf", beta=True), PRE, ("prb/pf.beta", "bool True")),
    ("kw-range", lambda: make_policy("prb/pf", beta=2), PRE, ("prb/pf.beta:", "(0, 1)", "2")),
    (
        "kw-range-rate",
        lambda: make_policy("prb/pf", initial_rate_bps=0.0),
        PRE,
        ("prb/pf.initial_rate_bps", "> 0"),
    ),
    (
        "kw-none",
        lambda: make_policy("power/alpha_fair", guaranteed_power_ratio=None),
        PRE,
        ("power/alpha_fair.guaranteed_power_ratio", "NoneType", "[0, 1]"),
    ),
    (
        "kw-unknown",
        lambda: make_policy("prb/pf", nonsense=1),
        PRE,
        ("'nonsense'", "allowed keywords: beta, initial_rate_bps"),
    ),
    ("kw-none-taken", lambda: make_policy("prb/rr", beta=1), PRE, ("'beta'", "none")),
    (
        "kw-scenario-path",
        lambda: check_policy_kwargs("prb/pf", {"beta": "x"}, "policies.prb"),
        PRE,
        ("policies.prb.beta", "finite number", "(0, 1)"),
    ),
    ("register-int", lambda: register_policy(3, "m:X"), PRE, ("policy id", "int 3")),
    ("register-deep", lambda: register_policy("a/b/c", "m:X"), PRE, ("'a/b/c'", "malformed")),
    (
        "register-entry-int",
        lambda: register_policy(TEMP_ID, 5),
        PRE,
        ("entry_point", "'package.module:attr'", "got 5"),
    ),
    (
        "register-entry-no-attr",
        lambda: register_policy(TEMP_ID, "mymodule"),
        PRE,
        ("entry_point", "'mymodule'"),
    ),
    (
        "register-kwargs",
        lambda: register_policy(TEMP_ID, "m:X", kwargs=[("beta", 1)]),
        PRE,
        ("kwargs", "dict"),
    ),
    (
        "register-requires-str",
        lambda: register_policy(TEMP_ID, "m:X", requires="torch"),
        PRE,
        ("requires", "('torch',)", "got 'torch'"),
    ),
    (
        "register-description",
        lambda: register_policy(TEMP_ID, "m:X", description=3),
        PRE,
        ("description", "string"),
    ),
    (
        "register-twice",
        lambda: register_policy("prb/pf", "m:X"),
        PRE,
        ("'prb/pf'", "already registered"),
    ),
    (
        "entry-no-module",
        lambda: _make_registered("no_such_module_zz:X"),
        PRE,
        ("corpus/temp", "cannot load entry point", "no_such_module_zz"),
    ),
    (
        "entry-no-attr",
        lambda: _make_registered("json:nope"),
        PRE,
        ("cannot load entry point 'json:nope'", "nope"),
    ),
    (
        "entry-not-callable",
        lambda: _make_registered("math:pi"),
        PRE,
        ("'math:pi'", "float", "not a class or factory"),
    ),
    (
        "entry-not-policy",
        lambda: _make_registered("builtins:dict"),
        PRE,
        ("built a dict", "not a policy", "reset", "act"),
    ),
    ("family-int", lambda: policy_ids(3), PRE, ("family", "string", "got 3", "prb")),
    ("spec-int", lambda: policy_spec(7), PRE, ("policy id", "int 7")),
    ("resolve-none", lambda: resolve_policy_id(None, "prb"), PRE, ("policy id", "NoneType")),
]


def _raises_one_clear_line(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    assert len(message) <= 400, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)


@pytest.mark.parametrize(
    ("call", "exc", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_call_raises_one_clear_line(call, exc, words):
    _raises_one_clear_line(call, exc, words)


@pytest.mark.parametrize(
    ("call", "exc", "words"), [c[1:] for c in REGISTRY_CASES], ids=[c[0] for c in REGISTRY_CASES]
)
def test_bad_registry_call_raises_one_clear_line(call, exc, words):
    _raises_one_clear_line(call, exc, words)
    assert TEMP_ID not in policy_ids()  # a refused registration leaves nothing behind


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
