"""Draft-length policies (decision family ``"draft"``): how many tokens a device drafts this round.

One round of speculative decoding across the radio: the device drafts ``k`` tokens, sends them
up the NR uplink, the cloud target verifies them in one batched pass and the accepted prefix
plus one corrected or bonus token comes back on the downlink. ``k = 0`` is a round without a
draft (the cloud decodes one token). The policy is asked once per round.

Observation (a dict; scalars are Python or numpy numbers; SI units):

* ``ue`` — str, optional: the drafting UE's name (for routing; the baselines ignore it).
* ``k_max`` — int: the longest draft allowed this round.
* ``alpha_est`` — float in [0, 1]: recent per-token acceptance rate estimate.
* ``predicted_accept`` — float64 [k_max] in [0, 1]: predicted P(token i accepted | tokens
  1..i−1 accepted), SpecDec++'s acceptance head.
* ``draft_token_s`` — float, s: device time per drafted token.
* ``draft_token_j`` — float, J: device energy per drafted token.
* ``uplink_bps`` — float > 0, bit/s: uplink rate estimate.
* ``bits_per_draft_token`` — float, bits: uplink payload per drafted token.
* ``uplink_overhead_bits`` — float, bits, optional (default 0): per-message uplink overhead.
* ``uplink_j_per_bit`` — float, J/bit, optional (default 0): UE transmit energy per uplink bit.
* ``rtt_s`` — float, s: network round trip UE ↔ cloud besides the payload's air time.
* ``verify_s`` — float64 [k_max + 1], s: cloud verification time of a round with k = 0..k_max
  drafted tokens (k + 1 query tokens) at the current batch.
* ``downlink_s`` — float, s: downlink time of the reply.
* ``energy_budget_j_per_token`` — float, J: device energy allowed per delivered token
  (``inf``: no budget).
* ``battery_j`` — float, J: energy left in the battery (``inf``: mains powered).

Action: an ``int`` ``k`` in ``0..k_max``.

Policies:

* ``draft/fixed`` — always ``k`` (capped at ``k_max``);
* ``draft/osd`` — Online Speculative Decoding's cost model (Liu et al., arXiv 2310.07177, §3):
  ``k* = argmax_k E[N(α, k)] / (c·k + 1)`` with ``α = alpha_est`` and ``c`` the draft/target
  per-token cost ratio ``draft_token_s / verify_s[0]`` — radio-blind, as in the paper;
* ``draft/specdecpp`` — SpecDec++'s threshold rule (Huang, Guo, Wang, arXiv 2405.19715, §4):
  keep drafting while the predicted probability that some drafted token is rejected stays at or
  below ``h``;
* ``draft/flexspec`` — FlexSpec's channel- and energy-aware choice (arXiv 2601.00644): the ``k``
  with the most expected tokens per second of the round under an energy-per-token budget.

Ties go to the smaller ``k`` (less uplink, less energy, less discarded work).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "FixedDraft",
    "FlexSpec",
    "OnlineSD",
    "SpecDecPP",
    "expected_tokens_curve",
    "flexspec_best_k",
    "osd_best_k",
    "round_energy_j",
    "round_time_s",
    "specdecpp_k",
    "specdecpp_threshold",
]

#: Longest draft any policy considers (the acceptance models' limit).
_K_LIMIT = 64


def expected_tokens_curve(accept: ArrayLike) -> NDArray[np.float64]:
    """``E[N(k)] = 1 + Σ_{j≤k} Π_{i≤j} a_i`` for ``k = 0..k_max``.

    Reference: Leviathan, Kalman, Matias, ICML 2023, §3.1 (with position-dependent ``a_i``;
    constant ``a_i = α`` gives ``(1 − α^(k+1)) / (1 − α)``). ``N`` counts the accepted draft
    tokens plus the target's corrected or bonus token.

    Args:
        accept: Conditional acceptance ``a_1..a_kmax``, shape [k_max], in [0, 1].

    Returns:
        ``E[N]`` for ``k = 0..k_max``, shape [k_max + 1].
    """
    a = np.clip(np.nan_to_num(np.asarray(accept, dtype=np.float64), nan=0.0), 0.0, 1.0)
    return np.concatenate([[1.0], 1.0 + np.cumsum(np.cumprod(a))])


def _first_max(values: NDArray[np.float64]) -> int:
    """Index of the largest value, the smallest index among near-ties (relative 1e-12)."""
    best = float(np.max(values))
    return int(np.flatnonzero(values >= best - 1e-12 * max(abs(best), 1.0))[0])


def osd_best_k(alpha: float, cost_ratio: float, k_max: int) -> int:
    """``argmax_k E[N(α, k)] / (c·k + 1)`` over ``k = 0..k_max`` (Online SD's cost model).

    Reference: Liu et al., "Online Speculative Decoding", arXiv 2310.07177, §3 (after Leviathan
    et al. 2023, Theorem 3.8): a round costs ``c·k + 1`` target-forward times and yields
    ``E[N] = (1 − α^(k+1)) / (1 − α)`` tokens. At α = 0.6 this gives k* = 7, 6, 4, 3 for
    c = 0.01, 0.02, 0.05, 0.1.

    Args:
        alpha: Acceptance rate per token, in [0, 1].
        cost_ratio: ``c``, draft per-token time over target forward time, ≥ 0.
        k_max: Longest draft, ≥ 0.
    """
    tokens = expected_tokens_curve(np.full(k_max, alpha))
    return _first_max(tokens / (cost_ratio * np.arange(k_max + 1) + 1.0))


def specdecpp_threshold(accept: ArrayLike, cost_ratio: float) -> float:
    """The stopping threshold ``h = 1 − c / T*`` of :func:`specdecpp_k`.

    ``T* = min_k (c·k + 1) / E[N(k)]`` is the least time per token (in target-forward units)
    that a fixed draft length reaches under the predicted acceptance. Drafting token ``i``
    costs ``c`` and adds one token exactly when tokens ``1..i`` are all accepted, which is worth
    ``T*``; so it pays while ``P(1..i accepted)·T* ≥ c``, i.e. while
    ``P(some of 1..i rejected) ≤ 1 − c / T*`` (the renewal-reward / Dinkelbach argument for the
    rate-optimal stopping rule). Under i.i.d. α this reproduces Online SD's ``k*``.

    Args:
        accept: Predicted conditional acceptance, shape [k_max].
        cost_ratio: ``c`` ≥ 0.

    Returns:
        ``h`` in [0, 1].
    """
    tokens = expected_tokens_curve(accept)
    t_star = float(np.min((cost_ratio * np.arange(tokens.size) + 1.0) / tokens))
    return float(np.clip(1.0 - cost_ratio / t_star, 0.0, 1.0))


def specdecpp_k(accept: ArrayLike, threshold: float) -> int:
    """Draft while ``P(some of tokens 1..i rejected) = 1 − Π_{j≤i} â_j`` stays ≤ ``threshold``.

    Reference: Huang, Guo, Wang, "SpecDec++", arXiv 2405.19715, §4 (the optimal policy of their
    MDP is a threshold policy on the probability that at least one candidate is rejected).

    Args:
        accept: Predicted conditional acceptance ``â_1..â_kmax``, shape [k_max].
        threshold: ``h`` in [0, 1].

    Returns:
        ``k`` in ``0..k_max``: the number of leading positions whose rejection probability is at
        most ``h``.
    """
    a = np.clip(np.nan_to_num(np.asarray(accept, dtype=np.float64), nan=0.0), 0.0, 1.0)
    reject = 1.0 - np.cumprod(a)
    return int(np.logical_and.accumulate(reject <= threshold).sum())


def _get(obs: Mapping[str, Any], key: str, default: float | None = None) -> float:
    """A scalar observation field as a float (``default`` when absent and one is given)."""
    if key not in obs and default is not None:
        return default
    return float(obs[key])


def round_time_s(obs: Mapping[str, Any]) -> NDArray[np.float64]:
    """Wall time of a round drafting ``k = 0..k_max`` tokens, shape [k_max + 1], s.

    ``T(k) = k·t_draft + (b_0 + k·b)/R_ul + RTT + t_verify(k) + t_downlink`` (FlexSpec,
    arXiv 2601.00644: drafting, uplink of the draft, network round trip, verification in the
    cloud batch, downlink of the reply).
    """
    k_max = int(obs["k_max"])
    k = np.arange(k_max + 1, dtype=np.float64)
    bits = _get(obs, "uplink_overhead_bits", 0.0) + k * _get(obs, "bits_per_draft_token")
    verify = np.asarray(obs["verify_s"], dtype=np.float64)[: k_max + 1]
    return np.asarray(
        k * _get(obs, "draft_token_s")
        + bits / _get(obs, "uplink_bps")
        + _get(obs, "rtt_s")
        + verify
        + _get(obs, "downlink_s"),
        dtype=np.float64,
    )


def round_energy_j(obs: Mapping[str, Any]) -> NDArray[np.float64]:
    """Device energy of a round drafting ``k = 0..k_max`` tokens, shape [k_max + 1], J.

    ``E(k) = k·e_draft + (b_0 + k·b)·e_bit``: drafting plus transmitting the draft.
    """
    k = np.arange(int(obs["k_max"]) + 1, dtype=np.float64)
    bits = _get(obs, "uplink_overhead_bits", 0.0) + k * _get(obs, "bits_per_draft_token")
    return np.asarray(
        k * _get(obs, "draft_token_j") + bits * _get(obs, "uplink_j_per_bit", 0.0),
        dtype=np.float64,
    )


def flexspec_best_k(obs: Mapping[str, Any]) -> int:
    """``argmax_k E[N(α, k)] / T(k)`` subject to ``E(k) / E[N(α, k)] ≤ budget`` and the battery.

    Reference: FlexSpec, arXiv 2601.00644 (channel- and energy-aware draft length). ``α`` is
    ``alpha_est``; ``T`` is :func:`round_time_s`, ``E`` :func:`round_energy_j`. ``k = 0`` is
    kept when no draft length is feasible.
    """
    k_max = int(obs["k_max"])
    tokens = expected_tokens_curve(np.full(k_max, _get(obs, "alpha_est")))
    rate = tokens / round_time_s(obs)
    energy = round_energy_j(obs)
    feasible = (energy / tokens <= _get(obs, "energy_budget_j_per_token", np.inf)) & (
        energy <= _get(obs, "battery_j", np.inf)
    )
    feasible[0] = True
    return _first_max(np.where(feasible, rate, -np.inf))


def _cost_ratio(obs: Mapping[str, Any], fixed: float | None) -> float:
    """``c``: the fixed value, else ``draft_token_s / verify_s[0]`` (draft / target per token)."""
    if fixed is not None:
        return fixed
    target_s = float(np.asarray(obs["verify_s"], dtype=np.float64)[0])
    return _get(obs, "draft_token_s") / target_s if target_s > 0 else np.inf


def _check_cost_ratio(cost_ratio: float | None) -> None:
    if cost_ratio is not None and not (0.0 <= cost_ratio < np.inf):
        raise ValueError(f"cost_ratio must be a finite number ≥ 0 or None, got {cost_ratio}")


class FixedDraft:
    """Always draft ``k`` tokens (capped at the observation's ``k_max``).

    Args:
        k: Draft length, an integer in 0..64.
    """

    def __init__(self, k: int = 4) -> None:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k <= _K_LIMIT:
            raise ValueError(f"k must be an integer in 0..{_K_LIMIT}, got {k!r}")
        self.k = int(k)

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> int:
        """``min(k, k_max)``."""
        return min(self.k, int(obs["k_max"]))


class OnlineSD:
    """Online SD's cost model: ``argmax_k E[N(α, k)] / (c·k + 1)`` (Liu et al., arXiv 2310.07177).

    ``α`` is the observation's ``alpha_est``; ``c`` is ``cost_ratio`` when given, else the
    measured draft/target per-token time ratio ``draft_token_s / verify_s[0]``. The radio does
    not enter (the paper co-locates draft and target); :class:`FlexSpec` is the radio-aware one.

    Args:
        cost_ratio: Fixed ``c`` ≥ 0, or None to measure it from each observation.
    """

    def __init__(self, cost_ratio: float | None = None) -> None:
        _check_cost_ratio(cost_ratio)
        self.cost_ratio = cost_ratio

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> int:
        """The ``k`` that maximizes expected tokens per unit of round cost."""
        alpha = float(np.clip(np.nan_to_num(_get(obs, "alpha_est"), nan=0.0), 0.0, 1.0))
        return osd_best_k(alpha, _cost_ratio(obs, self.cost_ratio), int(obs["k_max"]))


class SpecDecPP:
    """SpecDec++'s threshold rule on the predicted acceptance (Huang et al., arXiv 2405.19715).

    Drafts while the predicted probability that at least one drafted token is rejected,
    ``1 − Π_{j≤i} â_j`` with ``â = predicted_accept``, stays ≤ ``h``. ``h`` is ``threshold``
    when given, else derived from the cost ratio ``c`` (as in :class:`OnlineSD`) by
    :func:`specdecpp_threshold`: ``h = 1 − c / T*``.

    Args:
        threshold: Fixed ``h`` in [0, 1], or None to derive it from the cost ratio.
        cost_ratio: Fixed ``c`` ≥ 0, or None to measure it from each observation.
    """

    def __init__(self, threshold: float | None = None, cost_ratio: float | None = None) -> None:
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1] or None, got {threshold}")
        _check_cost_ratio(cost_ratio)
        self.threshold = threshold
        self.cost_ratio = cost_ratio

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> int:
        """The length of the draft prefix whose predicted rejection probability stays ≤ h."""
        k_max = int(obs["k_max"])
        accept = np.asarray(obs["predicted_accept"], dtype=np.float64)[:k_max]
        h = self.threshold
        if h is None:
            h = specdecpp_threshold(accept, _cost_ratio(obs, self.cost_ratio))
        return specdecpp_k(accept, h)


class FlexSpec:
    """FlexSpec: most expected tokens per second of the round under an energy budget.

    ``argmax_k E[N(α, k)] / T(k)`` with ``T(k) = k·t_draft + t_uplink(k) + RTT + t_verify(k) +
    t_downlink`` over the ``k`` whose device energy per expected token ``E(k) / E[N]`` is within
    ``energy_budget_j_per_token`` and whose energy ``E(k)`` the battery still holds (arXiv
    2601.00644). A worse channel, a larger cloud batch or a tighter budget shortens the draft; a
    longer RTT lengthens it (more tokens per round trip).
    """

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> int:
        """The feasible ``k`` with the highest expected token rate."""
        return flexspec_best_k(obs)
