"""Speculative decoding across the radio: the round's configuration, payloads, state and metrics.

One round (issue 11; Leviathan, Kalman, Matias, ICML 2023, Algorithm 1): the device drafts ``k``
tokens with a small model, sends them up the NR uplink, the cloud target verifies the ``k``
tokens in one batched pass (:meth:`~edgetwin.sim.compute.server.LLMServer.verify`), and the
number accepted plus one corrected or bonus token come back on the downlink. The process that
runs the rounds is :class:`~edgetwin.sim.net.spec_journey.SpeculativeJourneys`; this module
holds what it is configured with and what it counts.

Payloads (bits; ``V`` the vocabulary size, ``⌈log2 V⌉`` bits per token id):

* draft message, ``payload: ids`` — ``8·message_overhead_bytes + k·⌈log2 V⌉``;
* draft message, ``payload: ids_probs`` (the draft's top-``m`` sparse distribution per token,
  which lossless rejection sampling needs) —
  ``8·message_overhead_bytes + k·(⌈log2 V⌉ + m·(⌈log2 V⌉ + prob_bits))``;
* reply — ``8·reply_overhead_bytes + ⌈log2 (k_max + 1)⌉ + ⌈log2 V⌉`` (the accepted count and the
  one token the device does not have).

Modes: ``distributed`` (draft on the device, verify in the cloud: a round crosses the radio),
``fused`` (draft and target both in the cloud; tokens stream down as in plain serving, for
comparison) and ``autoregressive`` (the cloud decodes alone and streams every token: ``k = 0``
without round trips — the baseline of a speedup).

Acceptance per round comes from an :mod:`~edgetwin.sim.compute.acceptance` model with one
random stream per device (``specdec.accept.<ue>``) drawn a fixed amount per round, so two draft
policies run on the same seed see the same text difficulty round by round (common random
numbers); the predicted-acceptance noise has its own stream (``specdec.predict.<ue>``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from edgetwin.sim.compute.acceptance import (
    AcceptanceConfig,
    AcceptanceModel,
    AcceptancePredictorConfig,
    IIDAcceptanceConfig,
    MarkovAcceptance,
    MarkovAcceptanceConfig,
    PositionAcceptanceConfig,
    VersionedAcceptance,
    VersionedAcceptanceConfig,
    make_acceptance,
)
from edgetwin.sim.configbase import StrictConfig

__all__ = [
    "DRAFT_FAMILY",
    "ROUND_COLUMNS",
    "DeviceDraftState",
    "DraftCouplingConfig",
    "SpecDecConfig",
    "TargetUpdate",
    "round_summary",
]

#: Decision family of the draft length.
DRAFT_FAMILY = "draft"

SpecMode = Literal["distributed", "fused", "autoregressive"]


class TargetUpdate(StrictConfig):
    """The cloud starts serving another target version at ``at_s``."""

    at_s: float = Field(..., gt=0, le=1e7, description="Simulated time of the update, s.")
    version: str = Field(
        ..., min_length=1, max_length=100, description="A key of acceptance.alpha_by_version."
    )


class DraftCouplingConfig(StrictConfig):
    """How the device's draft follows an evolving target (FlexSpec, arXiv 2601.00644).

    ``frozen``: one shared-backbone draft keeps working with every target version, at the
    version's rate ``acceptance.alpha_by_version[v]``. ``tight``: the draft is re-trained with
    each target; after an update the device downloads the new draft (``download_bytes`` down
    the WAN and the NR downlink) before its next round, which then accepts at ``alpha``.
    """

    kind: Literal["frozen", "tight"] = "frozen"
    download_bytes: float | None = Field(
        None, gt=0, le=1e12, description="tight: size of a draft download, bytes."
    )
    alpha: float | None = Field(
        None, ge=0, le=1, description="tight: acceptance rate of a draft matched to its target."
    )

    @model_validator(mode="after")
    def _tight_needs_its_draft(self) -> DraftCouplingConfig:
        if self.kind == "tight" and (self.download_bytes is None or self.alpha is None):
            raise ValueError(
                "draft_coupling kind 'tight' needs download_bytes (bytes > 0) and alpha (a rate "
                "in [0, 1])"
            )
        return self


class SpecDecConfig(StrictConfig):
    """Speculative decoding of the cloud's requests (scenario section ``speculative``)."""

    mode: SpecMode = Field(
        "distributed",
        description="'distributed': draft on the device, verify in the cloud (rounds cross the "
        "radio); 'fused': draft and target both in the cloud; 'autoregressive': the cloud "
        "decodes alone (k = 0, tokens streamed).",
    )
    draft_model: str | None = Field(
        None,
        min_length=1,
        description="Draft model id (null: nodes.device.model), timed on nodes.device's "
        "hardware ('distributed') or on the cloud's ('fused', roofline).",
    )
    vocab_size: int = Field(
        49152, ge=2, le=10_000_000, description="Vocabulary size V (token ids take ⌈log2 V⌉ bits)."
    )
    payload: Literal["ids", "ids_probs"] = Field(
        "ids",
        description="Uplink draft payload: 'ids' (token ids) or 'ids_probs' (ids + top-m sparse "
        "draft probabilities, for lossless rejection sampling).",
    )
    top_m: int = Field(8, ge=1, le=100_000, description="Entries of the sparse probabilities.")
    prob_bits: int = Field(16, ge=1, le=64, description="Bits per sparse probability.")
    message_overhead_bytes: int = Field(
        60, ge=0, le=10**6, description="Framing per draft message (headers, TLS record), bytes."
    )
    reply_overhead_bytes: int = Field(
        60, ge=0, le=10**6, description="Framing per verify reply, bytes."
    )
    acceptance: AcceptanceConfig = Field(
        default_factory=lambda: IIDAcceptanceConfig(task="overall"),
        description="Acceptance model: {kind: iid | position | markov | versioned, ...}; its "
        "k_max is the longest draft.",
    )
    predictor: AcceptancePredictorConfig = Field(
        default_factory=AcceptancePredictorConfig,
        description="Noise of the predicted acceptance (SpecDec++'s acceptance head).",
    )
    alpha_prior: float = Field(
        0.6, ge=0, le=1, description="Acceptance estimate of a device before its first round."
    )
    alpha_smoothing: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Weight of the latest round in the device's acceptance estimate (EWMA).",
    )
    energy_budget_j_per_token: float | None = Field(
        None, gt=0, le=1e6, description="Device energy allowed per delivered token, J (null: none)."
    )
    target_updates: list[TargetUpdate] = Field(
        default_factory=list,
        max_length=1000,
        description="Times the cloud's target changes version (needs acceptance kind "
        "'versioned'), in increasing at_s.",
    )
    draft_coupling: DraftCouplingConfig = Field(
        default_factory=DraftCouplingConfig,
        description="How the draft follows target updates: frozen (keeps working at α_v) or "
        "tight (re-downloaded, then at its own α).",
    )

    @model_validator(mode="after")
    def _updates_fit(self) -> SpecDecConfig:
        if not self.target_updates:
            return self
        acc = self.acceptance
        if not isinstance(acc, VersionedAcceptanceConfig):
            raise ValueError(
                f"target_updates need acceptance kind 'versioned' (a rate per target version), "
                f"got kind {acc.kind!r}"
            )
        times = [u.at_s for u in self.target_updates]
        if any(b <= a for a, b in itertools.pairwise(times)):
            raise ValueError(f"target_updates must be in increasing at_s, got {times}")
        unknown = [u.version for u in self.target_updates if u.version not in acc.alpha_by_version]
        if unknown:
            raise ValueError(
                f"target_updates version {unknown[0]!r} is not in acceptance.alpha_by_version "
                f"(allowed: {', '.join(acc.alpha_by_version)})"
            )
        return self

    def target_version_at(self, t_s: float) -> str | None:
        """The target version the cloud serves at ``t_s`` (None: acceptance not versioned)."""
        acc = self.acceptance
        if not isinstance(acc, VersionedAcceptanceConfig):
            return None
        version = acc.version
        for update in self.target_updates:
            if update.at_s > t_s:
                break
            version = update.version
        return version

    @model_validator(mode="after")
    def _probs_fit(self) -> SpecDecConfig:
        if self.payload == "ids_probs" and self.top_m > self.vocab_size:
            raise ValueError(
                f"top_m ({self.top_m}) must not exceed vocab_size ({self.vocab_size}); "
                f"allowed: 1..{self.vocab_size}"
            )
        return self

    @property
    def k_max(self) -> int:
        """Longest draft: the acceptance model's ``k_max``."""
        acc = self.acceptance
        return len(acc.rates) if isinstance(acc, PositionAcceptanceConfig) else acc.k_max

    @property
    def token_id_bits(self) -> int:
        """Bits of one token id: ``⌈log2 V⌉``."""
        return max(1, math.ceil(math.log2(self.vocab_size)))

    @property
    def bits_per_draft_token(self) -> int:
        """Uplink bits per drafted token (see the module docstring)."""
        b = self.token_id_bits
        return b if self.payload == "ids" else b + self.top_m * (b + self.prob_bits)

    def draft_bits(self, k: int) -> int:
        """Bits of a draft message of ``k`` tokens (``k = 0``: the overhead alone)."""
        return max(1, 8 * self.message_overhead_bytes + k * self.bits_per_draft_token)

    @property
    def reply_bits(self) -> int:
        """Bits of a verify reply: accepted count + one token id + framing."""
        return (
            8 * self.reply_overhead_bytes
            + math.ceil(math.log2(self.k_max + 1))
            + (self.token_id_bits)
        )


#: Columns of the ``spec_rounds`` table, one row per round (times in s, energy in J).
ROUND_COLUMNS: tuple[str, ...] = (
    "id",
    "ue",
    "round",
    "mode",
    "k",
    "accepted",
    "tokens",
    "start_s",
    "end_s",
    "t_draft_s",
    "t_uplink_s",
    "t_network_up_s",
    "t_verify_wait_s",
    "t_verify_s",
    "t_network_down_s",
    "t_downlink_s",
    "draft_energy_j",
    "uplink_bits",
    "kv_tokens",
    "kv_blocks",
)


@dataclass(slots=True)
class DeviceDraftState:
    """A drafting device's acceptance process and running estimates.

    Attributes:
        model: The acceptance model (Markov state is per device, reset per request).
        rng: The device's acceptance stream (fixed draws per round: common random numbers).
        predict_rng: The predicted-acceptance noise stream.
        alpha_est: EWMA of the per-token acceptance of its rounds.
        energy_used_j: Draft energy spent so far, J.
    """

    model: AcceptanceModel
    rng: np.random.Generator
    predict_rng: np.random.Generator
    alpha_est: float
    energy_used_j: float = 0.0
    rounds: int = field(default=0)
    version: str | None = None
    """Target version the device's draft is matched to (tight) or was last told of (frozen)."""
    downloads: int = 0
    """Drafts downloaded after target updates (tight coupling)."""
    download_s: float = 0.0
    """Time spent downloading drafts, s."""

    @classmethod
    def create(
        cls,
        config: SpecDecConfig,
        rng: np.random.Generator,
        predict_rng: np.random.Generator,
    ) -> DeviceDraftState:
        """A fresh state for one device."""
        state = cls(make_acceptance(config.acceptance), rng, predict_rng, config.alpha_prior)
        state.version = config.target_version_at(0.0)
        coupling = config.draft_coupling
        if coupling.kind == "tight" and coupling.alpha is not None:
            state._model_rate(coupling.alpha)  # matched to the target it was shipped with
        return state

    def _model_rate(self, alpha: float) -> None:
        model = self.model
        assert isinstance(model, VersionedAcceptance)  # checked by SpecDecConfig
        model.set_rate(alpha)

    def follow_target(self, config: SpecDecConfig, version: str | None) -> bool:
        """Catch up with the target ``version`` the cloud serves now.

        A frozen draft just accepts at the new version's rate; a tight one must be downloaded
        first: True is returned and the caller calls :meth:`downloaded` once it has arrived.
        """
        if version is None or version == self.version:
            return False
        if config.draft_coupling.kind == "tight":
            return True
        model = self.model
        assert isinstance(model, VersionedAcceptance)
        model.set_version(version)
        self.version = version
        return False

    def downloaded(self, config: SpecDecConfig, version: str, seconds: float) -> None:
        """The draft matched to ``version`` arrived after ``seconds``: it accepts at its α."""
        alpha = config.draft_coupling.alpha
        assert alpha is not None  # a tight coupling has one
        self._model_rate(alpha)
        self.version = version
        self.downloads += 1
        self.download_s += seconds

    def new_request(self, config: SpecDecConfig) -> None:
        """Restart the latent text state (Markov spans) for a new request."""
        acc = config.acceptance
        if isinstance(self.model, MarkovAcceptance) and isinstance(acc, MarkovAcceptanceConfig):
            self.model.reset(acc.initial_state)

    def observe(self, k: int, accepted: int, smoothing: float) -> None:
        """Update the acceptance estimate after a round drafting ``k`` (``k = 0``: no news).

        The per-token rate of a round is estimated by ``accepted / k`` when the draft was cut
        by a rejection and counted as all accepted otherwise (a simple, biased-high estimator
        for a truncated geometric; the policies only need a trend).
        """
        self.rounds += 1
        if k > 0:
            rate = accepted / k
            self.alpha_est = (1.0 - smoothing) * self.alpha_est + smoothing * rate


def round_summary(rounds: pd.DataFrame) -> dict[str, float]:
    """Headline metrics of the rounds of a run.

    * ``spec_tokens_per_round_mean`` — ``E[N]``, tokens delivered per round;
    * ``spec_discard_rate`` — discarded drafted tokens per delivered token, and
      ``spec_verification_rate`` — verify passes per delivered token (the two axes of
      SpecDec++'s Pareto plot, Huang, Guo, Wang, arXiv 2405.19715, §5);
    * ``spec_tokens_per_s_per_device`` — tokens per second of round time, mean over devices;
    * ``spec_energy_per_token_j`` — device draft energy per delivered token, J.
    """
    if not len(rounds):
        return {"spec_rounds": 0.0}
    rounds = rounds.assign(dur=rounds["end_s"] - rounds["start_s"])
    tokens = float(rounds["tokens"].sum())
    drafted = float(rounds["k"].sum())
    accepted = float(rounds["accepted"].sum())
    per_ue = rounds.groupby("ue").agg(tokens=("tokens", "sum"), busy=("dur", "sum"))
    rate = per_ue["tokens"] / per_ue["busy"].where(per_ue["busy"] > 0)
    return {
        "spec_rounds": float(len(rounds)),
        "spec_k_mean": drafted / len(rounds),
        "spec_tokens_per_round_mean": tokens / len(rounds),
        "spec_drafted_tokens": drafted,
        "spec_accepted_tokens": accepted,
        "spec_discarded_tokens": drafted - accepted,
        "spec_discard_rate": (drafted - accepted) / tokens,
        "spec_verification_rate": len(rounds) / tokens,
        "spec_tokens_per_s_per_device": float(rate.mean()),
        "spec_energy_per_token_j": float(rounds["draft_energy_j"].sum()) / tokens,
        "spec_round_s_mean": float(rounds["dur"].mean()),
        "spec_uplink_s_mean": float(rounds["t_uplink_s"].mean()),
        "spec_verify_wait_s_mean": float(rounds["t_verify_wait_s"].mean()),
    }
