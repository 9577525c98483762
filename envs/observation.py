"""One observation and one action parametrization for PRB/power control, shared by every user.

The Gymnasium env, the PettingZoo env and :class:`~edgetwin.agents.rl.torch_policy.TorchPolicy`
(a trained agent attached inline to a scenario run) all see a cell's decision through
:class:`ObservationBuilder` and act through :func:`prb_action_to_alloc` /
:func:`power_action_to_watts`, so a checkpoint behaves the same in training and in ``edgetwin
run``. Each function reads one cell of the cell observation (``cell``, default 0): the envs
control one cell, and an inline policy applies the same controller to every cell.

Observation (a ``Dict`` of named float32 arrays padded to ``max_ue`` rows; rows ≥ ``n_ue`` are 0):

============== ================ ==================================================================
key            shape              meaning
============== ================ ==================================================================
sinr_db        [max_ue, n_prb]  CQI-reported SINR minus the OLLA offset, dB, clipped to ±50
est_rate_bps   [max_ue]         mean over PRBs of the achievable rate per PRB at equal power, bit/s
avg_rate_bps   [max_ue]         smoothed delivered throughput T̄ (β of the cell config), bit/s
last_rate_bps  [max_ue]         throughput delivered in the last active slot, bit/s
buffer_bits    [max_ue]         bits waiting in the downlink buffer (full buffer: 1e15)
olla_offset_db [max_ue]         outer-loop link-adaptation offset, dB
mcs            [max_ue]         MCS index of the UE's last transmission
harq_feedback  [max_ue]         outcome of the UE's last transmission: +1 ACK, −1 NACK, 0 none
prb_count      [max_ue]         PRBs given to the UE in this slot (0 at the PRB decision)
has_data       [max_ue]         1 if the UE has data (or a HARQ retransmission) this slot
ue_mask        [max_ue]         1 for a real UE, 0 for padding
============== ================ ==================================================================

Actions are in ``[-1, 1]`` (the symmetric range SB3 recommends), one per UE (padding ignored),
and scaled to logits ``l = ACTION_SCALE · a``. Finite values outside ``[-1, 1]`` are clipped to
it; NaN and ±inf raise ``ValueError`` (:func:`check_action`):

* **PRB**: shares ``s = softmax(l)`` over the UEs with data, resolved to a PRB map by Hamilton
  apportionment plus channel-aware assignment (:mod:`edgetwin.envs.quota`). All-zero logits give
  equal shares.
* **Power**: UE ``u`` with ``n_u`` PRBs gets the power *per PRB*
  ``P_max · e^{l_u} / Σ_v n_v e^{l_v}`` — the budget is always spent, and all-zero logits are
  the equal-power baseline (B0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from edgetwin.sim.types import BoolArray, FloatArray, IntArray

from .quota import resolve_quota, resolve_quota_batch
from .reduce import row_sum

#: Logit per unit of action: a ∈ [−1, 1] gives share ratios up to e^10 between two UEs.
ACTION_SCALE = 5.0
#: Bound of the reported SINR in the observation, dB.
SINR_BOUND_DB = 50.0

#: Per-UE vector keys of the observation, in a fixed order (the flattening order of features).
UE_KEYS: tuple[str, ...] = (
    "est_rate_bps",
    "avg_rate_bps",
    "last_rate_bps",
    "buffer_bits",
    "olla_offset_db",
    "mcs",
    "harq_feedback",
    "prb_count",
    "has_data",
    "ue_mask",
)


def observation_space(max_ue: int, n_prb: int) -> spaces.Dict:
    """The ``Dict`` observation space for ``max_ue`` UE rows and ``n_prb`` PRBs."""
    f32 = np.float32
    inf = np.inf
    vec = {
        "est_rate_bps": (0.0, inf),
        "avg_rate_bps": (0.0, inf),
        "last_rate_bps": (0.0, inf),
        "buffer_bits": (0.0, inf),
        "olla_offset_db": (-inf, inf),
        "mcs": (0.0, 31.0),
        "harq_feedback": (-1.0, 1.0),
        "prb_count": (0.0, float(n_prb)),
        "has_data": (0.0, 1.0),
        "ue_mask": (0.0, 1.0),
    }
    d: dict[str, spaces.Space[Any]] = {
        "sinr_db": spaces.Box(-SINR_BOUND_DB, SINR_BOUND_DB, (max_ue, n_prb), f32)
    }
    for key in UE_KEYS:
        lo, hi = vec[key]
        d[key] = spaces.Box(lo, hi, (max_ue,), f32)
    return spaces.Dict(d)


def action_space(max_ue: int, n_heads: int = 1) -> spaces.Box:
    """Action space: ``n_heads × max_ue`` actions in [−1, 1] (PRB, power, or both concatenated)."""
    return spaces.Box(-1.0, 1.0, (n_heads * max_ue,), np.float32)


class ObservationBuilder:
    """Turns a cell decision's observation dict into the padded env observation (fresh arrays).

    Stateful only for the HARQ feedback, which it derives from the change of the cell's running
    ``n_tx``/``n_nack`` counts between the decisions it sees. It must therefore see every
    decision of one family (which the env and an inline policy both do); :meth:`reset` at the
    start of an episode.

    Args:
        max_ue: Rows of the padded observation (≥ the cell's UEs).
        n_prb: PRBs of the carrier.
    """

    def __init__(self, max_ue: int, n_prb: int) -> None:
        self.max_ue = int(max_ue)
        self.n_prb = int(n_prb)
        self.reset()

    def reset(self) -> None:
        """Forget the HARQ history (episode start)."""
        self._prev_tx: FloatArray | None = None
        self._prev_nack: FloatArray | None = None
        self._feedback: FloatArray | None = None

    def __call__(self, cell_obs: dict[str, Any], cell: int = 0) -> dict[str, np.ndarray]:
        """The env observation of ``cell`` in ``cell_obs`` (a ``prb`` or ``power`` decision)."""
        c = cell
        n_ue = cell_obs["ue_mask"].shape[-1]
        if n_ue > self.max_ue:
            raise ValueError(f"the cell has {n_ue} UEs but max_ue is {self.max_ue}")
        M, P = self.max_ue, self.n_prb
        n_tx = cell_obs["n_tx"][c]
        n_nack = cell_obs["n_nack"][c]
        if self._feedback is None or self._prev_tx is None or self._prev_nack is None:
            self._feedback = np.zeros(n_ue)
            self._prev_tx = np.zeros(n_ue)
            self._prev_nack = np.zeros(n_ue)
        served = n_tx > self._prev_tx
        if served.any():
            nacked = n_nack > self._prev_nack
            self._feedback[served] = np.where(nacked[served], -1.0, 1.0)
            self._prev_tx = n_tx.copy()
            self._prev_nack = n_nack.copy()

        sinr = np.zeros((M, P), dtype=np.float32)
        np.clip(cell_obs["sinr_db"][c], -SINR_BOUND_DB, SINR_BOUND_DB, out=sinr[:n_ue])
        obs: dict[str, np.ndarray] = {"sinr_db": sinr}
        rows = {
            "est_rate_bps": cell_obs["rate_bps"][c].mean(axis=1),
            "avg_rate_bps": cell_obs["avg_rate_bps"][c],
            "last_rate_bps": cell_obs["last_rate_bps"][c],
            "buffer_bits": cell_obs["buffer_bits"][c],
            "olla_offset_db": cell_obs["olla_offset_db"][c],
            "mcs": cell_obs["mcs"][c],
            "harq_feedback": self._feedback,
            "prb_count": (
                np.bincount(cell_obs["alloc"][c][cell_obs["alloc"][c] >= 0], minlength=n_ue)
                if "alloc" in cell_obs
                else 0.0
            ),
            "has_data": cell_obs["has_data"][c],
            "ue_mask": cell_obs["ue_mask"][c],
        }
        for key in UE_KEYS:
            v = np.zeros(M, dtype=np.float32)
            v[:n_ue] = rows[key]
            obs[key] = v
        return obs


def _finite_error(x: FloatArray, name: str = "action") -> ValueError:
    """The one-line error for a non-finite action: which entry, and what is allowed."""
    bad = int(np.flatnonzero(~np.isfinite(x))[0])
    return ValueError(
        f"{name} has {x[bad]} at index {bad}: allowed: finite numbers in [-1, 1] (finite "
        "values outside are clipped; NaN and ±inf are refused)"
    )


def check_action(action: Any, shape: tuple[int, ...], name: str = "action") -> FloatArray:
    """An env action as a flat float64 array, refused unless it has ``shape`` and is finite.

    Why refuse rather than repair: a NaN or ±inf action almost always means a diverged policy
    network, and mapping it to a valid allocation would hide that behind finite rewards.
    Finite values outside ``[-1, 1]`` are *not* refused (see :func:`out_of_range`): Gaussian
    policies sample them routinely, and every consumer clips them.

    Args:
        action: The action as given to ``step`` (array-like of numbers).
        shape: The action space's shape.
        name: How the message names the action (``"action"``, ``"action of agent 'prb'"``).

    Raises:
        ValueError: Not numeric, the wrong shape, or a NaN / ±inf entry (one line naming the
            entry and the allowed range).
    """
    expected = f"{name} must be an array of numbers in [-1, 1] of shape {shape}"
    try:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        a = None
    if a is None or action is None:  # asarray(None) would be a NaN scalar
        raise ValueError(f"{expected}, got {type(action).__name__} {action!r:.80}")
    if a.shape != shape:
        raise ValueError(f"{expected}, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise _finite_error(a, name)
    return a


def out_of_range(action: FloatArray) -> bool:
    """Whether a finite action has an entry outside ``[-1, 1]`` (which will be clipped)."""
    return bool(np.abs(action).max(initial=0.0) > 1.0)


def _masked_exp(action: FloatArray, mask: BoolArray) -> FloatArray:
    """``exp(l − max l)`` with ``l = ACTION_SCALE · clip(a, −1, 1)`` over ``mask``, 0 elsewhere.

    Raises:
        ValueError: A NaN or ±inf action (e.g. from an inline trained policy that diverged).
    """
    x = np.asarray(action, dtype=np.float64)
    if not np.isfinite(x).all():
        raise _finite_error(x)
    x = ACTION_SCALE * np.clip(x, -1.0, 1.0)
    if not mask.any():
        return np.zeros(x.shape)
    z = np.where(mask, x - x[mask].max(), -np.inf)
    return np.exp(z)


def prb_action_to_alloc(action: FloatArray, cell_obs: dict[str, Any], cell: int = 0) -> IntArray:
    """PRB actions [≥ n_ue] in [−1, 1] (padding ignored) → ``cell``'s PRB map, int64 [n_prb].

    Shares are ``softmax(ACTION_SCALE · a)`` over UEs with data (``has_data & ue_mask``); the
    quota resolver turns them into PRBs (UE index per PRB, −1 only if no UE has data).
    """
    eligible = cell_obs["has_data"][cell] & cell_obs["ue_mask"][cell]
    n_ue = eligible.shape[0]
    shares = _masked_exp(np.asarray(action)[:n_ue], eligible)
    return resolve_quota(shares, cell_obs["sinr_db"][cell], eligible)


def power_action_to_watts(
    action: FloatArray, cell_obs: dict[str, Any], cell: int = 0
) -> FloatArray:
    """Power actions [≥ n_ue] in [−1, 1] → watts per PRB of ``cell``, float64 [n_prb].

    ``cell_obs`` is a ``power`` decision's observation. With ``l = ACTION_SCALE · a``, UE ``u``
    with ``n_u`` PRBs gets ``P_max · e^{l_u} / Σ_v n_v e^{l_v}`` on each of its PRBs.
    """
    alloc = cell_obs["alloc"][cell]
    n_ue = cell_obs["ue_mask"].shape[-1]
    used = alloc >= 0
    counts = np.bincount(alloc[used], minlength=n_ue)
    w = _masked_exp(np.asarray(action)[:n_ue], counts > 0)
    denom = float(row_sum(counts * w))
    watts = np.zeros(alloc.shape[0])
    if denom > 0:
        watts[used] = float(cell_obs["max_power_w"][cell]) * w[alloc[used]] / denom
    return watts


# ============================================================================================
# Batched: every member of a cell batch at once (the vector env)
# ============================================================================================
class BatchObservationBuilder:
    """:class:`ObservationBuilder` of every member of a cell batch: arrays gain a leading axis.

    Row ``b`` of each output equals ``ObservationBuilder`` of member ``b`` fed the same
    decisions (``tests/envs/test_prb_power_vector.py``).

    Args:
        n_member: Members (rows).
        max_ue: UE rows of each observation (≥ the cell's UEs).
        n_prb: PRBs of the carrier.
    """

    def __init__(self, n_member: int, max_ue: int, n_prb: int) -> None:
        self.n_member, self.max_ue, self.n_prb = int(n_member), int(max_ue), int(n_prb)
        self._prev_tx: FloatArray | None = None
        self._prev_nack: FloatArray | None = None
        self._feedback: FloatArray | None = None

    def reset_rows(self, rows: IntArray) -> None:
        """Forget the HARQ history of ``rows`` (their new episodes)."""
        if self._feedback is not None and self._prev_tx is not None and self._prev_nack is not None:
            self._feedback[rows] = 0.0
            self._prev_tx[rows] = 0.0
            self._prev_nack[rows] = 0.0

    def __call__(self, cell_obs: dict[str, Any]) -> dict[str, np.ndarray]:
        """The env observations of all members, float32 arrays [n_member, max_ue, ...]."""
        B, M, P = self.n_member, self.max_ue, self.n_prb
        n_ue = cell_obs["ue_mask"].shape[-1]
        if n_ue > M:
            raise ValueError(f"the cell has {n_ue} UEs but max_ue is {M}")
        n_tx, n_nack = cell_obs["n_tx"], cell_obs["n_nack"]
        if self._feedback is None or self._prev_tx is None or self._prev_nack is None:
            self._feedback = np.zeros((B, n_ue))
            self._prev_tx = np.zeros((B, n_ue))
            self._prev_nack = np.zeros((B, n_ue))
        served = n_tx > self._prev_tx
        # A UE's counts change only when it is served, so copying them always is what
        # ObservationBuilder's "copy when any UE was served" does.
        self._feedback[served] = np.where((n_nack > self._prev_nack)[served], -1.0, 1.0)
        self._prev_tx[:] = n_tx
        self._prev_nack[:] = n_nack

        sinr = np.zeros((B, M, P), dtype=np.float32)
        np.clip(cell_obs["sinr_db"], -SINR_BOUND_DB, SINR_BOUND_DB, out=sinr[:, :n_ue])
        obs: dict[str, np.ndarray] = {"sinr_db": sinr}
        if "alloc" in cell_obs:
            alloc = cell_obs["alloc"]
            prb_count = (alloc[:, None, :] == np.arange(n_ue)[None, :, None]).sum(axis=2)
        else:
            prb_count = 0.0
        rows = {
            "est_rate_bps": cell_obs["rate_bps"].mean(axis=2),
            "avg_rate_bps": cell_obs["avg_rate_bps"],
            "last_rate_bps": cell_obs["last_rate_bps"],
            "buffer_bits": cell_obs["buffer_bits"],
            "olla_offset_db": cell_obs["olla_offset_db"],
            "mcs": cell_obs["mcs"],
            "harq_feedback": self._feedback,
            "prb_count": prb_count,
            "has_data": cell_obs["has_data"],
            "ue_mask": cell_obs["ue_mask"],
        }
        for key in UE_KEYS:
            v = np.zeros((B, M), dtype=np.float32)
            v[:, :n_ue] = rows[key]
            obs[key] = v
        return obs


def _masked_exp_rows(action: FloatArray, mask: BoolArray) -> FloatArray:
    """:func:`_masked_exp` of every row: [B, n] actions and mask → [B, n] (0 off the mask)."""
    x = ACTION_SCALE * np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    top = np.where(mask, x, -np.inf).max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        z = np.where(mask, x - top, -np.inf)
    out: FloatArray = np.exp(z)
    return out


def prb_actions_to_alloc(action: FloatArray, cell_obs: dict[str, Any]) -> IntArray:
    """:func:`prb_action_to_alloc` of every member: actions [B, ≥ n_ue] → PRB maps [B, n_prb]."""
    eligible = cell_obs["has_data"] & cell_obs["ue_mask"]
    n_ue = eligible.shape[1]
    shares = _masked_exp_rows(np.asarray(action)[:, :n_ue], eligible)
    return resolve_quota_batch(shares, cell_obs["sinr_db"], eligible)


def power_actions_to_watts(action: FloatArray, cell_obs: dict[str, Any]) -> FloatArray:
    """:func:`power_action_to_watts` of every member: actions [B, ≥ n_ue] → watts [B, n_prb]."""
    alloc = cell_obs["alloc"]
    n_ue = cell_obs["ue_mask"].shape[-1]
    used = alloc >= 0
    counts = (alloc[:, None, :] == np.arange(n_ue)[None, :, None]).sum(axis=2)
    w = _masked_exp_rows(np.asarray(action)[:, :n_ue], counts > 0)
    denom = row_sum(counts * w)
    per_prb = np.take_along_axis(w, np.maximum(alloc, 0), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        watts = (
            np.asarray(cell_obs["max_power_w"], dtype=np.float64)[:, None]
            * per_prb
            / denom[:, None]
        )
    out: FloatArray = np.where(used & (denom > 0)[:, None], watts, 0.0)
    return out
