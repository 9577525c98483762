"""Scenario schema and loading: built-ins validate; bad input names field, value and range."""

from __future__ import annotations

import pydantic
import pytest

from edgetwin.scenarios.errors import ScenarioError
from edgetwin.scenarios.load import (
    SCENARIO_DIR,
    apply_overrides,
    builtin_scenarios,
    dump_yaml,
    load_scenario,
    parse_overrides,
    parse_yaml,
    scenario_descriptions,
    validate_scenario,
    with_overrides,
)
from edgetwin.scenarios.schema import PolicyRef, ScenarioConfig
from edgetwin.sim.radio.traffic import PoissonTraffic

BUILTINS = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def test_the_expected_builtins_exist():
    assert {"nr_cell", "small_cell", "bursty_cell", "multi_cell_57"} <= set(BUILTINS)
    assert set(builtin_scenarios()) == set(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_scenario_validates(name):
    config = load_scenario(name)
    assert config.name == name
    assert config.description
    assert config.policies.prb.id.startswith("prb/")
    assert config.policies.power.id.startswith("power/")
    # The same file loads by path, and dumping + re-loading is lossless.
    assert load_scenario(SCENARIO_DIR / f"{name}.yaml") == config
    again = validate_scenario(parse_yaml(dump_yaml(config.model_dump(mode="json"))))
    assert again == config
    assert scenario_descriptions()[name] == config.description


def test_builtin_contents():
    nr = load_scenario("nr_cell")
    assert (nr.cell.numerology, nr.cell.bandwidth_hz, nr.cell.carrier_hz) == (1, 20e6, 3.5e9)
    assert nr.channel.scenario == "uma"
    assert nr.topology.ues_per_cell == 20
    assert nr.topology.min_distance_m == 35.0
    assert nr.traffic.kind == "full_buffer"
    assert (nr.policies.prb.id, nr.policies.power.id) == ("prb/pf", "power/equal")
    small = load_scenario("small_cell")
    assert (small.cell.numerology, small.cell.bandwidth_hz) == (0, 5e6)
    assert small.topology.ues_per_cell == 4
    assert small.duration_s == pytest.approx(0.2)
    assert isinstance(load_scenario("bursty_cell").traffic, PoissonTraffic)
    multi = load_scenario("multi_cell_57").topology
    assert (multi.kind, multi.n_sites, multi.sectors_per_site, multi.isd_m) == ("hex", 19, 3, 500)
    assert 10 <= multi.ues_per_cell <= 20


def test_yaml_reads_exponent_numbers_as_floats():
    data = parse_yaml("a: 40e6\nb: 1e-3\nc: 3\nd: '40e6'\ne: -2.5E+3\nf: 1.5\ng: .inf\n")
    assert data == {
        "a": 40e6,
        "b": 1e-3,
        "c": 3,
        "d": "40e6",
        "e": -2500.0,
        "f": 1.5,
        "g": float("inf"),
    }
    assert isinstance(data["a"], float)
    assert isinstance(data["c"], int)


def test_overrides_are_applied_before_validation():
    config = load_scenario("nr_cell", ["cell.bandwidth_hz=40e6", "duration_s=0.5", "seed=4"])
    assert config.cell.bandwidth_hz == 40e6
    assert config.duration_s == 0.5
    assert config.seed == 4
    assert load_scenario("nr_cell", {"cell.bandwidth_hz": 40e6, "duration_s": 0.5, "seed": 4}) == (
        config
    )
    # Nested mappings are created, a string policy becomes {id: ...} when kwargs are set.
    config = load_scenario(
        "nr_cell",
        ["cell.harq.max_transmissions=2", "policies.prb=rr", "policies.power.kwargs.x=1"],
    )
    assert config.cell.harq.max_transmissions == 2
    assert config.policies.prb == PolicyRef(id="prb/rr")
    assert config.policies.power == PolicyRef(id="power/equal", kwargs={"x": 1})
    # Switching a discriminated union's variant by override.
    config = load_scenario("nr_cell", ["traffic.kind=poisson", "traffic.packet_rate_hz=50"])
    assert isinstance(config.traffic, PoissonTraffic)
    assert config.traffic.packet_rate_hz == 50
    assert with_overrides(config, ["seed=9"]).seed == 9


def test_apply_overrides_does_not_mutate_input():
    raw = {"cell": {"numerology": 1}}
    out = apply_overrides(raw, ["cell.numerology=0"])
    assert raw == {"cell": {"numerology": 1}}
    assert out == {"cell": {"numerology": 0}}


def test_parse_overrides_values():
    assert parse_overrides(["a.b=1", "c=x", "d=true", "e=[1, 2]", "f=", "g=1e-3"]) == {
        "a.b": 1,
        "c": "x",
        "d": True,
        "e": [1, 2],
        "f": None,
        "g": 1e-3,
    }


@pytest.mark.parametrize(
    ("overrides", "path", "snippets"),
    [
        (["duration_s=-1"], "duration_s", ["> 0", "<= 3600", "-1"]),
        (["duration_s=7200"], "duration_s", ["3600", "7200"]),
        (["seed=-3"], "seed", [">= 0", "-3"]),
        (["cell.numerology=7"], "cell.numerology", ["0, 1, 2 or 3", "7"]),
        (["cell.bandwith_hz=40e6"], "cell.bandwith_hz", ["unknown", "'bandwidth_hz'"]),
        (["bogus=1"], "bogus", ["unknown top-level key", "duration_s"]),
        (["channel.scenario=city"], "channel.scenario", ["'uma'", "'umi'", "'city'"]),
        (["topology.ues_per_cell=abc"], "topology.ues_per_cell", ["integer", "'abc'", ">= 1"]),
        (["traffic.kind=bursty"], "traffic", ["full_buffer", "poisson", "bursty"]),
        (
            ["traffic.kind=poisson", "traffic.packet_rate_hz=-5"],
            "traffic.packet_rate_hz",
            ["> 0", "-5"],
        ),
        (["policies.prb=pff"], "policies.prb", ["'prb/pf'", "allowed", "prb/rr", "pff"]),
        (["policies.power=prb/pf"], "policies.power", ["not a 'power' policy", "power/equal"]),
        (["policies.cache=lru"], "policies.cache", ["unknown", "prb", "power"]),
        (["output.progress=maybe"], "output.progress", ["bool", "maybe"]),
        (["cell.foo.bar=1"], "cell.foo", ["unknown field"]),
    ],
)
def test_bad_fields_are_named_with_allowed_values(overrides, path, snippets):
    with pytest.raises(ScenarioError) as info:
        load_scenario("small_cell", overrides)
    msg = str(info.value)
    assert "\n" not in msg
    assert path in [e.path for e in info.value.errors], msg
    for s in snippets:
        assert s in msg, f"{s!r} not in {msg!r}"


def test_all_errors_are_reported_at_once():
    with pytest.raises(ScenarioError) as info:
        load_scenario("small_cell", ["duration_s=0", "cell.numerology=9", "nope=1"])
    assert {e.path for e in info.value.errors} == {"duration_s", "cell.numerology", "nope"}
    assert "3 errors" in str(info.value)


def test_missing_required_field_and_bad_yaml(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("description: no name\n")
    with pytest.raises(ScenarioError, match=r"name: required") as info:
        load_scenario(p)
    assert {e.path for e in info.value.errors} == {"name", "duration_s"}
    p.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="invalid YAML"):
        load_scenario(p)
    p.write_text("- a\n- b\n")
    with pytest.raises(ScenarioError, match="expected a mapping"):
        load_scenario(p)


def test_missing_file_lists_builtins(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "nope.yaml")
    msg = str(info.value)
    assert "nope.yaml" in msg
    assert "not found" in msg
    for name in BUILTINS:
        assert name in msg
    with pytest.raises(ScenarioError, match="did you mean 'nr_cell'"):
        load_scenario("nr_cel")


def test_malformed_overrides():
    with pytest.raises(ScenarioError, match="key=value"):
        load_scenario("small_cell", ["duration_s"])
    with pytest.raises(ScenarioError, match="not a mapping"):
        load_scenario("small_cell", ["duration_s.x=1"])
    with pytest.raises(ScenarioError, match="dotted field path"):
        load_scenario("small_cell", ["cell..x=1"])


def test_config_is_frozen_and_policy_forms():
    config = load_scenario("small_cell")
    with pytest.raises(pydantic.ValidationError):
        config.seed = 3  # type: ignore[misc]
    raw = {
        "name": "x",
        "duration_s": 1.0,
        "policies": {"prb": {"id": "maxrate"}, "power": "power/waterfilling"},
    }
    c = validate_scenario(raw)
    assert c.policies.prb.id == "prb/maxrate"
    assert c.policies.power.id == "power/waterfilling"
    assert ScenarioConfig(name="y", duration_s=1.0).policies.prb.id == "prb/pf"
    assert PolicyRef(id="prb/pf", kwargs={"beta": 0.9}).label == "prb/pf(beta=0.9)"
    with pytest.raises(ScenarioError, match="name"):
        validate_scenario({"name": "a/b", "duration_s": 1.0})
