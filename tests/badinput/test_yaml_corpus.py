"""Bad scenario YAML files: each is one ``edgetwin: error:`` line, exit 2, nothing touched."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from corpus_harness import expect_one_line_error

BASE = "name: bad\nduration_s: 0.01\n"
RUN = ["run", "bad.yaml", "--no-plots", "--out", "res"]

# (id, YAML text, words the one line must mention)
CASES: list[tuple[str, str, list[str]]] = [
    ("duplicate_key", BASE + "seed: 1\nseed: 2\n", ["bad.yaml", "duplicate key", "seed", "line 4"]),
    (
        "duplicate_nested_key",
        BASE + "cell:\n  numerology: 0\n  numerology: 1\n",
        ["duplicate", "numerology"],
    ),
    (
        "deep_list",
        BASE + "x: " + "[" * 5000 + "]" * 5000 + "\n",
        ["bad.yaml", "nested deeper than 64"],
    ),
    ("deep_mapping", BASE + "x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", ["nested deeper"]),
    (
        "alias_bomb",
        "a: &a [1,1,1,1,1,1,1,1,1,1]\n"
        + "".join(
            f"{c}: &{c} [" + ",".join([f"*{p}"] * 10) + "]\n"
            for p, c in zip("abcdef", "bcdefg", strict=True)
        ),
        ["bad.yaml", "expands to more than"],
    ),
    ("recursive_alias", "a: &a [*a]\n", ["recursive alias"]),
    ("top_level_list", "- 1\n- 2\n", ["bad.yaml", "mapping", "list"]),
    ("top_level_scalar", "42\n", ["mapping", "int"]),
    ("top_level_string", "just text\n", ["mapping", "str"]),
    ("empty_file", "", ["bad.yaml", "empty", "duration_s"]),
    ("comment_only", "# nothing\n", ["empty"]),
    ("syntax_error", BASE + "cell: [1, 2\n", ["bad.yaml", "line"]),
    ("tab_indent", BASE + "cell:\n\tnumerology: 0\n", ["bad.yaml", "line"]),
    (
        "bool_for_int",
        BASE + "topology: {ues_per_cell: true}\n",
        ["topology.ues_per_cell", "boolean", "1024"],
    ),
    ("bool_for_float", BASE + "cell: {bandwidth_hz: false}\n", ["cell.bandwidth_hz", "boolean"]),
    ("bool_for_duration", "name: bad\nduration_s: true\n", ["duration_s", "boolean"]),
    ("bool_for_literal_int", BASE + "cell: {numerology: true}\n", ["cell.numerology", "0, 1, 2"]),
    ("bool_for_seed", BASE + "seed: false\n", ["seed", "boolean"]),
    ("nan_duration", "name: bad\nduration_s: .nan\n", ["duration_s", "finite"]),
    ("inf_duration", "name: bad\nduration_s: .inf\n", ["duration_s", "finite"]),
    ("neg_inf_power", BASE + "cell: {max_power_dbm: -.inf}\n", ["cell.max_power_dbm", "finite"]),
    ("nan_isd", BASE + "topology: {isd_m: .nan}\n", ["topology.isd_m", "finite"]),
    (
        "nan_traffic_rate",
        BASE + "traffic: {kind: poisson, packet_rate_hz: .nan}\n",
        ["traffic", "packet_rate_hz", "finite"],
    ),
    ("duration_below_slot", "name: bad\nduration_s: 0.0001\n", ["duration_s", "slot", "0.0005"]),
    (
        "duration_below_slot_mu0",
        "name: bad\nduration_s: 0.0009\ncell: {numerology: 0}\n",
        ["duration_s", "0.001"],
    ),
    ("negative_duration", "name: bad\nduration_s: -1\n", ["duration_s", "> 0"]),
    ("huge_duration", "name: bad\nduration_s: 1e9\n", ["duration_s", "3600"]),
    (
        "string_for_int",
        BASE + "topology: {ues_per_cell: many}\n",
        ["topology.ues_per_cell", "integer"],
    ),
    ("fraction_for_int", BASE + "topology: {ues_per_cell: 2.5}\n", ["topology.ues_per_cell"]),
    ("unknown_top_key", BASE + "durations: 3\n", ["durations", "allowed"]),
    ("unknown_nested_key", BASE + "cell: {bandwith_hz: 1}\n", ["cell.bandwith_hz", "bandwidth_hz"]),
    ("list_for_mapping", BASE + "cell: [1, 2]\n", ["cell"]),
    ("missing_name", "duration_s: 0.1\n", ["name", "missing"]),
    ("bad_literal", BASE + "channel: {scenario: moon}\n", ["channel.scenario", "uma"]),
    ("bad_bandwidth", BASE + "cell: {bandwidth_hz: 7e6}\n", ["bandwidth"]),
    ("null_for_float", BASE + "cell: {bandwidth_hz: null}\n", ["cell.bandwidth_hz"]),
]


@pytest.mark.parametrize(("text", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_yaml_is_one_line(workdir: Path, text: str, words: list[str]) -> None:
    (workdir / "bad.yaml").write_text(text, encoding="utf-8")
    expect_one_line_error(workdir, RUN, words)


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe\x00\x01name: x\n", b"name: \x80\x81\n", b"\x89PNG\r\n\x1a\n\x00\x00"],
    ids=["utf16_bom", "latin1_bytes", "png"],
)
def test_binary_yaml_names_the_file(workdir: Path, data: bytes) -> None:
    (workdir / "bad.yaml").write_bytes(data)
    expect_one_line_error(workdir, RUN, ["bad.yaml"])


def test_bad_override_value(workdir: Path) -> None:
    argv = ["run", "my.yaml", "--set", "duration_s=true", "--no-plots", "--out", "res"]
    (workdir / "my.yaml").write_text(BASE, encoding="utf-8")
    expect_one_line_error(workdir, argv, ["duration_s", "boolean"])


def test_without_writable_home_numba_still_compiles(tmp_path: Path) -> None:
    """No cache locator (read-only package, no HOME): njit_cached falls back, no traceback.

    As root a read-only folder is still writable, so the test removes numba's in-tree and
    user-wide locators instead, which is exactly the state ``no locator available`` comes from.
    """
    code = textwrap.dedent(
        """
        from numba.core import caching
        caching.CacheImpl._locator_classes = [caching.UserProvidedCacheLocator]
        import numba
        try:
            numba.njit(cache=True)(lambda x: x)
        except RuntimeError as exc:
            assert "no locator available" in str(exc)
        else:
            raise AssertionError("the locator failure was not reproduced")
        import kern

        print(kern.twice(21))
        """
    )
    (tmp_path / "kern.py").write_text(
        "from edgetwin.sim.jit import njit_cached\n\n\n"
        "@njit_cached()\ndef twice(x):\n    return 2 * x\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(HOME="/nonexistent", TMPDIR=str(tmp_path), PYTHONPATH=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "42"
    assert any(tmp_path.glob("edgetwin-numba-cache-*/**/*.nbi")), "the fallback cached nothing"
