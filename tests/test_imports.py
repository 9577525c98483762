import subprocess
import sys


def _loaded_after(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_sim_imports_no_torch_gymnasium_matplotlib():
    mods = _loaded_after(
        "import edgetwin.sim, edgetwin.sim.radio.cell, edgetwin.sim.radio.channel, "
        "edgetwin.sim.radio.link, edgetwin.sim.radio.bler"
    )
    for heavy in ("torch", "gymnasium", "matplotlib", "sionna", "tensorflow"):
        assert heavy not in mods, f"{heavy} was imported by edgetwin.sim"


def test_agents_and_scenario_schema_are_light():
    mods = _loaded_after("import edgetwin.agents, edgetwin.scenarios.schema")
    for heavy in ("torch", "gymnasium", "matplotlib", "sionna"):
        assert heavy not in mods, f"{heavy} was imported by edgetwin.agents / scenarios.schema"
