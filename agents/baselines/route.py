"""Adapter routing policies (decision family ``"route"``): which adapter serves a request.

The fast timescale of the POLAR setting (Li & Li, arXiv 2604.16583): each request brings a
context ``x ∈ R^d``; serving it with adapter ``a`` yields a utility whose mean ``θ_aᵀ x`` is
unknown, and a non-resident adapter must first be paged in.

Observation (a dict; a policy only reads it):

* ``x`` float64 [d]: the request's context (unit norm).
* ``resident`` bool [N]: adapters in fast memory now.
* ``paging_cost_s`` float64 [N]: seconds to page each adapter in (0 when resident).
* ``allowed`` bool [N] (optional): adapters this request may use (default: all).
* ``task`` int (``route/fixed`` only): the request's own adapter.
* ``true_utility`` float64 [N] (optional, ``route/oracle`` without ``theta``): ``θ_aᵀ x``.

Action: the adapter's index (int).

Feedback: learning policies expose ``observe_reward(arm, x, reward)``; the caller (the server
when the request completes, the AdapterCache env, ``simulate_adapter_serving``) calls it once per
served request with the *utility* observed (``θ_armᵀ x + ε``), not the net reward: the paging
cost is known at decision time and subtracted there, so it is not learned. Non-learning
policies have the method too (a no-op), so a caller need not test for it.

Batched API (the same statistics, for loops that route many requests at once):
``act_batch(x [B, d], resident [N], paging_cost_s [N], allowed=None) -> int64 [B]`` routes a
block with the statistics frozen at its start (delayed feedback, as a batched bandit), and
``observe_rewards(arms [B], x [B, d], rewards [B])`` folds the block's feedback in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["LATENCY_AWARE", "LinearUCB", "OwnAdapter", "TrueUtilityOracle", "bind_router"]

#: Route policies that weigh paging time by λ: a scenario gives them its own λ.
LATENCY_AWARE: tuple[str, ...] = ("route/cache_aware", "route/oracle")

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _masked_argmax(scores: FloatArray, allowed: Any) -> int:
    """Index of the largest score among ``allowed`` (all if None); ties to the lower index."""
    if allowed is not None:
        scores = np.where(np.asarray(allowed, dtype=bool), scores, -np.inf)
    return int(np.argmax(scores))


class OwnAdapter:
    """Each request to its own task's adapter (``route/fixed``). Reads ``task``."""

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless."""

    def act(self, obs: Mapping[str, Any]) -> int:
        """The request's own adapter."""
        return int(obs["task"])

    def observe_reward(self, arm: int, x: FloatArray, reward: float) -> None:
        """Nothing to learn."""


class TrueUtilityOracle:
    """The adapter of highest true net value ``θ_aᵀ x − λ · paging_cost_s`` (``route/oracle``).

    Args:
        theta: True parameters, [N, d]; if None, reads ``true_utility`` from the observation.
        latency_weight_per_s: λ, utility per second of paging.
    """

    def __init__(
        self, theta: Sequence[Sequence[float]] | None = None, latency_weight_per_s: float = 0.0
    ) -> None:
        if latency_weight_per_s < 0:
            raise ValueError(f"latency_weight_per_s must be >= 0, got {latency_weight_per_s}")
        self.theta = None if theta is None else np.asarray(theta, dtype=np.float64)
        self.latency_weight_per_s = latency_weight_per_s

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless."""

    def act(self, obs: Mapping[str, Any]) -> int:
        """Argmax of the true net value over the allowed adapters."""
        if self.theta is not None:
            u = self.theta @ np.asarray(obs["x"], dtype=np.float64)
        else:
            u = np.asarray(obs["true_utility"], dtype=np.float64)
        if self.latency_weight_per_s:
            u = u - self.latency_weight_per_s * np.asarray(obs["paging_cost_s"])
        return _masked_argmax(u, obs.get("allowed"))

    def observe_reward(self, arm: int, x: FloatArray, reward: float) -> None:
        """Nothing to learn."""


class LinearUCB:
    r"""Disjoint LinUCB, optionally cache-aware (``route/linucb``, ``cache_aware``, ``greedy``).

    Reference: Li, Chu, Langford, Schapire, WWW 2010, Algorithm 1 (disjoint linear models).
    Per arm ``A_a = ridge · I + Σ x xᵀ`` and ``b_a = Σ r x``; ``θ̂_a = A_a⁻¹ b_a`` and the score

    .. math::  p_a = θ̂_aᵀ x + α √(xᵀ A_a⁻¹ x) − λ · \mathrm{paging\_cost\_s}_a .

    ``λ = 0`` is Li et al.'s LinUCB; ``λ > 0`` charges a non-resident adapter its paging time
    (POLAR's cache-aware router, arXiv 2604.16583); ``α = 0`` is the greedy (ridge-regression)
    router. ``A_a⁻¹`` is kept and updated with Sherman–Morrison rank-1 updates
    (``A⁻¹ − A⁻¹x xᵀA⁻¹ / (1 + xᵀA⁻¹x)``), never re-inverted per request; a block of feedback
    (:meth:`observe_rewards`) applies one rank-k (Woodbury) update per arm.

    The number of arms N and the dimension d are taken from the first observation.

    Args:
        alpha: Exploration weight α (≥ 0).
        ridge: Ridge λ_I of ``A_a = ridge · I`` at start (> 0).
        latency_weight_per_s: λ, utility per second of paging (≥ 0; 0 ignores residency).
    """

    def __init__(
        self, alpha: float = 1.0, ridge: float = 1.0, latency_weight_per_s: float = 0.0
    ) -> None:
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if ridge <= 0:
            raise ValueError(f"ridge must be > 0, got {ridge}")
        if latency_weight_per_s < 0:
            raise ValueError(f"latency_weight_per_s must be >= 0, got {latency_weight_per_s}")
        self.alpha, self.ridge = float(alpha), float(ridge)
        self.latency_weight_per_s = float(latency_weight_per_s)
        self.reset()

    # --- state ---------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None) -> None:
        """Forget every arm's statistics (reallocated on the next observation)."""
        self.A_inv: FloatArray | None = None  # [N, d, d]
        self.b: FloatArray | None = None  # [N, d]
        self.theta_hat: FloatArray | None = None  # [N, d]
        self.n_pulls: IntArray | None = None  # [N]

    def allocate(self, n_arms: int, dim: int) -> None:
        """Fresh statistics for ``n_arms`` arms in ``dim`` dimensions."""
        # one buffer [N·d + N, d]: the rows of every A_a⁻¹, then every θ̂_a — so act() gets
        # A_a⁻¹x and θ̂_aᵀx for all arms from a single matrix-vector product
        self._stacked = np.zeros((n_arms * dim + n_arms, dim))
        self.A_inv = self._stacked[: n_arms * dim].reshape(n_arms, dim, dim)
        self.A_inv[:] = np.eye(dim) / self.ridge
        self.theta_hat = self._stacked[n_arms * dim :]
        self.b = np.zeros((n_arms, dim))
        self.n_pulls = np.zeros(n_arms, dtype=np.int64)

    def _ready(self, n_arms: int, dim: int) -> tuple[FloatArray, FloatArray]:
        if self.A_inv is None or self.A_inv.shape[:2] != (n_arms, dim):
            self.allocate(n_arms, dim)
        assert self.A_inv is not None
        assert self.theta_hat is not None
        return self.A_inv, self.theta_hat

    # --- decisions -----------------------------------------------------------------------------
    def ucb(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(θ̂_aᵀ x, √(xᵀ A_a⁻¹ x))`` for every arm, each [N] (allocated statistics needed)."""
        assert self.theta_hat is not None
        n, d = self.theta_hat.shape
        y = self._stacked @ x
        width2 = y[: n * d].reshape(n, d) @ x
        return y[n * d :], np.sqrt(np.maximum(width2, 0.0))

    def act(self, obs: Mapping[str, Any]) -> int:
        """The arm of largest (cache-aware) upper confidence bound."""
        x = obs["x"]
        cost = obs["paging_cost_s"]
        _, theta_hat = self._ready(len(cost), len(x))
        if self.alpha:
            mean, width = self.ucb(x)
            score = mean + self.alpha * width
        else:
            score = theta_hat @ x
        if self.latency_weight_per_s:
            score -= self.latency_weight_per_s * cost
        allowed = obs.get("allowed")
        return _masked_argmax(score, allowed) if allowed is not None else int(np.argmax(score))

    def act_batch(
        self,
        x: FloatArray,
        resident: Any,
        paging_cost_s: FloatArray,
        allowed: Any = None,
    ) -> IntArray:
        """Route a block with the statistics as they are (no feedback inside the block).

        Args:
            x: Contexts, [B, d].
            resident: Residency, bool [N] (kept for the observation's shape; the cost says it).
            paging_cost_s: Paging seconds per adapter, [N] (or [B, N]).
            allowed: Allowed adapters, bool [N] or [B, N], or None.

        Returns:
            Chosen adapter per request, int64 [B].
        """
        x = np.asarray(x, dtype=np.float64)
        cost = np.asarray(paging_cost_s, dtype=np.float64)
        A_inv, theta_hat = self._ready(cost.shape[-1], x.shape[1])
        d = theta_hat.shape[1]
        score = x @ theta_hat.T  # [B, N]
        if self.alpha:
            # xᵀ A_a⁻¹ x for every (request, arm) in one GEMM over the upper triangle of the
            # symmetric A_a⁻¹ (off-diagonal terms twice): [N, d(d+1)/2] @ [d(d+1)/2, B]
            iu, ju = np.triu_indices(d)
            xt = x.T
            tri = xt[iu] * xt[ju]
            width2 = ((A_inv[:, iu, ju] * np.where(iu == ju, 1.0, 2.0)) @ tri).T
            score += self.alpha * np.sqrt(np.maximum(width2, 0.0))
        if self.latency_weight_per_s:
            score -= self.latency_weight_per_s * cost
        if allowed is not None:
            score = np.where(np.asarray(allowed, dtype=bool), score, -np.inf)
        return np.argmax(score, axis=1).astype(np.int64)

    # --- learning ------------------------------------------------------------------------------
    def observe_reward(self, arm: int, x: FloatArray, reward: float) -> None:
        """Fold one observed utility in: Sherman–Morrison on ``A_arm⁻¹``, then ``θ̂_arm``."""
        if self.A_inv is None:
            raise RuntimeError("observe_reward before any act: the arm count is not known yet")
        assert self.b is not None
        assert self.theta_hat is not None
        assert self.n_pulls is not None
        P = self.A_inv[arm]
        Px = P @ x
        P -= np.outer(Px, Px / (1.0 + x @ Px))
        self.b[arm] += reward * x
        self.theta_hat[arm] = P @ self.b[arm]
        self.n_pulls[arm] += 1

    def observe_rewards(self, arms: Any, x: FloatArray, rewards: FloatArray) -> None:
        """Fold a block of feedback in: one rank-k update per arm, all arms in one batched solve.

        With ``G_a = Σ x xᵀ`` over the block's rows of arm a, ``(A_a + G_a)⁻¹ = (I + A_a⁻¹ G_a)⁻¹
        A_a⁻¹`` (the push-through form of Woodbury's identity): a d × d solve per arm per
        block — never a re-inversion of ``A_a``, never a per-request inverse.

        Args:
            arms: Arm of each request, int [B].
            x: Contexts, [B, d].
            rewards: Observed utilities, [B].
        """
        if self.A_inv is None:
            raise RuntimeError("observe_rewards before any act: the arm count is not known yet")
        assert self.b is not None
        assert self.theta_hat is not None
        assert self.n_pulls is not None
        arms = np.asarray(arms, dtype=np.int64)
        x = np.asarray(x, dtype=np.float64)
        rewards = np.asarray(rewards, dtype=np.float64)
        if arms.shape[0] == 0:
            return
        d = x.shape[1]
        order = np.argsort(arms, kind="stable")
        uniq, starts, counts = np.unique(arms[order], return_index=True, return_counts=True)
        xs = x[order]
        # [n_uniq, d, d]: Σ x xᵀ per arm; [n_uniq, d]: Σ r x per arm
        gram = np.add.reduceat(xs[:, :, None] * xs[:, None, :], starts, axis=0)
        rx = np.add.reduceat(rewards[order][:, None] * xs, starts, axis=0)
        P = self.A_inv[uniq]
        P_new = np.linalg.solve(np.eye(d) + P @ gram, P)
        self.A_inv[uniq] = 0.5 * (P_new + P_new.transpose(0, 2, 1))
        self.b[uniq] += rx
        self.theta_hat[uniq] = np.einsum("nij,nj->ni", self.A_inv[uniq], self.b[uniq])
        self.n_pulls[uniq] += counts

    def arm_estimates(self, x_ref: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Per arm, ``θ̂_aᵀ x_a`` and ``√(x_aᵀ A_a⁻¹ x_a)`` at a reference context per arm.

        What the cache observation's ``est_utility`` / ``uncertainty`` hold.

        Args:
            x_ref: One context per arm, [N, d].
        """
        x_ref = np.asarray(x_ref, dtype=np.float64)
        A_inv, theta_hat = self._ready(*x_ref.shape)
        mean = np.einsum("nd,nd->n", theta_hat, x_ref)
        width2 = np.einsum("nd,nde,ne->n", x_ref, A_inv, x_ref)
        return mean, np.sqrt(np.maximum(width2, 0.0))


def bind_router(
    route_id: str,
    kwargs: Mapping[str, Any] | None,
    *,
    latency_weight_per_s: float,
    theta: Any = None,
) -> Any:
    """A registered route policy bound to a scenario (the env's and the server's rule).

    ``route/cache_aware`` and ``route/oracle`` get the scenario's λ unless ``kwargs`` give
    one; ``route/oracle`` is given the scenario's hidden θ (when ``theta`` is not None).

    Args:
        route_id: A registered ``route/...`` id.
        kwargs: Keyword arguments over the registered defaults.
        latency_weight_per_s: The scenario's λ, utility per second.
        theta: The scenario's adapter parameters, [N, d] (the oracle's knowledge).
    """
    from edgetwin.agents.registry import make_policy

    kw = dict(kwargs or {})
    if route_id in LATENCY_AWARE:
        kw.setdefault("latency_weight_per_s", latency_weight_per_s)
    policy = make_policy(route_id, **kw)
    if theta is not None and isinstance(policy, TrueUtilityOracle):
        policy.theta = np.asarray(theta, dtype=np.float64)
    return policy
