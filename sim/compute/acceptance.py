"""Acceptance models of speculative decoding: how many drafted tokens the target keeps per round.

A round drafts ``k`` tokens on the device, the cloud target verifies them in one pass and keeps
the longest accepted prefix, ``N_acc ∈ 0..k``, plus one token of its own (the correction of the
first rejected token, or a bonus token when all ``k`` are accepted): ``N = N_acc + 1`` tokens per
round (Leviathan, Kalman, Matias, ICML 2023, Algorithm 1). With i.i.d. acceptance at rate α,
``N_acc`` is a geometric variable truncated at ``k`` and (Leviathan et al. 2023, Eq. 1)::

    E[N] = (1 − α^(k+1)) / (1 − α)          (= k + 1 at α = 1)

Models (each a :class:`StrictConfig` with ``kind``; :func:`make_acceptance` builds one):

* ``iid`` — rate α per token, given or taken from a Spec-Bench task category
  (:data:`SPEC_BENCH_ALPHA`);
* ``position`` — conditional acceptance ``a_i`` of the i-th drafted token given that tokens
  ``1..i−1`` were accepted (:data:`VLLM_MTP_GSM8K_RATES` gives a measured curve);
* ``markov`` — a two-state (easy / hard) Markov chain over token positions, α_easy and α_hard,
  carried from round to round (:meth:`MarkovAcceptance.advance`);
* ``versioned`` — i.i.d. with a rate α_v per target version (a target that evolves under a
  frozen draft; FlexSpec, arXiv 2601.00644).

**Common random numbers.** :meth:`AcceptanceModel.draw` takes the round's randomness from the
generator up front, always as an array of shape ``[2, k_max + 1]`` whatever ``k`` the policy
picks: row 0 holds one acceptance uniform per draft position (token ``i`` is accepted iff
``u[0, i−1] < a_i``), row 1 the uniforms that move the latent easy/hard chain (Markov model only;
drawn by every model so that each consumes the stream alike). Two draft policies run on the same
seed therefore see the same "text difficulty" in round ``r`` — the accepted prefix of the longer
draft, cut at the shorter ``k``, is the shorter draft's — and the generator is left in the same
state after the round, whatever ``k``. The last column stands for the corrected or bonus token at
position ``k_max + 1`` (its latent state is where the Markov chain continues after a full
acceptance at ``k = k_max``).

**Predicted acceptance.** :meth:`AcceptanceModel.accept_probs` gives the per-position acceptance
probability of the round's draft tokens — on the Markov model along the realized easy/hard path,
which an acceptance head that reads the draft's hidden states can see; :func:`predict_acceptance`
adds Gaussian noise on its logit, standing for SpecDec++'s trained acceptance-prediction head
(Huang, Guo, Wang, arXiv 2405.19715, §4).

:func:`rejection_sample` is the lossless verification itself on an explicit small vocabulary
(Leviathan et al. 2023, Algorithm 1), for checks that the accepted-token process preserves the
target distribution.
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

import numpy as np
from pydantic import Field, model_validator

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.types import FloatArray, IntArray

__all__ = [
    "SPEC_BENCH_ALPHA",
    "SPEC_BENCH_SPS_DRAFT_LEN",
    "SPEC_BENCH_TASKS",
    "SPEC_BENCH_TAU",
    "VLLM_MTP_GSM8K_RATES",
    "AcceptanceConfig",
    "AcceptanceModel",
    "AcceptancePredictorConfig",
    "IIDAcceptance",
    "IIDAcceptanceConfig",
    "MarkovAcceptance",
    "MarkovAcceptanceConfig",
    "PositionAcceptance",
    "PositionAcceptanceConfig",
    "VersionedAcceptance",
    "VersionedAcceptanceConfig",
    "alpha_from_tau",
    "conditional_from_cumulative",
    "expected_tokens_iid",
    "make_acceptance",
    "predict_acceptance",
    "rejection_sample",
]

#: Longest draft any model supports (positions of the per-round uniform vector).
K_MAX_LIMIT = 64

# =============================================================================================
# Published numbers
# =============================================================================================

#: Spec-Bench task categories (Xia et al., Findings of ACL 2024, Table 1 / Leaderboard.md).
SPEC_BENCH_TASKS = (
    "multiturn_conversation",
    "translation",
    "summarization",
    "qa",
    "math_reasoning",
    "rag",
)

#: Draft length of Spec-Bench's SpS runs: HF assisted generation (transformers 4.37.1, pinned by
#: Spec-Bench) starts at ``num_assistant_tokens = 5`` under the "heuristic" schedule (+2 after a
#: fully accepted round, −1 otherwise), so 5 is the nominal, not a constant, draft length.
SPEC_BENCH_SPS_DRAFT_LEN = 5

# Spec-Bench leaderboard, SpS row (Vicuna-7B-v1.3 target, vicuna-68m draft, RTX 3090, greedy,
# batch 1; ../shared/data/spec_bench/spec_bench_leaderboard.csv, Apache-2.0): per-task speedups,
# the overall speedup and the overall mean accepted tokens per step τ (accepted + 1: Spec-Bench
# counts n_matches + 1 tokens per target forward, model/sps/decoding.py).
_SPS_SPEEDUP = {
    "multiturn_conversation": 1.94,
    "translation": 1.37,
    "summarization": 1.96,
    "qa": 1.86,
    "math_reasoning": 1.81,
    "rag": 1.83,
}
_SPS_SPEEDUP_OVERALL = 1.79
_SPS_TAU_OVERALL = 2.28

#: Mean tokens per round τ per Spec-Bench task for the small-draft SpS method. The leaderboard
#: gives τ overall only; per task it is scaled by the task's speedup, τ_t = τ · s_t / s (speedup
#: = τ / (c·γ + 1), Leviathan et al. 2023 Theorem 3.8, with the same per-round cost c·γ + 1 for
#: every task — an assumption of this model, not a measurement).
SPEC_BENCH_TAU: dict[str, float] = {
    "overall": _SPS_TAU_OVERALL,
    **{t: _SPS_TAU_OVERALL * s / _SPS_SPEEDUP_OVERALL for t, s in _SPS_SPEEDUP.items()},
}

#: Per-position acceptance rates of an 8-token MTP drafter on GSM8K at temperature 0 (a vLLM
#: measurement quoted in issue 11). Read as *cumulative* rates — the share of rounds whose token
#: ``i`` was accepted, i.e. P(tokens 1..i all accepted), as vLLM counts an accepted position only
#: after an accepted prefix — they give the quoted acceptance length 1 + Σ r_i = 4.497 ≈ 4.50;
#: read as conditional rates they would give 2.63. :func:`conditional_from_cumulative` turns
#: them into the ``a_i`` of :class:`PositionAcceptance` (0.762, 0.808, 0.833, 0.827, 0.858,
#: 0.849, 0.880, 0.871).
VLLM_MTP_GSM8K_RATES = (0.762, 0.616, 0.513, 0.424, 0.364, 0.309, 0.272, 0.237)


def expected_tokens_iid(alpha: float, k: int | IntArray) -> float | FloatArray:
    """Expected tokens per round ``E[N] = (1 − α^(k+1)) / (1 − α)`` under i.i.d. acceptance.

    Reference: Leviathan, Kalman, Matias, ICML 2023, Eq. (1); ``N`` counts the accepted draft
    tokens plus the target's own corrected or bonus token.

    Args:
        alpha: Acceptance rate per token, in [0, 1].
        k: Draft length(s), ≥ 0 (an int or an int array).

    Returns:
        ``E[N]`` (``k + 1`` at α = 1), a float or an array shaped like ``k``.
    """
    kk = np.asarray(k, dtype=np.float64)
    value = kk + 1.0 if alpha >= 1.0 else (1.0 - alpha ** (kk + 1.0)) / (1.0 - alpha)
    return float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=np.float64)


def alpha_from_tau(tau: float, k: int) -> float:
    """The i.i.d. rate α whose ``E[N](α, k)`` equals the mean tokens per round ``tau``.

    Solves ``τ = (1 − α^(k+1)) / (1 − α)`` (Leviathan et al. 2023, Eq. 1) by bisection; the
    right side increases in α from 1 (α = 0) to ``k + 1`` (α = 1).

    Raises:
        ValueError: ``k < 1`` or ``tau`` outside ``[1, k + 1]``.
    """
    if k < 1:
        raise ValueError(f"k must be ≥ 1 to invert E[N], got {k}")
    if not 1.0 <= tau <= k + 1:
        raise ValueError(f"tau must be in [1, k + 1] = [1, {k + 1}] for k = {k}, got {tau}")
    lo, hi = 0.0, 1.0
    for _ in range(64):  # 2^-64: exact to double precision
        mid = 0.5 * (lo + hi)
        if float(expected_tokens_iid(mid, k)) < tau:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


#: i.i.d. acceptance rate α per Spec-Bench task (and ``overall``), from :data:`SPEC_BENCH_TAU`
#: at the nominal draft length :data:`SPEC_BENCH_SPS_DRAFT_LEN` (:func:`alpha_from_tau`):
#: overall 0.578, multiturn 0.618, translation 0.431, summarization 0.623, qa 0.597,
#: math_reasoning 0.583, rag 0.589.
SPEC_BENCH_ALPHA: dict[str, float] = {
    task: alpha_from_tau(tau, SPEC_BENCH_SPS_DRAFT_LEN) for task, tau in SPEC_BENCH_TAU.items()
}


def conditional_from_cumulative(rates: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """Conditional acceptance ``a_i = r_i / r_{i−1}`` from cumulative rates ``r_i`` (``r_0 = 1``).

    Raises:
        ValueError: A rate outside [0, 1] or a rate above the one before it.
    """
    out: list[float] = []
    previous = 1.0
    for i, r in enumerate(rates, start=1):
        if not 0.0 <= r <= previous:
            raise ValueError(
                f"cumulative rate {i} must be in [0, rate {i - 1} = {previous}] (rates of "
                f"accepted prefixes cannot grow), got {r}"
            )
        out.append(r / previous if previous > 0 else 0.0)
        previous = r
    return tuple(out)


# =============================================================================================
# Configs
# =============================================================================================

_Prob = Annotated[float, Field(ge=0.0, le=1.0)]
SpecBenchTask = Literal[
    "overall",
    "multiturn_conversation",
    "translation",
    "summarization",
    "qa",
    "math_reasoning",
    "rag",
]


class IIDAcceptanceConfig(StrictConfig):
    """I.i.d. acceptance at rate α per drafted token.

    Attributes:
        kind: ``"iid"``.
        alpha: Acceptance rate per token, in [0, 1]; give this or ``task``.
        task: A Spec-Bench category whose small-draft rate :data:`SPEC_BENCH_ALPHA` is used.
        k_max: Longest draft, 1..64.
    """

    kind: Literal["iid"] = "iid"
    alpha: float | None = Field(None, ge=0.0, le=1.0)
    task: SpecBenchTask | None = None
    k_max: int = Field(8, ge=1, le=K_MAX_LIMIT)

    @model_validator(mode="after")
    def _one_source(self) -> IIDAcceptanceConfig:
        """Exactly one of ``alpha`` and ``task``."""
        if (self.alpha is None) == (self.task is None):
            raise ValueError(
                "give exactly one of alpha (a rate in [0, 1]) or task (a Spec-Bench category: "
                f"{', '.join(SPEC_BENCH_ALPHA)})"
            )
        return self

    @property
    def rate(self) -> float:
        """α, given or looked up from the task."""
        return self.alpha if self.alpha is not None else SPEC_BENCH_ALPHA[str(self.task)]


class PositionAcceptanceConfig(StrictConfig):
    """Position-dependent acceptance: ``a_i`` = P(token i accepted | tokens 1..i−1 accepted).

    Attributes:
        kind: ``"position"``.
        conditional: ``a_1 .. a_kmax`` (conditional rates, each in [0, 1]); give this or
            ``cumulative``. Its length is ``k_max``.
        cumulative: Rates of accepted prefixes ``r_i`` = P(tokens 1..i accepted), non-increasing
            (how vLLM reports per-position acceptance, e.g. :data:`VLLM_MTP_GSM8K_RATES`).
    """

    kind: Literal["position"] = "position"
    conditional: tuple[_Prob, ...] | None = Field(None, min_length=1, max_length=K_MAX_LIMIT)
    cumulative: tuple[_Prob, ...] | None = Field(None, min_length=1, max_length=K_MAX_LIMIT)

    @model_validator(mode="after")
    def _one_curve(self) -> PositionAcceptanceConfig:
        """Exactly one curve; cumulative rates non-increasing."""
        if (self.conditional is None) == (self.cumulative is None):
            raise ValueError(
                "give exactly one of conditional (a_i given an accepted prefix) or cumulative "
                "(rates of accepted prefixes, non-increasing)"
            )
        if self.cumulative is not None:
            conditional_from_cumulative(self.cumulative)  # raises on a rising rate
        return self

    @property
    def rates(self) -> tuple[float, ...]:
        """The conditional rates ``a_i``."""
        if self.conditional is not None:
            return tuple(self.conditional)
        return conditional_from_cumulative(tuple(self.cumulative or ()))


class MarkovAcceptanceConfig(StrictConfig):
    """Easy / hard spans: a two-state Markov chain over token positions.

    Attributes:
        kind: ``"markov"``.
        alpha_easy: Acceptance rate in the easy state, in [0, 1].
        alpha_hard: Acceptance rate in the hard state, in [0, alpha_easy].
        p_easy_to_hard: Probability per token of moving from easy to hard, in [0, 1].
        p_hard_to_easy: Probability per token of moving from hard to easy, in [0, 1].
        initial_state: ``easy``, ``hard`` or ``stationary`` (the chain's stationary law).
        k_max: Longest draft, 1..64.
    """

    kind: Literal["markov"] = "markov"
    alpha_easy: float = Field(..., ge=0.0, le=1.0)
    alpha_hard: float = Field(..., ge=0.0, le=1.0)
    p_easy_to_hard: float = Field(..., ge=0.0, le=1.0)
    p_hard_to_easy: float = Field(..., ge=0.0, le=1.0)
    initial_state: Literal["easy", "hard", "stationary"] = "stationary"
    k_max: int = Field(8, ge=1, le=K_MAX_LIMIT)

    @model_validator(mode="after")
    def _consistent(self) -> MarkovAcceptanceConfig:
        """Hard is not easier than easy; a stationary start needs a chain that moves."""
        if self.alpha_hard > self.alpha_easy:
            raise ValueError(
                f"alpha_hard ({self.alpha_hard}) must not exceed alpha_easy ({self.alpha_easy})"
            )
        if self.initial_state == "stationary" and self.p_easy_to_hard + self.p_hard_to_easy == 0:
            raise ValueError(
                "initial_state 'stationary' needs p_easy_to_hard + p_hard_to_easy > 0 (a chain "
                "that never moves has no unique stationary law); give 'easy' or 'hard'"
            )
        return self


class VersionedAcceptanceConfig(StrictConfig):
    """I.i.d. acceptance whose rate depends on the target's version (a table version → α_v).

    Attributes:
        kind: ``"versioned"``.
        alpha_by_version: α_v per target version name (at least one), each in [0, 1].
        version: The version served at the start; a key of ``alpha_by_version``.
        k_max: Longest draft, 1..64.
    """

    kind: Literal["versioned"] = "versioned"
    alpha_by_version: dict[str, _Prob] = Field(..., min_length=1)
    version: str
    k_max: int = Field(8, ge=1, le=K_MAX_LIMIT)

    @model_validator(mode="after")
    def _known_version(self) -> VersionedAcceptanceConfig:
        """The starting version is in the table."""
        if self.version not in self.alpha_by_version:
            raise ValueError(
                f"version {self.version!r} is not in alpha_by_version (versions: "
                f"{', '.join(self.alpha_by_version)})"
            )
        return self


AcceptanceConfig = Annotated[
    IIDAcceptanceConfig
    | PositionAcceptanceConfig
    | MarkovAcceptanceConfig
    | VersionedAcceptanceConfig,
    Field(discriminator="kind"),
]


class AcceptancePredictorConfig(StrictConfig):
    """The noise of the predicted-acceptance signal (SpecDec++'s acceptance head).

    Attributes:
        noise_logit_std: Standard deviation of the Gaussian noise added to the logit of the
            true acceptance probability, ≥ 0 (0: an oracle head).
    """

    noise_logit_std: float = Field(0.0, ge=0.0, le=20.0)


# =============================================================================================
# Models
# =============================================================================================


class AcceptanceModel(Protocol):
    """What the speculative round needs from an acceptance model."""

    @property
    def k_max(self) -> int:
        """Longest draft the model covers."""
        ...

    def draw(self, rng: np.random.Generator) -> FloatArray:
        """The round's uniforms, shape [2, k_max + 1], whatever k the policy picks."""
        ...

    def accept_probs(self, draws: FloatArray) -> FloatArray:
        """Acceptance probability of draft positions 1..k_max this round, shape [k_max]."""
        ...

    def accepted(self, draws: FloatArray | np.random.Generator, k: int) -> int:
        """Accepted draft tokens ``N_acc`` in 0..k of a round drafting ``k`` tokens."""
        ...

    def expected_tokens(self, k: int) -> float:
        """``E[N] = E[N_acc] + 1`` for a draft of ``k`` from the current state."""
        ...

    def advance(self, draws: FloatArray, n_accepted: int) -> None:
        """Carry latent state to the next round after ``n_accepted`` + 1 emitted tokens."""
        ...


def _leading_accepts(accept: np.ndarray) -> int:
    """Length of the run of True at the start of a 1-D boolean array."""
    return int(np.logical_and.accumulate(accept).sum()) if accept.size else 0


class _Acceptance:
    """Shared round mechanics: fixed-shape draws, prefix acceptance, E[N] from a_i."""

    _k_max: int

    @property
    def k_max(self) -> int:
        """Longest draft the model covers."""
        return self._k_max

    def draw(self, rng: np.random.Generator) -> FloatArray:
        """The round's uniforms ``[2, k_max + 1]`` (row 0: acceptance, row 1: latent moves)."""
        return rng.random((2, self._k_max + 1))

    def accept_probs(self, draws: FloatArray) -> FloatArray:
        """Acceptance probability of positions 1..k_max this round, shape [k_max]."""
        raise NotImplementedError

    def _conditional(self) -> FloatArray:
        """``a_i`` given an accepted prefix, from the current state, shape [k_max]."""
        raise NotImplementedError

    def _check_k(self, k: int) -> None:
        if not 0 <= k <= self._k_max:
            raise ValueError(f"k must be in 0..k_max = 0..{self._k_max}, got {k}")

    def accepted(self, draws: FloatArray | np.random.Generator, k: int) -> int:
        """Accepted draft tokens ``N_acc ∈ 0..k``: the run of ``u_i < a_i`` from position 1.

        Args:
            draws: The round's uniforms from :meth:`draw` (shape [2, k_max + 1]), or a generator
                to draw them from.
            k: Draft length, 0..k_max.
        """
        self._check_k(k)
        u = self.draw(draws) if isinstance(draws, np.random.Generator) else draws
        return _leading_accepts(u[0, :k] < self.accept_probs(u)[:k])

    def expected_tokens(self, k: int) -> float:
        """``E[N] = 1 + Σ_{j≤k} Π_{i≤j} a_i`` (accepted tokens plus the bonus/corrected one)."""
        self._check_k(k)
        return 1.0 + float(np.cumprod(self._conditional()[:k]).sum())

    def advance(self, draws: FloatArray, n_accepted: int) -> None:
        """No latent state: nothing to carry."""


class IIDAcceptance(_Acceptance):
    """I.i.d. acceptance at rate α (Leviathan et al. 2023, §3.1).

    Args:
        alpha: Acceptance rate per token, in [0, 1].
        k_max: Longest draft, 1..64.
    """

    def __init__(self, alpha: float, k_max: int) -> None:
        cfg = IIDAcceptanceConfig(alpha=alpha, k_max=k_max)  # the same checks as from YAML
        self.alpha = float(alpha)
        self._k_max = cfg.k_max
        self._a = np.full(self._k_max, self.alpha)

    def accept_probs(self, draws: FloatArray) -> FloatArray:
        """α at every position, shape [k_max]."""
        return self._a

    def set_rate(self, alpha: float) -> None:
        """Accept at rate ``alpha`` from now on (e.g. a re-downloaded draft matched to its target).

        Raises:
            ValueError: ``alpha`` outside [0, 1].
        """
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self._a = np.full(self._k_max, self.alpha)

    def _conditional(self) -> FloatArray:
        return self._a

    def expected_tokens(self, k: int) -> float:
        """Closed form ``(1 − α^(k+1)) / (1 − α)`` (Leviathan et al. 2023, Eq. 1)."""
        self._check_k(k)
        return float(expected_tokens_iid(self.alpha, k))


class PositionAcceptance(_Acceptance):
    """Conditional acceptance ``a_i`` per draft position, the same every round.

    Args:
        conditional: ``a_1 .. a_kmax``, each in [0, 1]; ``k_max`` is their number.
    """

    def __init__(self, conditional: tuple[float, ...] | list[float]) -> None:
        cfg = PositionAcceptanceConfig(conditional=tuple(conditional))
        self._a = np.asarray(cfg.rates, dtype=np.float64)
        self._k_max = int(self._a.size)

    def accept_probs(self, draws: FloatArray) -> FloatArray:
        """``a_i``, shape [k_max]."""
        return self._a

    def _conditional(self) -> FloatArray:
        return self._a


_EASY, _HARD = 0, 1


class MarkovAcceptance(_Acceptance):
    """Easy / hard spans: the acceptance rate follows a two-state Markov chain over positions.

    The chain moves once per token position, driven by row 1 of the round's draws; position
    ``i`` of the round has state ``s_i`` (``s_1`` one move after the carried state ``s_0``) and
    is accepted iff ``u[0, i−1] < α(s_i)``. After the round, :meth:`advance` carries the state
    of the last emitted token (position ``N_acc + 1``) to the next round.

    Args:
        config: The chain's rates and switching probabilities.
    """

    def __init__(self, config: MarkovAcceptanceConfig) -> None:
        self.config = config
        self._k_max = config.k_max
        self._alpha = np.array([config.alpha_easy, config.alpha_hard])
        p, q = config.p_easy_to_hard, config.p_hard_to_easy
        # [2, 2] row-stochastic: P[s, s'] = P(next = s' | now = s)
        self._P = np.array([[1.0 - p, p], [q, 1.0 - q]])
        self.reset(config.initial_state)

    @property
    def stationary(self) -> FloatArray:
        """Stationary law ``π = (q, p) / (p + q)`` over (easy, hard)."""
        p, q = self.config.p_easy_to_hard, self.config.p_hard_to_easy
        return np.array([q, p]) / (p + q)

    def reset(self, state: Literal["easy", "hard", "stationary"]) -> None:
        """Start a new request in ``state``."""
        if state == "stationary":
            self._belief = self.stationary
        else:
            self._belief = np.eye(2)[_EASY if state == "easy" else _HARD]

    @property
    def belief(self) -> FloatArray:
        """Law of the carried state ``s_0`` over (easy, hard), shape [2]."""
        return self._belief.copy()

    def path(self, draws: FloatArray) -> IntArray:
        """Latent states ``s_1 .. s_{k_max+1}`` of the round, shape [k_max + 1] (0 easy, 1 hard).

        ``s_{i+1}`` is hard iff ``u[1, i] < P(hard | s_i)``; ``s_1`` uses the law ``b·P`` of the
        carried state ``b``, which is a row of ``P`` when the state is known.
        """
        u = draws[1]
        states = np.empty(self._k_max + 1, dtype=np.int64)
        s = int(u[0] < float(self._belief @ self._P[:, _HARD]))
        states[0] = s
        p_hard = self._P[:, _HARD]
        for i in range(1, self._k_max + 1):
            s = int(u[i] < p_hard[s])
            states[i] = s
        return states

    def accept_probs(self, draws: FloatArray) -> FloatArray:
        """α along the realized easy/hard path, shape [k_max]."""
        return self._alpha[self.path(draws)[: self._k_max]]

    def _conditional(self) -> FloatArray:
        """P(token i accepted | 1..i−1 accepted) by the forward recursion on the carried law."""
        v = self._belief.copy()
        out = np.empty(self._k_max)
        for i in range(self._k_max):
            v = (v @ self._P) * self._alpha  # joint P(s_i, tokens 1..i accepted) up to scale
            total = v.sum()
            out[i] = total
            v = v / total if total > 0 else v
        return out

    def advance(self, draws: FloatArray, n_accepted: int) -> None:
        """Carry the state of the last emitted token (position ``n_accepted + 1``)."""
        self._check_k(n_accepted)
        self._belief = np.eye(2)[int(self.path(draws)[n_accepted])]


class VersionedAcceptance(IIDAcceptance):
    """I.i.d. acceptance at the rate α_v of the target version being served.

    A tightly coupled draft is re-trained with each target (the caller charges its download and
    uses that draft's table); a frozen shared-backbone draft keeps working at a possibly lower
    α_v (FlexSpec, arXiv 2601.00644). :meth:`set_version` switches the target.

    Args:
        config: The version table, the starting version and ``k_max``.
    """

    def __init__(self, config: VersionedAcceptanceConfig) -> None:
        self.config = config
        super().__init__(config.alpha_by_version[config.version], config.k_max)
        self.version = config.version

    def set_version(self, version: str) -> None:
        """Serve ``version`` from now on.

        Raises:
            ValueError: ``version`` is not in the table.
        """
        table = self.config.alpha_by_version
        if version not in table:
            raise ValueError(f"version {version!r} is not in the table ({', '.join(table)})")
        self.version = version
        self.set_rate(float(table[version]))


def make_acceptance(config: AcceptanceConfig) -> AcceptanceModel:
    """The acceptance model a config describes (one per request stream: Markov keeps state)."""
    if isinstance(config, IIDAcceptanceConfig):
        return IIDAcceptance(config.rate, config.k_max)
    if isinstance(config, PositionAcceptanceConfig):
        return PositionAcceptance(config.rates)
    if isinstance(config, MarkovAcceptanceConfig):
        return MarkovAcceptance(config)
    return VersionedAcceptance(config)


def predict_acceptance(
    true_probs: FloatArray, noise_logit_std: float, rng: np.random.Generator
) -> FloatArray:
    """A noisy acceptance head: ``sigmoid(logit(p) + σ·z)``, ``z ~ N(0, 1)`` per position.

    Stands for SpecDec++'s acceptance-prediction head (Huang et al., arXiv 2405.19715, §4).
    One normal is drawn per position whatever σ (common random numbers across noise levels);
    σ = 0 returns ``true_probs`` unchanged.

    Args:
        true_probs: Acceptance probabilities, shape [k_max], in [0, 1].
        noise_logit_std: σ ≥ 0 on the logit scale.
        rng: The predictor's random stream.

    Returns:
        Predicted probabilities, shape [k_max], in (0, 1) (or ``true_probs`` at σ = 0).
    """
    p = np.asarray(true_probs, dtype=np.float64)
    z = rng.standard_normal(p.shape)
    if noise_logit_std == 0.0:
        return p.copy()
    q = np.clip(p, 1e-9, 1.0 - 1e-9)
    logit = np.log(q) - np.log1p(-q) + noise_logit_std * z
    return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)


def rejection_sample(
    p_target: FloatArray, q_draft: FloatArray, draft_tokens: IntArray, uniforms: FloatArray
) -> tuple[IntArray, IntArray]:
    """Speculative sampling over an explicit vocabulary, vectorized over leading batch axes.

    Reference: Leviathan, Kalman, Matias, ICML 2023, Algorithm 1 (also Chen et al. 2023). Draft
    token ``x_i`` is accepted iff ``u_i < p_i(x_i) / q_i(x_i)`` (probability ``min(1, p/q)``);
    at the first rejection ``n`` the target emits a token from ``norm(max(0, p_n − q_n))``, and
    after ``k`` acceptances a bonus token from ``p_{k+1}``. The emitted tokens follow ``p``
    exactly, whatever ``q``.

    Args:
        p_target: Target distributions at positions 1..k+1, shape [..., k + 1, V].
        q_draft: Draft distributions at positions 1..k, shape [..., k, V].
        draft_tokens: Tokens the draft sampled from ``q_draft``, shape [..., k], int.
        uniforms: ``u_1..u_k`` for the acceptance tests and ``u_{k+1}`` for the emitted
            token (inverse-CDF sampling), shape [..., k + 1], in [0, 1).

    Returns:
        ``(n_accepted, next_token)``, each int64 of shape [...]: the accepted prefix length and
        the target's corrected (or bonus) token.
    """
    p = np.asarray(p_target, dtype=np.float64)
    q = np.asarray(q_draft, dtype=np.float64)
    tokens = np.asarray(draft_tokens, dtype=np.int64)
    u = np.asarray(uniforms, dtype=np.float64)
    k = tokens.shape[-1]
    # [..., k] target and draft probability of each drafted token
    p_tok = np.take_along_axis(p[..., :k, :], tokens[..., None], axis=-1)[..., 0]
    q_tok = np.take_along_axis(q, tokens[..., None], axis=-1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(q_tok > 0, p_tok / q_tok, np.inf)
    accept = u[..., :k] < ratio
    n = np.logical_and.accumulate(accept, axis=-1).sum(axis=-1).astype(np.int64)
    # Residual at the first rejection; q padded with zeros at k + 1 makes it the bonus p_{k+1}.
    q_pad = np.concatenate([q, np.zeros((*q.shape[:-2], 1, q.shape[-1]))], axis=-2)
    index = n[..., None, None]
    p_n = np.take_along_axis(p, index, axis=-2)[..., 0, :]
    q_n = np.take_along_axis(q_pad, index, axis=-2)[..., 0, :]
    residual = np.maximum(p_n - q_n, 0.0)
    mass = residual.sum(axis=-1, keepdims=True)
    residual = np.where(mass > 0, residual / np.where(mass > 0, mass, 1.0), p_n)
    cdf = np.cumsum(residual, axis=-1)
    token = (u[..., k, None] >= cdf).sum(axis=-1)
    return n, np.minimum(token, p.shape[-1] - 1).astype(np.int64)
