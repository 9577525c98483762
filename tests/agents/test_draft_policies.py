"""Draft-length policies (agents/baselines/draft.py), family ``draft``.

References: Online SD (Liu et al., arXiv 2310.07177, §3) for k* = argmax E[N]/(c·k + 1) and its
values 7, 6, 4, 3 at α = 0.6 (issue 11); SpecDec++ (Huang et al., arXiv 2405.19715, §4) for the
threshold rule; FlexSpec (arXiv 2601.00644) for the tokens-per-second objective under an energy
budget; Leviathan et al. 2023, Eq. 1 for E[N].
"""

from __future__ import annotations

import numpy as np
import pytest

from edgetwin.agents import Policy, PolicyRegistryError, make_policy, policy_ids
from edgetwin.agents.baselines.draft import (
    expected_tokens_curve,
    osd_best_k,
    round_time_s,
    specdecpp_k,
    specdecpp_threshold,
)

K_MAX = 12


def _obs(**over):
    """A draft observation: a phone drafting for a cloud target over a good NR uplink."""
    obs = {
        "k_max": K_MAX,
        "alpha_est": 0.7,
        "predicted_accept": np.full(K_MAX, 0.7),
        "draft_token_s": 0.004,
        "draft_token_j": 0.01,
        "uplink_bps": 20e6,
        "bits_per_draft_token": 17.0,
        "uplink_overhead_bits": 400.0,
        "uplink_j_per_bit": 1e-7,
        "rtt_s": 0.02,
        "verify_s": 0.025 + 0.0005 * np.arange(K_MAX + 1),
        "downlink_s": 0.002,
        "energy_budget_j_per_token": np.inf,
        "battery_j": np.inf,
    }
    obs.update(over)
    return obs


def test_registered_and_built():
    assert set(policy_ids(family="draft")) >= {
        "draft/fixed",
        "draft/osd",
        "draft/specdecpp",
        "draft/flexspec",
    }
    # draft/ppo needs a checkpoint: tests/agents/rl/test_draft_ppo.py checks its contract
    for pid in [p for p in policy_ids(family="draft") if p != "draft/ppo"]:
        policy = make_policy(pid)
        assert isinstance(policy, Policy)
        policy.reset(seed=0)
        obs = _obs()
        before = {k: np.copy(v) for k, v in obs.items()}
        k = policy.act(obs)
        assert isinstance(k, int)
        assert 0 <= k <= K_MAX
        for key, value in before.items():  # act() does not mutate the observation
            np.testing.assert_array_equal(obs[key], value)


def test_fixed_caps_at_k_max_and_checks_k():
    assert make_policy("draft/fixed").act(_obs()) == 4
    assert make_policy("draft/fixed", k=30).act(_obs()) == K_MAX
    assert make_policy("draft/fixed", k=0).act(_obs()) == 0
    with pytest.raises(PolicyRegistryError, match=r"draft/fixed\.k: must be an integer in 0\.\.64"):
        make_policy("draft/fixed", k=-1)
    with pytest.raises(PolicyRegistryError, match=r"draft/fixed\.k: must be an integer"):
        make_policy("draft/fixed", k=2.5)


@pytest.mark.parametrize(("c", "k_star"), [(0.01, 7), (0.02, 6), (0.05, 4), (0.1, 3)])
def test_osd_reproduces_the_papers_k_star(c, k_star):
    """Online SD at α = 0.6: k* = 7, 6, 4, 3 for c = 0.01, 0.02, 0.05, 0.1 (issue 11).

    E[N] counts the bonus token (Leviathan Eq. 1), k ranges over 0..k_max with k_max ≥ k*.
    """
    assert osd_best_k(0.6, c, 20) == k_star
    obs = _obs(alpha_est=0.6, k_max=20, verify_s=np.full(21, 0.02), draft_token_s=0.02 * c)
    assert make_policy("draft/osd").act(obs) == k_star  # c measured as draft / target time
    assert make_policy("draft/osd", cost_ratio=c).act(_obs(alpha_est=0.6, k_max=20)) == k_star


def test_osd_edges():
    assert osd_best_k(0.0, 0.05, 10) == 0  # nothing is ever accepted: do not draft
    assert osd_best_k(1.0, 0.0, 10) == 10  # free, always accepted: draft the most
    with pytest.raises(PolicyRegistryError, match=r"cost_ratio: must be a finite number"):
        make_policy("draft/osd", cost_ratio=-0.1)


def test_expected_tokens_curve_matches_eq1():
    alpha = 0.75
    k = np.arange(9)
    np.testing.assert_allclose(
        expected_tokens_curve(np.full(8, alpha)), (1 - alpha ** (k + 1)) / (1 - alpha)
    )


@pytest.mark.parametrize(("c", "k_star"), [(0.01, 7), (0.02, 6), (0.05, 4), (0.1, 3)])
def test_specdecpp_derived_threshold_agrees_with_osd_under_iid(c, k_star):
    """With an exact i.i.d. head, h = 1 − c/T* gives the rate-optimal fixed k."""
    accept = np.full(20, 0.6)
    assert specdecpp_k(accept, specdecpp_threshold(accept, c)) == k_star


def test_specdecpp_stops_earlier_with_lower_predicted_acceptance():
    policy = make_policy("draft/specdecpp", threshold=0.7)
    ks = [policy.act(_obs(predicted_accept=np.full(K_MAX, a))) for a in (0.95, 0.85, 0.7, 0.5)]
    assert ks == sorted(ks, reverse=True)
    assert ks[0] > ks[-1]
    # A hard span ahead (low predicted acceptance at position 4) cuts the draft there.
    easy = np.full(K_MAX, 0.95)
    hard_ahead = easy.copy()
    hard_ahead[3:] = 0.2
    assert policy.act(_obs(predicted_accept=hard_ahead)) < policy.act(_obs(predicted_accept=easy))
    assert policy.act(_obs(predicted_accept=hard_ahead)) == 3
    # Derived h (no threshold kwarg): the same ordering.
    derived = make_policy("draft/specdecpp")
    kd = [derived.act(_obs(predicted_accept=np.full(K_MAX, a))) for a in (0.95, 0.8, 0.5)]
    assert kd == sorted(kd, reverse=True)
    assert kd[0] > kd[-1]
    with pytest.raises(PolicyRegistryError, match=r"threshold: must be in \[0, 1\]"):
        make_policy("draft/specdecpp", threshold=1.5)


def _flex(**over):
    return make_policy("draft/flexspec").act(_obs(**over))


def _non_increasing(ks):
    return ks == sorted(ks, reverse=True)


def test_flexspec_shorter_draft_on_a_worse_uplink():
    ks = [_flex(uplink_bps=r, bits_per_draft_token=1000.0) for r in (50e6, 5e6, 1e6, 2e5, 5e4)]
    assert _non_increasing(ks)
    assert ks[0] > ks[-1]


def test_flexspec_shorter_draft_when_verification_grows_with_the_batch():
    # Verify time of k + 1 query tokens: flat (memory bound) at batch 1, steeper as the batch
    # fills the GPU (compute bound); SPEED-Bench (arXiv 2604.09557) reports the same trend.
    k = np.arange(K_MAX + 1)
    slopes = (0.0002, 0.002, 0.005, 0.01, 0.03)
    ks = [_flex(verify_s=0.025 + 0.004 * i + s * k) for i, s in enumerate(slopes)]
    assert _non_increasing(ks)
    assert ks[0] > ks[-1]


def test_flexspec_longer_draft_with_a_longer_rtt():
    ks = [_flex(rtt_s=r) for r in (0.0, 0.01, 0.03, 0.1, 0.3)]
    assert ks == sorted(ks)
    assert ks[-1] > ks[0]


def test_flexspec_tighter_energy_budget_lowers_k():
    ks = [_flex(energy_budget_j_per_token=b) for b in (np.inf, 0.02, 0.01, 0.006, 0.003)]
    assert _non_increasing(ks)
    assert ks[0] > ks[-1]
    assert ks[-1] == 0  # no draft fits: cloud-only round
    # An almost empty battery also forbids long drafts.
    assert _flex(battery_j=0.025) <= 2


def test_round_time_terms():
    obs = _obs(k_max=2, verify_s=np.array([0.02, 0.021, 0.022]), uplink_overhead_bits=0.0)
    expected = np.arange(3) * 0.004 + np.arange(3) * 17.0 / 20e6 + 0.02 + obs["verify_s"] + 0.002
    np.testing.assert_allclose(round_time_s(obs), expected)
