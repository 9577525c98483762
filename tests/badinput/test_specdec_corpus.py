"""Bad ``speculative`` sections and ``draft`` policies: one ``edgetwin: error:`` line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_harness import expect_one_line_error

EDGE = """name: bad
duration_s: 0.01
topology: {ues_per_cell: 4}
nodes:
  device: {model: smollm-135m, hardware: cpu}
  cloud: {model: llama-3.1-8b, hardware: h100}
workload: {llm_ues_per_cell: 2}
"""
RUN = ["run", "bad.yaml", "--no-plots", "--out", "res"]

# (id, YAML text, words the one line must mention)
CASES: list[tuple[str, str, list[str]]] = [
    (
        "bad_mode",
        EDGE + "speculative: {mode: split}\n",
        ["speculative.mode", "distributed", "fused", "autoregressive"],
    ),
    (
        "bad_payload",
        EDGE + "speculative: {payload: logits}\n",
        ["speculative.payload", "ids", "ids_probs"],
    ),
    ("vocab_too_small", EDGE + "speculative: {vocab_size: 1}\n", ["speculative.vocab_size", "2"]),
    ("vocab_not_int", EDGE + "speculative: {vocab_size: big}\n", ["speculative.vocab_size"]),
    ("prob_bits_zero", EDGE + "speculative: {prob_bits: 0}\n", ["speculative.prob_bits"]),
    (
        "top_m_above_vocab",
        EDGE + "speculative: {payload: ids_probs, vocab_size: 100, top_m: 500}\n",
        ["speculative", "top_m", "vocab_size", "1..100"],
    ),
    (
        "bad_acceptance_kind",
        EDGE + "speculative: {acceptance: {kind: magic}}\n",
        ["speculative.acceptance", "iid", "markov"],
    ),
    (
        "alpha_above_one",
        EDGE + "speculative: {acceptance: {kind: iid, alpha: 1.5}}\n",
        ["speculative.acceptance", "alpha", "1"],
    ),
    (
        "k_max_too_long",
        EDGE + "speculative: {acceptance: {kind: iid, alpha: 0.5, k_max: 100}}\n",
        ["k_max", "64"],
    ),
    ("negative_overhead", EDGE + "speculative: {message_overhead_bytes: -1}\n", ["overhead"]),
    ("unknown_key", EDGE + "speculative: {draft_len: 4}\n", ["speculative", "draft_len"]),
    (
        "no_cloud",
        EDGE.replace("  cloud: {model: llama-3.1-8b, hardware: h100}\n", "") + "speculative: {}\n",
        ["speculative", "nodes.cloud"],
    ),
    (
        "distributed_without_device",
        EDGE.replace("  device: {model: smollm-135m, hardware: cpu}\n", "")
        + "speculative: {mode: distributed}\n",
        ["speculative.mode", "nodes.device"],
    ),
    (
        "unknown_draft_policy",
        EDGE + "speculative: {}\npolicies: {draft: longest}\n",
        ["draft", "longest", "draft/fixed"],
    ),
    (
        "draft_policy_without_speculative",
        EDGE + "policies: {draft: osd}\n",
        ["policies.draft", "no draft decision"],
    ),
    ("bad_draft_kwarg", EDGE + "speculative: {}\npolicies: {draft: 'fixed:k=99'}\n", ["k"]),
]


@pytest.mark.parametrize(("text", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_speculative_yaml_is_one_line(workdir: Path, text: str, words: list[str]) -> None:
    (workdir / "bad.yaml").write_text(text, encoding="utf-8")
    expect_one_line_error(workdir, RUN, words)


def test_a_bad_draft_policy_on_the_command_line_is_one_line(workdir: Path) -> None:
    (workdir / "ok.yaml").write_text(EDGE + "speculative: {}\n", encoding="utf-8")
    argv = ["run", "ok.yaml", "--no-plots", "--out", "res", "--policy", "draft=greedy"]
    expect_one_line_error(workdir, argv, ["draft", "greedy"])
