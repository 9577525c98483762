"""More bad inputs found by trying the CLI and API as an adversarial new user.

Each table row is a command line (or a file it reads) that was wrong before — a traceback, an
exit status other than 2, a vague line, or nonsense run without a word — and is now answered in
one line naming the flag, field or file and what is allowed, with nothing created or removed.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from corpus_harness import check_one_line, expect_one_line_error, run_main, snapshot

from edgetwin.scenarios.load import ScenarioError, load_scenario, parse_yaml

SMALL = ["small_cell", "--set", "duration_s=0.01", "--no-plots", "--no-progress"]
SERVE = ["serve", "--trace", "trace.csv", "--out", "o"]
PROFILE = ["kernels", "profile", "--model", "smollm-135m", "--quick", "--ops", "linear_qkv"]
TRAIN = ["train", "ppo", "--steps", "4"]

CLI: list[tuple[list[str], list[str]]] = [
    # an option given twice: argparse keeps the last silently
    (["run", "small_cell", "--seed", "1", "--seed", "2"], ["--seed", "twice"]),
    (["run", "small_cell", "--out", "a", "--out", "b"], ["--out", "twice"]),
    (["compare", "small_cell", "--policies", "prb=pf", "--policies", "prb=rr"], ["twice"]),
    ([*SERVE, "--model", "llama-2-7b", "--model", "llama-3-8b"], ["--model", "twice"]),
    ([*TRAIN, "--out", "a.pt", "--out", "b.pt"], ["--out", "twice"]),
    ([*PROFILE, "--out", "k", "--out", "j"], ["--out", "twice"]),
    # a field set by a flag and by --set, or by --set twice: one of them silently won
    (["run", "small_cell", "--seed", "1", "--set", "seed=2"], ["seed", "twice"]),
    (["run", "small_cell", "--duration", "1", "--set", "duration_s=2"], ["duration_s", "twice"]),
    (["run", "small_cell", "--policy", "prb=pf", "--set", "policies.prb=rr"], ["policies.prb"]),
    (["run", "small_cell", "--set", "seed=1", "--set", "seed=2"], ["seed", "twice"]),
    # seeds beyond the range of --seed (2**32 - 1) ran
    (["run", *SMALL, "--set", "seed=99999999999999999999999999"], ["seed", "4294967295"]),
    (
        ["compare", *SMALL, "--set", "seed=4294967295", "--seeds", "2", "--policies", "prb=pf"],
        ["seeds", "0..4294967295", "4294967296"],
    ),
    ([*TRAIN, "--out", "m.pt", "--seed", "99999999999999999999"], ["--seed", "0..4294967295"]),
    # YAML 1.1 surprises in --set values (1:30 was 90, 0b11 was 3) and constructor crashes
    (["run", *SMALL, "--set", "topology.ues_per_cell=1:30"], ["topology.ues_per_cell", "1:30"]),
    (["run", *SMALL, "--set", "topology.ues_per_cell=0b11"], ["topology.ues_per_cell", "0b11"]),
    (["run", *SMALL, "--set", "duration_s=!!float abc"], ["duration_s", "!!float", "line 1"]),
    (["run", *SMALL, "--set", "name=!!timestamp x"], ["!!timestamp"]),
    (["run", *SMALL, "--set", 'name="\\ud800"'], ["surrogate"]),
    # a checkpoint path that is a folder was "not found"
    (["run", *SMALL, "--policy", "prb=ppo:mine"], ["'mine' is a directory", "nr_cell_mappo"]),
    # an empty scenario name was "a directory"
    (["run", ""], ["scenario name is empty", "small_cell"]),
    # serve
    ([*SERVE, "--profiles", ""], ["serving.profiles", "at least 1"]),
    ([*SERVE, "--name", "a/b"], ["name", "'/'"]),
    ([*SERVE, "--model", ""], ["serving.model", "at least 1"]),
    # train: --set duration_s was overridden by --episode-s; a folder-looking --out a file
    ([*TRAIN, "--out", "m.pt", "--set", "duration_s=5"], ["duration_s", "--episode-s"]),
    ([*TRAIN, "--out", "newdir/"], ["--out", "names a folder"]),
    # kernels profile: torch's RuntimeError escaped; libgomp aborted; '' wrote into '.'
    ([*PROFILE, "--out", "k", "--device", "nonsense"], ["device", "'cpu' or 'cuda[:N]'"]),
    ([*PROFILE, "--out", "k", "--device", ""], ["device", "'cpu' or 'cuda[:N]'"]),
    ([*PROFILE, "--out", "k", "--device", "cpu:5"], ["device", "'cpu' or 'cuda[:N]'"]),
    ([*PROFILE, "--out", "k", "--threads", "100000"], ["--threads", "integer in 1.."]),
    ([*PROFILE, "--out", ""], ["--out", "folder"]),
    (
        [
            "kernels",
            "profile",
            "--model",
            "smollm-135m",
            "--out",
            "k",
            "--ops",
            "lm_head",
            "lm_head",
        ],
        ["--ops", "lm_head", "twice"],
    ),
]


@pytest.mark.parametrize(("argv", "mention"), CLI, ids=[" ".join(a)[:60] for a, _ in CLI])
def test_more_bad_command_lines(workdir: Path, argv: list[str], mention: list[str]) -> None:
    expect_one_line_error(workdir, argv, mention)


# ----------------------------------------------------------------------------------------
# Scenario and serving YAML files
# ----------------------------------------------------------------------------------------
BASE = "name: bad\nduration_s: 0.01\n"
SERVING = "name: s\nserving: {model: llama-3.1-8b, hardware: rtx4090}\n"
GEN = "workload:\n  arrival: {rate_rps: 10, n_requests: 3}\n  output_tokens: {mean: 4}\n"

YAML: list[tuple[str, str, list[str]]] = [
    ("sexagesimal_int", BASE + "topology: {ues_per_cell: 1:30}\n", ["ues_per_cell", "1:30"]),
    ("binary_int", BASE + "topology: {ues_per_cell: 0b11}\n", ["ues_per_cell", "0b11"]),
    ("bad_float_tag", BASE + "cell: {bandwidth_hz: !!float abc}\n", ["bad.yaml", "line 3"]),
    ("bad_bool_tag", BASE + "output: {plots: !!bool maybe}\n", ["bad.yaml", "!!bool"]),
    ("bad_map_tag", BASE + "cell: !!map [1]\n", ["bad.yaml", "!!map"]),
    ("surrogate", 'name: "\\ud800"\nduration_s: 0.01\n', ["bad.yaml", "surrogate"]),
    ("seed_too_big", BASE + "seed: 4294967296\n", ["seed", "4294967295"]),
    (
        "wrap_around_needs_statistical_channel",
        BASE + "topology: {kind: hex, n_sites: 7, wrap_around: true}\nchannel: {backend: sionna}\n",
        ["topology.wrap_around", "channel.backend", "statistical"],
    ),
    (
        "wrap_around_needs_a_hex_grid",
        BASE + "topology: {wrap_around: true}\n",
        ["wrap_around", "n_sites 7 or 19"],
    ),
    (
        "serving_seed_too_big",
        SERVING + "seed: 4294967296\nworkload: {trace: trace.csv}\n",
        ["seed"],
    ),
    ("serving_name_path", "name: a/b\nserving: {}\nworkload: {trace: trace.csv}\n", ["name"]),
    (
        "serving_huge_generator",
        "serving: {}\nworkload:\n  arrival: {rate_rps: 1e6, duration_s: 1e9}\n"
        "  prompt_tokens: {mean: 4}\n  output_tokens: {mean: 4}\n",
        ["workload.arrival", "100000000"],
    ),
    (
        "serving_fractional_fixed_length",
        SERVING + GEN + "  prompt_tokens: {dist: fixed, mean: 1.5}\n",
        ["workload.prompt_tokens", "1.5", "geometric"],
    ),
    (
        "serving_empty_profiles",
        "serving: {profiles: ''}\nworkload: {trace: trace.csv}\n",
        ["profiles"],
    ),
    ("serving_empty_trace", "serving: {}\nworkload: {trace: ''}\n", ["workload.trace"]),
    (
        "serving_hardware_block_without_bf16",
        "serving:\n  hardware: {name: x, memory_bytes: 1e10, mem_bandwidth_bytes_per_s: 1e12, "
        "peak_flops: {fp32: 1e12}}\nworkload: {trace: trace.csv}\n",
        ["serving.hardware", "bf16", "fp16"],
    ),
    (
        "serving_hardware_block_negative_bandwidth",
        "serving:\n  hardware: {name: x, memory_bytes: 1e10, mem_bandwidth_bytes_per_s: -1, "
        "peak_flops: {bf16: 1e12}}\nworkload: {trace: trace.csv}\n",
        ["serving.hardware", "mem_bandwidth_bytes_per_s"],
    ),
]


@pytest.mark.parametrize(("text", "words"), [c[1:] for c in YAML], ids=[c[0] for c in YAML])
def test_more_bad_yaml(workdir: Path, text: str, words: list[str]) -> None:
    (workdir / "bad.yaml").write_text(text, encoding="utf-8")
    expect_one_line_error(workdir, ["run", "bad.yaml", "--no-plots", "--out", "res"], words)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1:30", "1:30"),  # YAML 1.1: sexagesimal 90
        ("010", 10),  # YAML 1.1: octal 8
        ("0o17", 15),
        ("0x1F", 31),
        ("0b11", "0b11"),  # YAML 1.1: binary 3
        ("no", "no"),  # YAML 1.1: False (name: no)
        ("On", "On"),
        ("true", True),
        ("False", False),
        ("40e6", 40e6),
        ("-1_000", -1000),
        (".inf", math.inf),
    ],
)
def test_yaml_scalars_read_as_yaml_1_2(text: str, value: object) -> None:
    assert parse_yaml(f"x: {text}") == {"x": value}


def test_yaml_constructor_failures_are_yaml_errors() -> None:
    for text in ("!!float abc", "!!int 0b1", "!!timestamp x", "!!map [1]", "!!bool maybe"):
        with pytest.raises(yaml.YAMLError):
            parse_yaml(f"x: {text}")


# ----------------------------------------------------------------------------------------
# Profile folders (serve --profiles, kernels fit): errors named no file, or crashed
# ----------------------------------------------------------------------------------------
SHIPPED = Path(__file__).resolve().parents[2] / "kernels" / "profiles" / "cpu" / "smollm-135m"
SERVE_CPU = [
    *SERVE,
    *["--profiles", "prof", "--hardware", "cpu", "--model", "smollm-135m", "--kv-blocks", "100"],
]


def _lines(edit: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        path = d / "linear_qkv.csv"
        path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")

    return mutate


def _cell(line: str, column: int, value: str) -> str:
    cells = line.split(",")
    cells[column] = value
    return ",".join(cells)


PROFILES: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("meta_not_json", lambda d: (d / "meta.json").write_text("{nope"), ["meta.json", "JSON"]),
    ("meta_list", lambda d: (d / "meta.json").write_text("[1]"), ["meta.json", "n_layers"]),
    ("meta_no_keys", lambda d: (d / "meta.json").write_text("{}"), ["meta.json", "n_layers"]),
    ("meta_binary", lambda d: (d / "meta.json").write_bytes(b"\xff\xfe\x00"), ["meta.json"]),
    ("csv_binary", lambda d: (d / "linear_qkv.csv").write_bytes(b"\x00\xff\x89PNG"), ["UTF-8"]),
    ("csv_empty", lambda d: (d / "linear_qkv.csv").write_text(""), ["linear_qkv.csv", "CSV"]),
    ("csv_header_only", _lines(lambda ls: ls[:1]), ["linear_qkv.csv", "no rows"]),
    (
        "csv_text_time",
        _lines(lambda ls: [*ls[:2], _cell(ls[2], 13, "abc"), *ls[3:]]),
        ["linear_qkv.csv", "line 3", "time_median_s", "finite number"],
    ),
    (
        "csv_inf_time",
        _lines(lambda ls: [*ls[:2], _cell(ls[2], 13, "inf"), *ls[3:]]),
        ["time_median_s", "finite number"],
    ),
    (
        "csv_fractional_tokens",
        _lines(lambda ls: [*ls[:2], _cell(ls[2], 4, "2.5"), *ls[3:]]),
        ["n_tokens", "integer", "2.5"],
    ),
    (
        "npz_garbage",
        lambda d: (d / "table.npz").write_bytes(b"garbage"),
        ["table.npz", "not readable"],
    ),
    ("npz_empty", lambda d: (d / "table.npz").write_bytes(b""), ["table.npz", "not readable"]),
    (
        "npz_without_tables",
        lambda d: np.savez(d / "table.npz", x=np.array([1])),
        ["table.npz", "n_layers"],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "words"), [c[1:] for c in PROFILES], ids=[c[0] for c in PROFILES]
)
def test_garbled_profile_folder(
    workdir: Path, mutate: Callable[[Path], None], words: list[str]
) -> None:
    folder = workdir / "prof" / "cpu" / "smollm-135m"
    shutil.copytree(SHIPPED, folder)
    mutate(folder)
    line = expect_one_line_error(workdir, SERVE_CPU, words)
    assert "allow_pickle" not in line


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (_lines(lambda ls: ls[:1]), ["linear_qkv.csv", "no rows"]),
        (lambda d: (d / "lm_head.csv").write_text(""), ["lm_head.csv", "CSV"]),
    ],
    ids=["header_only", "empty"],
)
def test_kernels_fit_of_garbled_profile(
    workdir: Path, mutate: Callable[[Path], None], words: list[str]
) -> None:
    folder = workdir / "prof" / "cpu" / "smollm-135m"
    shutil.copytree(SHIPPED, folder)
    mutate(folder)
    expect_one_line_error(workdir, ["kernels", "fit", "prof"], words)


# ----------------------------------------------------------------------------------------
# Documented behaviours, with a warning line (never silent)
# ----------------------------------------------------------------------------------------
def _warned(workdir: Path, argv: list[str], words: list[str]) -> None:
    outcome = run_main(argv, workdir)
    assert outcome.status == 0, outcome.stderr
    lines = [ln for ln in outcome.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("edgetwin: warning: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_profile_folder_without_the_pair_is_an_error(workdir: Path) -> None:
    # was a warning and the shipped public profiles: a named folder is never silently replaced
    expect_one_line_error(
        workdir,
        [*SERVE, "--profiles", "mine"],
        ["hardware='rtx4090'", "model='llama-3.1-8b'", "'mine'", "no profile folder", "expected"],
    )


def test_rejected_requests_warn(workdir: Path) -> None:
    _warned(workdir, [*SERVE, "--max-num-batched-tokens", "1"], ["2 of 2", "rejected"])
    summary = json.loads((workdir / "o" / "summary.json").read_text())
    assert summary["metrics"]["n_rejected"] == 2


# ----------------------------------------------------------------------------------------
# Results: the working directory is never replaced
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("out", [".", "..", "./", "../here"])
def test_out_is_never_the_working_directory(tmp_path: Path, out: str) -> None:
    here = tmp_path / "here"
    here.mkdir()  # empty: an empty folder used to count as replaceable
    cwd = here if out != ".." else here / "sub"
    cwd.mkdir(exist_ok=True)
    before = snapshot(tmp_path)
    outcome = run_main(["run", *SMALL, "--out", out], cwd)
    check_one_line(outcome, ["current directory"])
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------------------
# Python API: type errors and bad arguments are exceptions naming them, not AttributeError
# ----------------------------------------------------------------------------------------
def test_api_bad_arguments() -> None:
    from edgetwin.scenarios import serve
    from edgetwin.scenarios.serving_schema import validate_serving

    with pytest.raises(TypeError, match="built-in name or a YAML path"):
        load_scenario(None)  # type: ignore[arg-type]
    with pytest.raises(ScenarioError, match="empty"):
        load_scenario("")
    with pytest.raises(TypeError, match="ServingScenarioConfig"):
        serve.simulate({"workload": {"trace": "x"}})  # type: ignore[arg-type]
    config = validate_serving(
        {
            "workload": {
                "arrival": {"rate_rps": 10, "n_requests": 2},
                "prompt_tokens": {"mean": 4},
                "output_tokens": {"mean": 2},
            }
        }
    )
    with pytest.raises(TypeError, match="scheduler"):
        serve.simulate(config, scheduler=123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="block_size"):
        serve.default_kv_blocks("llama-3.1-8b", "a100", 0)


def test_numpy_bool_is_not_a_number() -> None:
    """``np.True_`` for an integer field was 1 UE without a word (only ``bool`` was caught)."""
    with pytest.raises(ScenarioError, match=r"topology.ues_per_cell.*boolean"):
        load_scenario("small_cell", {"topology.ues_per_cell": np.bool_(True)})
    assert load_scenario("small_cell", {"output.plots": np.bool_(False)}).output.plots is False
