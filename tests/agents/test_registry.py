"""The strict policy registry: ids, duplicates, suggestions, families, lazy entry points."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgetwin.agents import (
    Policy,
    PolicyRegistryError,
    make_policy,
    policy_ids,
    policy_spec,
    pprint_policies,
    register_policy,
    resolve_policy_id,
    unregister_policy,
)

BASELINES = [
    "power/alpha_fair",
    "power/equal",
    "power/waterfilling",
    "prb/maxrate",
    "prb/pf",
    "prb/rr",
]


@pytest.fixture
def temp_id():
    pid = "testfamily/dummy"
    yield pid
    unregister_policy(pid)


def test_baselines_registered_with_descriptions():
    assert set(BASELINES) <= set(policy_ids())
    for pid in BASELINES:
        assert policy_spec(pid).description
        assert isinstance(make_policy(pid), Policy)
    assert policy_spec("prb/pf").kwargs == {"beta": 0.98}
    assert policy_spec("power/alpha_fair").kwargs["fairness"] == 1


def test_policy_ids_by_family():
    prb = policy_ids(family="prb")
    assert {"prb/maxrate", "prb/pf", "prb/rr"} <= set(prb)
    assert all(p.startswith("prb/") for p in prb)
    assert prb == sorted(prb)
    power = policy_ids(family="power")
    assert {"power/alpha_fair", "power/equal", "power/waterfilling"} <= set(power)
    assert all(p.startswith("power/") for p in power)
    assert policy_ids(family="nonexistent") == []


def test_duplicate_registration_raises(temp_id):
    register_policy(temp_id, "edgetwin.agents.baselines.prb:MaxRate")
    with pytest.raises(PolicyRegistryError, match="already registered"):
        register_policy(temp_id, "edgetwin.agents.baselines.prb:RoundRobin")
    with pytest.raises(PolicyRegistryError, match="already registered"):
        register_policy("prb/pf", "edgetwin.agents.baselines.prb:ProportionalFair")


def test_unknown_id_suggests_close_match():
    with pytest.raises(PolicyRegistryError, match="Did you mean 'prb/pf'"):
        make_policy("prb/pff")
    with pytest.raises(PolicyRegistryError, match="power/waterfilling"):
        policy_spec("power/water_filling")


@pytest.mark.parametrize("bad", ["pf", "prb/", "/pf", "prb/pf/x", ""])
def test_malformed_id_raises(bad):
    with pytest.raises(PolicyRegistryError, match="malformed"):
        register_policy(bad, "edgetwin.agents.baselines.prb:MaxRate")


def test_kwargs_override_defaults_and_bad_kwargs_raise():
    assert make_policy("prb/pf", beta=0.5).beta == 0.5
    assert make_policy("prb/pf").beta == 0.98
    with pytest.raises(PolicyRegistryError, match=r"takes no keyword 'gamma'.*beta"):
        make_policy("prb/pf", gamma=3)
    with pytest.raises(PolicyRegistryError, match=r"^prb/pf\.beta: must be in \(0, 1\), got 2$"):
        make_policy("prb/pf", beta=2)


def test_missing_requirement_raises(temp_id):
    register_policy(temp_id, "edgetwin.agents.baselines.prb:MaxRate", requires=("no_such_mod_xyz",))
    with pytest.raises(PolicyRegistryError, match="no_such_mod_xyz"):
        make_policy(temp_id)


def test_resolve_short_names_and_pprint():
    assert resolve_policy_id("pf", "prb") == "prb/pf"
    assert resolve_policy_id("power/equal", "prb") == "power/equal"
    table = pprint_policies(family="prb")
    assert "prb/pf" in table
    assert "beta=0.98" in table
    assert "power/" not in table


def test_listing_imports_no_policy_module():
    code = (
        "import sys, edgetwin.agents as a; a.policy_ids(); a.pprint_policies(); "
        "print('edgetwin.agents.baselines' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
