"""Acceptance models of speculative decoding (sim/compute/acceptance.py).

References: Leviathan, Kalman, Matias, ICML 2023 (Eq. 1: E[N] = (1 − α^(k+1)) / (1 − α);
Algorithm 1: speculative sampling is lossless; §3.1: α = Σ_x min(p(x), q(x))); Spec-Bench
(Xia et al., Findings of ACL 2024) leaderboard for the small-draft τ; the vLLM MTP GSM8K curve
quoted in issue 11 (acceptance length 4.50).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from edgetwin.sim.compute.acceptance import (
    SPEC_BENCH_ALPHA,
    SPEC_BENCH_SPS_DRAFT_LEN,
    SPEC_BENCH_TAU,
    VLLM_MTP_GSM8K_RATES,
    AcceptanceConfig,
    IIDAcceptance,
    IIDAcceptanceConfig,
    MarkovAcceptance,
    MarkovAcceptanceConfig,
    PositionAcceptance,
    PositionAcceptanceConfig,
    VersionedAcceptance,
    VersionedAcceptanceConfig,
    alpha_from_tau,
    conditional_from_cumulative,
    expected_tokens_iid,
    make_acceptance,
    predict_acceptance,
    rejection_sample,
)
from edgetwin.sim.workload.traces import shared_data_dir

SPEC_BENCH_CSV = shared_data_dir() / "spec_bench/spec_bench_leaderboard.csv"


def _monte_carlo(model, k, n_rounds, seed):
    """N = N_acc + 1 over ``n_rounds`` rounds drawn from ``seed`` (vectorized over rounds)."""
    rng = np.random.default_rng(seed)
    u = rng.random((n_rounds, 2, model.k_max + 1))
    p = model.accept_probs(u[0])[:k]
    accept = u[:, 0, :k] < p
    return np.logical_and.accumulate(accept, axis=1).sum(axis=1) + 1


@pytest.mark.parametrize(("alpha", "k"), [(0.3, 2), (0.6, 4), (0.8, 7), (0.9, 12)])
def test_iid_mean_tokens_match_leviathan_eq1(alpha, k):
    """Leviathan et al. 2023, Eq. 1: E[N] = (1 − α^(k+1)) / (1 − α), within 1 %."""
    model = IIDAcceptance(alpha, k_max=16)
    n = _monte_carlo(model, k, 200_000, seed=k)
    expected = (1 - alpha ** (k + 1)) / (1 - alpha)
    assert model.expected_tokens(k) == pytest.approx(expected, rel=1e-12)
    assert n.mean() == pytest.approx(expected, rel=0.01)


def test_iid_distribution_is_truncated_geometric():
    """P(N_acc = n) = α^n (1 − α) for n < k and α^k at n = k (chi-square, 1 % level)."""
    alpha, k, rounds = 0.7, 5, 100_000
    model = IIDAcceptance(alpha, k_max=8)
    counts = np.bincount(_monte_carlo(model, k, rounds, seed=3) - 1, minlength=k + 1)
    probs = np.array([alpha**n * (1 - alpha) for n in range(k)] + [alpha**k])
    assert probs.sum() == pytest.approx(1.0)
    chi2 = float((((counts - rounds * probs) ** 2) / (rounds * probs)).sum())
    assert chi2 < 15.09  # chi-square 99th percentile, 5 degrees of freedom


def test_accepted_matches_the_vectorized_draw_and_stays_in_range():
    model = IIDAcceptance(0.5, k_max=6)
    rng = np.random.default_rng(0)
    for _ in range(200):
        draws = model.draw(rng)
        assert draws.shape == (2, 7)
        for k in range(7):
            n = model.accepted(draws, k)
            assert 0 <= n <= k
    with pytest.raises(ValueError, match=r"k must be in 0\.\.k_max = 0\.\.6, got 7"):
        model.accepted(rng, 7)


@pytest.mark.parametrize(
    "model",
    [
        IIDAcceptance(0.6, k_max=10),
        PositionAcceptance(conditional_from_cumulative(VLLM_MTP_GSM8K_RATES)),
        MarkovAcceptance(
            MarkovAcceptanceConfig(
                alpha_easy=0.9, alpha_hard=0.2, p_easy_to_hard=0.1, p_hard_to_easy=0.3, k_max=8
            )
        ),
    ],
    ids=["iid", "position", "markov"],
)
def test_common_random_numbers_across_k(model):
    """Same seed, different k: same uniforms, the shorter draft's N_acc is the longer one's cut."""
    for seed in range(50):
        rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
        draws_a, draws_b = model.draw(rng_a), model.draw(rng_b)
        np.testing.assert_array_equal(draws_a, draws_b)
        n_long = model.accepted(draws_a, model.k_max)
        for k in range(model.k_max + 1):
            assert model.accepted(draws_b, k) == min(n_long, k)
        # The generator is left in the same state whatever k was used.
        assert rng_a.random() == rng_b.random()


def test_vllm_mtp_curve_acceptance_length_is_4_50():
    """Issue 11 quotes 4.50: the rates are cumulative (P(prefix 1..i accepted))."""
    assert 1 + sum(VLLM_MTP_GSM8K_RATES) == pytest.approx(4.50, abs=0.005)
    model = make_acceptance(PositionAcceptanceConfig(cumulative=VLLM_MTP_GSM8K_RATES))
    assert model.expected_tokens(8) == pytest.approx(4.497, abs=1e-9)
    # Read as conditional rates the same numbers give a much shorter draft.
    as_conditional = PositionAcceptance(VLLM_MTP_GSM8K_RATES)
    assert as_conditional.expected_tokens(8) == pytest.approx(2.627, abs=1e-3)
    assert _monte_carlo(model, 8, 100_000, seed=1).mean() == pytest.approx(4.497, rel=0.01)


def test_alpha_from_tau_inverts_eq1():
    for alpha in (0.0, 0.25, 0.6, 0.95):
        for k in (1, 5, 9):
            tau = float(expected_tokens_iid(alpha, k))
            assert alpha_from_tau(tau, k) == pytest.approx(alpha, abs=1e-9)
    with pytest.raises(ValueError, match=r"tau must be in \[1, k \+ 1\]"):
        alpha_from_tau(7.0, 5)


def test_spec_bench_alpha_derivation():
    """Spec-Bench SpS (vicuna-68m → Vicuna-7B): τ = 2.28 at γ = 5 → α ≈ 0.578."""
    assert SPEC_BENCH_SPS_DRAFT_LEN == 5
    assert SPEC_BENCH_ALPHA["overall"] == pytest.approx(0.5777, abs=1e-3)
    assert SPEC_BENCH_ALPHA["translation"] == pytest.approx(0.4306, abs=1e-3)
    assert SPEC_BENCH_ALPHA["math_reasoning"] == pytest.approx(0.5833, abs=1e-3)
    for task, alpha in SPEC_BENCH_ALPHA.items():
        assert float(expected_tokens_iid(alpha, 5)) == pytest.approx(SPEC_BENCH_TAU[task])
    # Translation is the hardest task for a small draft, summarization the easiest.
    assert min(SPEC_BENCH_ALPHA, key=SPEC_BENCH_ALPHA.__getitem__) == "translation"
    assert max(SPEC_BENCH_ALPHA, key=SPEC_BENCH_ALPHA.__getitem__) == "summarization"


@pytest.mark.skipif(not SPEC_BENCH_CSV.exists(), reason="shared Spec-Bench data not present")
def test_spec_bench_numbers_match_the_shared_csv():
    with SPEC_BENCH_CSV.open() as f:
        row = next(r for r in csv.DictReader(f) if r["method"] == "SpS")
    tau, overall = float(row["mean_accepted_tokens_per_step"]), float(row["speedup_overall"])
    assert SPEC_BENCH_TAU["overall"] == tau
    for task in SPEC_BENCH_ALPHA:
        if task != "overall":
            assert SPEC_BENCH_TAU[task] == pytest.approx(
                tau * float(row[f"speedup_{task}"]) / overall
            )


def test_markov_expected_tokens_matches_monte_carlo_and_carries_state():
    cfg = MarkovAcceptanceConfig(
        alpha_easy=0.9,
        alpha_hard=0.2,
        p_easy_to_hard=0.05,
        p_hard_to_easy=0.2,
        k_max=6,
        initial_state="easy",
    )
    model = MarkovAcceptance(cfg)
    rng = np.random.default_rng(5)
    n = np.array([model.accepted(model.draw(rng), 6) + 1 for _ in range(20_000)])
    assert n.mean() == pytest.approx(model.expected_tokens(6), rel=0.02)
    model.reset("hard")
    hard = model.expected_tokens(6)
    model.reset("easy")
    assert model.expected_tokens(6) > hard
    # advance() carries the state of the last emitted token.
    draws = model.draw(rng)
    path = model.path(draws)
    model.advance(draws, 2)
    np.testing.assert_array_equal(model.belief, np.eye(2)[path[2]])
    # Stationary start: mean rate π·α.
    stat = MarkovAcceptance(cfg.model_copy(update={"initial_state": "stationary"}))
    pi = stat.stationary
    assert pi == pytest.approx([0.8, 0.2])
    assert stat.expected_tokens(1) == pytest.approx(1 + pi @ [0.9, 0.2])


def test_versioned_table_switches_alpha():
    model = VersionedAcceptance(
        VersionedAcceptanceConfig(alpha_by_version={"v1": 0.7, "v2": 0.55}, version="v1", k_max=4)
    )
    assert model.expected_tokens(4) == pytest.approx(float(expected_tokens_iid(0.7, 4)))
    model.set_version("v2")
    assert model.accept_probs(model.draw(np.random.default_rng(0))) == pytest.approx([0.55] * 4)
    with pytest.raises(ValueError, match="'v3' is not in the table"):
        model.set_version("v3")


def test_predicted_acceptance_noise():
    p = np.array([0.9, 0.5, 0.1])
    assert predict_acceptance(p, 0.0, np.random.default_rng(0)) == pytest.approx(p)
    noisy = np.array([predict_acceptance(p, 1.0, np.random.default_rng(s)) for s in range(2000)])
    assert ((noisy > 0) & (noisy < 1)).all()
    logit = np.log(noisy / (1 - noisy))
    assert logit.mean(axis=0) == pytest.approx(np.log(p / (1 - p)), abs=0.1)
    assert logit.std(axis=0) == pytest.approx([1.0] * 3, abs=0.1)


def test_lossless_rejection_sampling_preserves_the_target():
    """Leviathan et al. 2023, Theorem 3.5 / Algorithm 1: the first emitted token follows p."""
    rng = np.random.default_rng(11)
    vocab, k, trials = 5, 3, 200_000
    p = np.array([0.05, 0.10, 0.15, 0.30, 0.40])
    q = np.array([0.60, 0.25, 0.10, 0.04, 0.01])  # far from p (TV distance 0.65)
    p_target = np.broadcast_to(p, (trials, k + 1, vocab))
    q_draft = np.broadcast_to(q, (trials, k, vocab))
    drafts = (rng.random((trials, k, 1)) >= np.cumsum(q)).sum(axis=-1)
    n_acc, token = rejection_sample(p_target, q_draft, drafts, rng.random((trials, k + 1)))
    first = np.where(n_acc > 0, drafts[:, 0], token)
    freq = np.bincount(first, minlength=vocab) / trials
    sigma = np.sqrt(p * (1 - p) / trials)
    assert np.abs(freq - p).max() < 5 * sigma.max()
    # Acceptance per token is Σ min(p, q) (Leviathan §3.1), i.i.d. here: mean N follows Eq. 1.
    alpha = float(np.minimum(p, q).sum())
    assert (n_acc + 1).mean() == pytest.approx(float(expected_tokens_iid(alpha, k)), rel=0.01)


def test_rejection_sampling_bonus_token_when_all_accepted():
    p = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # k = 1, target certain
    n, token = rejection_sample(p, p[:1], np.array([1]), np.array([0.5, 0.3]))
    assert (int(n), int(token)) == (1, 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "iid"}, "exactly one of alpha"),
        ({"kind": "iid", "alpha": 0.5, "task": "qa"}, "exactly one of alpha"),
        ({"kind": "iid", "alpha": 1.5}, "less than or equal to 1"),
        ({"kind": "iid", "alpha": True}, "boolean"),
        ({"kind": "iid", "task": "poetry"}, "multiturn_conversation"),
        ({"kind": "position", "cumulative": [0.5, 0.7]}, "cannot grow"),
        ({"kind": "position", "conditional": []}, "at least 1"),
        (
            {
                "kind": "markov",
                "alpha_easy": 0.3,
                "alpha_hard": 0.5,
                "p_easy_to_hard": 0.1,
                "p_hard_to_easy": 0.1,
            },
            "must not exceed alpha_easy",
        ),
        (
            {
                "kind": "markov",
                "alpha_easy": 0.9,
                "alpha_hard": 0.5,
                "p_easy_to_hard": 0.0,
                "p_hard_to_easy": 0.0,
            },
            "stationary",
        ),
        ({"kind": "versioned", "alpha_by_version": {"a": 0.5}, "version": "b"}, "not in"),
        ({"kind": "iid", "alpha": 0.5, "k_max": 65}, "less than or equal to 64"),
    ],
)
def test_config_errors_are_one_clear_line(data, message):
    with pytest.raises(ValidationError, match=message):
        TypeAdapter(AcceptanceConfig).validate_python(data)


def test_configs_build_models():
    adapter = TypeAdapter(AcceptanceConfig)
    model = make_acceptance(adapter.validate_python({"kind": "iid", "task": "qa", "k_max": 5}))
    assert isinstance(model, IIDAcceptance)
    assert model.alpha == SPEC_BENCH_ALPHA["qa"]
    assert isinstance(IIDAcceptanceConfig(alpha=0.4), IIDAcceptanceConfig)
