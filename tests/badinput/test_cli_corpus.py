"""Bad command lines: each is answered in one line (exit 2), with no traceback and no file made.

The table holds hand-written cases with the words the line must name (the flag or field and the
allowed values or syntax); a hypothesis test adds random command lines that must fail fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus_harness import expect_one_line_error, run_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SMALL = ["small_cell", "--set", "duration_s=0.02", "--no-plots"]

CORPUS: list[tuple[list[str], list[str]]] = [
    # argparse usage errors, one line each
    ([], ["required", "COMMAND"]),
    (["frobnicate"], ["invalid choice", "run", "compare", "kernels"]),
    (["run"], ["required", "scenario"]),
    (["run", "nr_cell", "--bogus"], ["unrecognized", "--bogus"]),
    (["compare", "nr_cell"], ["required", "--policies"]),
    (["list", "extra"], ["unrecognized", "extra"]),
    (["run", "nr_cell", "--seed", "-1"], ["--seed", "0..4294967295"]),
    (["run", "nr_cell", "--seed", "4294967296"], ["--seed", "0..4294967295"]),
    (["run", "nr_cell", "--seed", "abc"], ["--seed", "integer"]),
    (["run", "nr_cell", "--duration", "nan"], ["--duration", "finite number > 0"]),
    (["run", "nr_cell", "--duration", "inf"], ["--duration", "finite number > 0"]),
    (["run", "nr_cell", "--duration", "-1"], ["--duration", "finite number > 0"]),
    (["run", "nr_cell", "--duration", "0"], ["--duration", "finite number > 0"]),
    (["run", "nr_cell", "--duration", ""], ["--duration", "finite number > 0"]),
    (["run", "nr_cell", "--policy"], ["--policy", "expected one argument"]),
    (["compare", "nr_cell", "--policies", "prb=pf", "--seeds", "100000000"], ["--seeds", "10000"]),
    (["compare", "nr_cell", "--policies", "prb=pf", "--seeds", "0"], ["--seeds", "1..10000"]),
    (
        ["compare", "nr_cell", "--policies", "prb=pf", "--seed-list", "1,,2"],
        ["--seed-list", "empty"],
    ),
    (["compare", "nr_cell", "--policies", "prb=pf", "--seed-list", ","], ["--seed-list", "0,1,2"]),
    (
        ["compare", "nr_cell", "--policies", "prb=pf", "--seed-list", "1,-2"],
        ["--seed-list", "0..4294967295"],
    ),
    (
        ["compare", "nr_cell", "--policies", "prb=pf", "--seed-list", ",".join(["1"] * 10_001)],
        ["--seed-list", "at most 10000"],
    ),
    (
        ["compare", "nr_cell", "--policies", "prb=pf", "--seeds", "2", "--seed-list", "1"],
        ["not allowed"],
    ),
    (
        ["compare", "nr_cell", "--policies", "prb=pf", "--workers", "0"],
        ["--workers", "integer in 1.."],
    ),
    (
        ["compare", "nr_cell", "--policies", "prb=pf", "--workers", "100000"],
        ["--workers", "integer in 1.."],
    ),
    # policies given on the command line
    (
        ["run", "nr_cell", "--policy", "prb=pf", "--policy", "prb=rr"],
        ["prb", "twice", "'pf'", "'rr'"],
    ),
    (["run", "nr_cell", "--policy", "pf"], ["--policy", "FAMILY=ID"]),
    (["run", "nr_cell", "--policy", "prb="], ["--policy", "FAMILY=ID"]),
    (["run", "nr_cell", "--policy", "=pf"], ["--policy", "FAMILY=ID"]),
    (["run", "nr_cell", "--policy", "prb=nosuch"], ["nosuch", "prb/pf"]),
    (["run", "nr_cell", "--policy", "radio=pf"], ["radio", "prb", "power"]),
    (["run", *SMALL, "--policy", "prb=pf:beta=2"], ["policies.prb.beta", "(0, 1)", "2"]),
    (["run", *SMALL, "--policy", "prb=pf:beta=nan"], ["policies.prb.beta", "finite number"]),
    (["run", *SMALL, "--policy", "prb=pf:beta=abc"], ["policies.prb.beta", "finite number"]),
    (
        ["run", *SMALL, "--policy", "prb=pf:gamma=1"],
        ["policies.prb", "gamma", "beta", "initial_rate_bps"],
    ),
    (["run", *SMALL, "--policy", "prb=rr:x=1"], ["policies.prb", "'x'", "none"]),
    (["run", *SMALL, "--policy", "prb=pf:beta="], ["policies.prb", "key=value"]),
    (["run", *SMALL, "--policy", "prb=pf:beta=0.9:beta=0.8"], ["beta", "twice"]),
    (["run", *SMALL, "--policy", "prb=pf:beta=0.9:junk"], ["junk", "key=value"]),
    (["run", *SMALL, "--policy", "prb=pf:"], ["ID:ARG", "key=value"]),
    (["run", *SMALL, "--policy", "prb=pf:/tmp/m.pt"], ["policies.prb", "path", "beta"]),
    (
        ["run", *SMALL, "--policy", "power=alpha_fair:fairness=-1"],
        ["policies.power.fairness", ">= 0"],
    ),
    (
        ["run", *SMALL, "--policy", "power=alpha_fair:guaranteed_power_ratio=2"],
        ["policies.power.guaranteed_power_ratio", "[0, 1]"],
    ),
    (["run", *SMALL, "--policy", "prb=ppo:/no/such/model.pt"], ["/no/such/model.pt", "not found"]),
    (["run", *SMALL, "--policy", "prb=ppo:beta=1"], ["policies.prb", "beta", "path"]),
    (
        ["compare", "nr_cell", "--policies", "prb=pf,,prb=rr"],
        ["--policies", "empty", "prb=pf,prb=rr"],
    ),
    (["compare", "nr_cell", "--policies", ",prb=pf"], ["--policies", "empty"]),
    (["compare", "nr_cell", "--policies", "prb=pf,"], ["--policies", "empty"]),
    (["compare", "nr_cell", "--policies", "prb=pf+"], ["--policies", "'+'"]),
    (["compare", "nr_cell", "--policies", ""], ["--policies", "empty"]),
    (["compare", "nr_cell", "--policies", "prb=pf+prb=rr"], ["prb", "twice"]),
    # scenarios and overrides
    (["run", "mine"], ["directory", "small_cell"]),
    (["run", "nosuch_scenario"], ["nosuch_scenario", "small_cell"]),
    (["run", "nr_cell", "--set", "=3"], ["override", "dotted"]),
    (["run", "nr_cell", "--set", "a..b=1"], ["a..b", "dotted"]),
    (["run", "nr_cell", "--set", "noequals"], ["noequals", "key=value"]),
    # serve
    (["serve"], ["required", "--trace"]),
    (["serve", "--trace", "no_such.csv"], ["no_such.csv", "azure-conv"]),
    (["serve", "--trace", "trace.csv", "--model", "nosuch"], ["nosuch", "llama-3.1-8b"]),
    (["serve", "--trace", "trace.csv", "--hardware", "tpu"], ["tpu", "a100"]),
    (["serve", "--trace", "trace.csv", "--scheduler", "bogus"], ["bogus", "serve/fcfs"]),
    (["serve", "--trace", "trace.csv", "--router", "bogus"], ["--router", "round_robin"]),
    (["serve", "--trace", "trace.csv", "--replicas", "0"], ["--replicas", "positive integer"]),
    (
        ["serve", "--trace", "trace.csv", "--overhead-s", "nan"],
        ["--overhead-s", "finite number >= 0"],
    ),
    (["serve", "--trace", "trace.csv", "--seed", "-3"], ["--seed", "0..4294967295"]),
    # train and kernels
    (["train"], ["required", "TRAINER"]),
    (["train", "ppo", "--control", "bogus", "--out", "m.pt"], ["--control", "prb", "power"]),
    (["train", "ppo"], ["required", "--out"]),
    (["kernels"], ["required", "command"]),
    (["kernels", "bogus"], ["invalid choice", "profile", "fit"]),
    (
        ["kernels", "profile", "--out", "afile", "--model", "smollm-135m"],
        ["--out", "afile", "folder"],
    ),
    (
        ["kernels", "profile", "--out", "afile/sub", "--model", "smollm-135m"],
        ["--out", "afile", "folder"],
    ),
    (["kernels", "profile", "--out", "k", "--model", "nosuch"], ["nosuch", "smollm-135m"]),
    (
        ["kernels", "profile", "--out", "k", "--model", "smollm-135m", "--ops", "bogus"],
        ["bogus", "linear_qkv"],
    ),
    (
        ["kernels", "profile", "--out", "k", "--model", "smollm-135m", "--threads", "0"],
        ["--threads", "integer in 1.."],
    ),
    (["kernels", "fit", "afile"], ["afile", "not found"]),
]


@pytest.mark.parametrize(
    ("argv", "must_mention"), CORPUS, ids=[" ".join(a)[:60] for a, _ in CORPUS]
)
def test_bad_command_line_is_one_line(
    workdir: Path, argv: list[str], must_mention: list[str]
) -> None:
    expect_one_line_error(workdir, argv, must_mention)


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40


def test_help_lists_every_command(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(["--help"], workdir)
    assert outcome.status == 0
    for command in ("run", "compare", "serve", "train", "kernels", "list"):
        assert f"    {command} " in outcome.stdout, command


# ----------------------------------------------------------------------------------------
# Random command lines that must fail fast
# ----------------------------------------------------------------------------------------
_JUNK = st.sampled_from(
    [
        "",
        " ",
        "nan",
        "inf",
        "-inf",
        "-1",
        "0",
        "1e309",
        "9" * 40,
        "ünïcødé",
        "☃",
        "=",
        ",",
        ":",
        "prb=",
        "=pf",
        "--",
        "-x",
        "prb=pf:beta=",
        "a..b=1",
        "\x00",
    ]
)
_VALUES = st.one_of(_JUNK, st.text(max_size=8), st.integers(-(10**30), 10**30).map(str))
# Each command carries a flag whose value is drawn only from values it refuses, so no draw
# can start a simulation, a training or a profile.
_MUST_FAIL = {
    "run": (["run", "small_cell"], ["--duration", "--seed"]),
    "compare": (["compare", "small_cell", "--policies", "prb=pf"], ["--seeds", "--workers"]),
    "serve": (["serve", "--trace", "trace.csv"], ["--replicas", "--overhead-s", "--seed"]),
    "train": (["train", "ppo", "--out", "m.pt"], ["--control"]),
}
_BAD_FOR = st.sampled_from(["", "nan", "inf", "-1", "-0.5", "x", "1e309", "ünï", "9" * 40])
_EXTRA_FLAGS = st.sampled_from(
    ["--no-plots", "--set", "--policy", "--out", "--progress", "--bogus"]
)


@st.composite
def _failing_argv(draw: st.DrawFn) -> list[str]:
    head, bad_flags = _MUST_FAIL[draw(st.sampled_from(sorted(_MUST_FAIL)))]
    argv = list(head)
    for _ in range(draw(st.integers(0, 3))):
        flag = draw(_EXTRA_FLAGS)
        argv += [flag] if flag in ("--no-plots", "--progress", "--bogus") else [flag, draw(_VALUES)]
    argv += [draw(st.sampled_from(bad_flags)), draw(_BAD_FOR)]
    return argv


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(argv=_failing_argv())
def test_random_bad_command_lines_are_one_line(workdir: Path, argv: list[str]) -> None:
    if "\x00" in "".join(argv):
        argv = [a.replace("\x00", "") for a in argv]
    expect_one_line_error(workdir, argv)


# ----------------------------------------------------------------------------------------
# The keyword syntax works
# ----------------------------------------------------------------------------------------
def test_policy_keywords_run_and_are_recorded(tmp_path: Path) -> None:
    out = tmp_path / "res"
    outcome = run_main(["run", *SMALL, "--policy", "prb=pf:beta=0.99", "--out", str(out)], tmp_path)
    assert outcome.status == 0, outcome.stderr
    assert "prb/pf(beta=0.99)" in outcome.stdout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert "beta=0.99" in json.dumps(summary)


def test_split_policy_string_keywords_and_paths() -> None:
    from edgetwin.scenarios.schema import split_policy_string

    assert split_policy_string("pf:beta=0.99:initial_rate_bps=1e3") == (
        "pf",
        {"beta": 0.99, "initial_rate_bps": 1000.0},
    )
    assert split_policy_string("ppo:runs/lr=3/m.pt") == ("ppo", {"path": "runs/lr=3/m.pt"})
    assert split_policy_string("ppo:path=runs/m.pt") == ("ppo", {"path": "runs/m.pt"})
    assert split_policy_string("prb/ppo:C:/m.pt") == ("prb/ppo", {"path": "C:/m.pt"})
