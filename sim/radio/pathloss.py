"""TR 38.901 path loss, LOS probability, shadow fading and O2I penetration (pure functions).

All functions are vectorized with numpy broadcasting and return ``float64`` arrays. Carrier
frequencies are passed in Hz and converted to GHz where the tables use GHz (``fc`` below).

Conventions and simplifications (documented here once):

* ``"uma"`` is TR 38.901 UMa, ``"umi"`` UMi–Street Canyon, ``"rma"`` RMa and ``"inh"``
  InH–Office (the path loss is the same for open and mixed office; the LOS probability is the
  mixed-office one).
* UMa breakpoint: the effective environment height is fixed at ``h_E = 1 m``. TR 38.901
  Table 7.4.1-1 Note 1 draws ``h_E`` at random with probability ``1 / (1 + C(d_2D, h_UT))``;
  ``C = 0`` for ``h_UT < 13 m``, so this is exact for ordinary UE heights (it is also what Sionna
  does there), and for taller UEs we keep the deterministic ``h_E = 1 m``.
* Distances below the model's minimum (10 m outdoors, 1 m for InH) are clamped to it, so the
  loss never drops below its value at the minimum distance. No upper clamp is applied.
* The RMa parameters default to the TR 38.901 Table 7.4.1-1 defaults: average building height
  ``h = 5 m`` and street width ``W = 20 m``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from edgetwin.sim.types import FloatArray
from edgetwin.sim.units import SPEED_OF_LIGHT_MPS

Scenario = Literal["uma", "umi", "rma", "inh"]
SCENARIOS: tuple[Scenario, ...] = ("uma", "umi", "rma", "inh")

ArrayLike = float | npt.ArrayLike

#: Standard deviation of the random O2I penetration component, low-loss model, dB
#: (TR 38.901 Table 7.4.3-2).
O2I_LOW_LOSS_STD_DB = 4.4
#: Standard deviation of the high-loss O2I model, dB (TR 38.901 Table 7.4.3-2).
O2I_HIGH_LOSS_STD_DB = 6.5

_MIN_D2D_M: dict[str, float] = {"uma": 10.0, "umi": 10.0, "rma": 10.0, "inh": 1.0}


def _check(scenario: str) -> None:
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")


def _f(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def breakpoint_distance_m(
    scenario: Scenario, *, fc_hz: float, h_bs_m: ArrayLike, h_ut_m: ArrayLike
) -> FloatArray:
    """Breakpoint distance of the LOS two-slope model.

    UMa/UMi: ``d'_BP = 4 h'_BS h'_UT f_c / c`` with ``h' = h − 1 m`` (TR 38.901 Table 7.4.1-1
    Note 1). RMa: ``d_BP = 2π h_BS h_UT f_c / c`` (Note 5). InH has no breakpoint (``inf``).

    Args:
        scenario: TR 38.901 scenario.
        fc_hz: Carrier frequency, Hz.
        h_bs_m: BS antenna height, metres, any shape broadcastable with ``h_ut_m``.
        h_ut_m: UE antenna height, metres.

    Returns:
        Breakpoint distance, metres, the broadcast shape of the heights.
    """
    _check(scenario)
    h_bs, h_ut = _f(h_bs_m), _f(h_ut_m)
    if scenario in ("uma", "umi"):
        out: FloatArray = 4.0 * (h_bs - 1.0) * (h_ut - 1.0) * fc_hz / SPEED_OF_LIGHT_MPS
        return out
    if scenario == "rma":
        out = 2.0 * np.pi * h_bs * h_ut * fc_hz / SPEED_OF_LIGHT_MPS
        return out
    return np.full(np.broadcast(h_bs, h_ut).shape, np.inf)


def pathloss_db(
    scenario: Scenario,
    d_2d_m: ArrayLike,
    *,
    fc_hz: float,
    h_bs_m: ArrayLike,
    h_ut_m: ArrayLike,
    los: bool | npt.ArrayLike,
    building_height_m: float = 5.0,
    street_width_m: float = 20.0,
) -> FloatArray:
    """Basic path loss PL_b of TR 38.901 Table 7.4.1-1 (no shadowing, no O2I).

    ``d_3D = sqrt(d_2D² + (h_BS − h_UT)²)``; NLOS links use ``max(PL_LOS, PL'_NLOS)``.

    Args:
        scenario: ``"uma"``, ``"umi"`` (street canyon), ``"rma"`` or ``"inh"`` (office).
        d_2d_m: Horizontal BS–UE distance, metres, any shape.
        fc_hz: Carrier frequency, Hz.
        h_bs_m: BS antenna height, metres, broadcastable with ``d_2d_m``.
        h_ut_m: UE antenna height, metres, broadcastable with ``d_2d_m``.
        los: LOS state (True = LOS), bool scalar or array broadcastable with ``d_2d_m``.
        building_height_m: RMa average building height ``h``, metres.
        street_width_m: RMa average street width ``W``, metres.

    Returns:
        Path loss in dB, the broadcast shape of the inputs.
    """
    _check(scenario)
    d2 = np.maximum(_f(d_2d_m), _MIN_D2D_M[scenario])
    h_bs, h_ut = _f(h_bs_m), _f(h_ut_m)
    los_b = np.asarray(los, dtype=bool)
    d3 = np.sqrt(d2**2 + (h_bs - h_ut) ** 2)
    fc = fc_hz / 1e9
    lg_d3 = np.log10(d3)
    lg_fc = np.log10(fc)

    if scenario == "uma":
        d_bp = breakpoint_distance_m("uma", fc_hz=fc_hz, h_bs_m=h_bs, h_ut_m=h_ut)
        # TR 38.901 Table 7.4.1-1 (UMa LOS PL1/PL2, NLOS PL')
        pl1 = 28.0 + 22.0 * lg_d3 + 20.0 * lg_fc
        pl2 = 28.0 + 40.0 * lg_d3 + 20.0 * lg_fc - 9.0 * np.log10(d_bp**2 + (h_bs - h_ut) ** 2)
        pl_los = np.where(d2 < d_bp, pl1, pl2)
        pl_nlos = 13.54 + 39.08 * lg_d3 + 20.0 * lg_fc - 0.6 * (h_ut - 1.5)
    elif scenario == "umi":
        d_bp = breakpoint_distance_m("umi", fc_hz=fc_hz, h_bs_m=h_bs, h_ut_m=h_ut)
        # TR 38.901 Table 7.4.1-1 (UMi-Street Canyon LOS PL1/PL2, NLOS PL')
        pl1 = 32.4 + 21.0 * lg_d3 + 20.0 * lg_fc
        pl2 = 32.4 + 40.0 * lg_d3 + 20.0 * lg_fc - 9.5 * np.log10(d_bp**2 + (h_bs - h_ut) ** 2)
        pl_los = np.where(d2 < d_bp, pl1, pl2)
        pl_nlos = 35.3 * lg_d3 + 22.4 + 21.3 * lg_fc - 0.3 * (h_ut - 1.5)
    elif scenario == "rma":
        h, w = building_height_m, street_width_m
        d_bp = breakpoint_distance_m("rma", fc_hz=fc_hz, h_bs_m=h_bs, h_ut_m=h_ut)

        def pl1_of(d: FloatArray) -> FloatArray:
            # TR 38.901 Table 7.4.1-1 (RMa LOS PL1)
            out: FloatArray = (
                20.0 * np.log10(40.0 * np.pi * d * fc / 3.0)
                + min(0.03 * h**1.72, 10.0) * np.log10(d)
                - min(0.044 * h**1.72, 14.77)
                + 0.002 * np.log10(h) * d
            )
            return out

        pl1 = pl1_of(d3)
        # TR 38.901 Table 7.4.1-1 (RMa LOS PL2 = PL1(d_BP) + 40 log10(d_3D / d_BP))
        pl2 = pl1_of(d_bp) + 40.0 * np.log10(d3 / d_bp)
        pl_los = np.where(d2 < d_bp, pl1, pl2)
        # TR 38.901 Table 7.4.1-1 (RMa NLOS PL')
        pl_nlos = (
            161.04
            - 7.1 * np.log10(w)
            + 7.5 * np.log10(h)
            - (24.37 - 3.7 * (h / h_bs) ** 2) * np.log10(h_bs)
            + (43.42 - 3.1 * np.log10(h_bs)) * (lg_d3 - 3.0)
            + 20.0 * lg_fc
            - (3.2 * np.log10(11.75 * h_ut) ** 2 - 4.97)
        )
    else:
        # TR 38.901 Table 7.4.1-1 (InH-Office LOS, NLOS PL')
        pl_los = 32.4 + 17.3 * lg_d3 + 20.0 * lg_fc
        pl_nlos = 38.3 * lg_d3 + 17.30 + 24.9 * lg_fc
    out: FloatArray = np.where(los_b, pl_los, np.maximum(pl_los, pl_nlos))
    return out


def los_probability(
    scenario: Scenario, d_2d_m: ArrayLike, *, h_ut_m: ArrayLike = 1.5
) -> FloatArray:
    """Probability that a link is LOS, TR 38.901 Table 7.4.2-1.

    UMa includes the ``C'(h_UT) = ((h_UT − 13) / 10)^1.5`` term (zero for ``h_UT ≤ 13 m``);
    InH is the mixed-office model. ``d_2d_m`` is the outdoor horizontal distance ``d_2D-out``.

    Args:
        scenario: TR 38.901 scenario.
        d_2d_m: Horizontal BS–UE distance, metres, any shape.
        h_ut_m: UE antenna height, metres (UMa only), broadcastable with ``d_2d_m``.

    Returns:
        LOS probability in [0, 1], the broadcast shape of the inputs.
    """
    _check(scenario)
    d = np.maximum(_f(d_2d_m), 1e-9)
    if scenario == "rma":
        # TR 38.901 Table 7.4.2-1 (RMa)
        p = np.where(d <= 10.0, 1.0, np.exp(-(d - 10.0) / 1000.0))
    elif scenario == "umi":
        # TR 38.901 Table 7.4.2-1 (UMi-Street Canyon)
        p = np.where(d <= 18.0, 1.0, 18.0 / d + np.exp(-d / 36.0) * (1.0 - 18.0 / d))
    elif scenario == "uma":
        h_ut = _f(h_ut_m)
        # TR 38.901 Table 7.4.2-1 (UMa, C'(h_UT))
        c = np.where(h_ut <= 13.0, 0.0, (np.maximum(h_ut - 13.0, 0.0) / 10.0) ** 1.5)
        base = 18.0 / d + np.exp(-d / 63.0) * (1.0 - 18.0 / d)
        p = np.where(
            d <= 18.0, 1.0, base * (1.0 + c * 1.25 * (d / 100.0) ** 3 * np.exp(-d / 150.0))
        )
    else:
        # TR 38.901 Table 7.4.2-1 (Indoor - Mixed office)
        p = np.where(
            d <= 1.2,
            1.0,
            np.where(d < 6.5, np.exp(-(d - 1.2) / 4.7), np.exp(-(d - 6.5) / 32.6) * 0.32),
        )
    out: FloatArray = np.clip(p, 0.0, 1.0)
    return out


def shadow_fading_std_db(
    scenario: Scenario,
    los: bool | npt.ArrayLike,
    *,
    beyond_breakpoint: bool | npt.ArrayLike = False,
) -> FloatArray:
    """Log-normal shadow-fading standard deviation σ_SF, TR 38.901 Table 7.4.1-1.

    UMa 4 / 6 dB, UMi 4 / 7.82 dB, RMa 4 (6 beyond the breakpoint) / 8 dB, InH 3 / 8.03 dB
    (LOS / NLOS).

    Args:
        scenario: TR 38.901 scenario.
        los: LOS state, bool scalar or array.
        beyond_breakpoint: RMa LOS only: whether ``d_2D > d_BP`` (σ_SF = 6 dB instead of 4 dB),
            broadcastable with ``los``.

    Returns:
        σ_SF in dB, the broadcast shape of ``los`` and ``beyond_breakpoint``.
    """
    _check(scenario)
    los_b = np.asarray(los, dtype=bool)
    # TR 38.901 Table 7.4.1-1 (σ_SF column)
    table = {"uma": (4.0, 6.0), "umi": (4.0, 7.82), "rma": (4.0, 8.0), "inh": (3.0, 8.03)}
    s_los, s_nlos = table[scenario]
    los_std: FloatArray | float = s_los
    if scenario == "rma":
        los_std = np.where(np.asarray(beyond_breakpoint, dtype=bool), 6.0, 4.0)
    out: FloatArray = np.asarray(np.where(los_b, los_std, s_nlos), dtype=np.float64)
    return out


def median_delay_spread_s(
    scenario: Scenario,
    los: bool | npt.ArrayLike,
    *,
    fc_hz: float,
    indoor: bool | npt.ArrayLike = False,
) -> FloatArray:
    """Median RMS delay spread ``10^μ_lgDS``, TR 38.901 Table 7.5-6 (Rel-16 values).

    The frequency-dependent means use ``fc`` in GHz clipped from below as the table's notes say
    (UMa and InH at 6 GHz, UMi at 2 GHz). ``indoor`` selects the O2I column for the outdoor
    scenarios (ignored for InH).

    Args:
        scenario: TR 38.901 scenario.
        los: LOS state, bool scalar or array.
        fc_hz: Carrier frequency, Hz.
        indoor: Whether the UE is indoors (O2I), broadcastable with ``los``.

    Returns:
        Delay spread in seconds, the broadcast shape of ``los`` and ``indoor``.
    """
    _check(scenario)
    fc = fc_hz / 1e9
    los_b = np.asarray(los, dtype=bool)
    ind = np.asarray(indoor, dtype=bool)
    # TR 38.901 Table 7.5-6 Part-1/Part-2 (μ_lgDS of LOS, NLOS, O2I)
    if scenario == "uma":
        f = max(fc, 6.0)
        mu_los, mu_nlos, mu_o2i = -6.955 - 0.0963 * np.log10(f), -6.28 - 0.204 * np.log10(f), -6.62
    elif scenario == "umi":
        f = max(fc, 2.0)
        lg = np.log10(1.0 + f)
        mu_los, mu_nlos, mu_o2i = -0.24 * lg - 7.14, -0.24 * lg - 6.83, -6.62
    elif scenario == "rma":
        mu_los, mu_nlos, mu_o2i = -7.49, -7.43, -7.47
    else:
        f = max(fc, 6.0)
        lg = np.log10(1.0 + f)
        mu_los, mu_nlos = -0.01 * lg - 7.692, -0.28 * lg - 7.173
        mu_o2i = mu_nlos
        ind = np.zeros_like(ind)
    mu = np.where(ind, mu_o2i, np.where(los_b, mu_los, mu_nlos))
    out: FloatArray = 10.0**mu
    return out


def _o2i_penetration_db(
    w_a: float, l_a_db: float, w_b: float, l_b_db: float, d_2d_in_m: ArrayLike
) -> FloatArray:
    """``PL_tw + PL_in`` of TR 38.901 Table 7.4.3-2, dB.

    ``5 − 10 log10(w_a 10^(−L_a/10) + w_b 10^(−L_b/10)) + 0.5 d_2D-in`` for the materials a, b
    of Table 7.4.3-1.
    """
    pl_tw = 5.0 - 10.0 * np.log10(w_a * 10.0 ** (-l_a_db / 10.0) + w_b * 10.0 ** (-l_b_db / 10.0))
    out: FloatArray = pl_tw + 0.5 * _f(d_2d_in_m)
    return out


def o2i_low_loss_db(fc_hz: float, d_2d_in_m: ArrayLike) -> FloatArray:
    """Mean O2I building penetration loss of the low-loss model, ``PL_tw + PL_in``.

    ``PL_tw = 5 − 10 log10(0.3·10^(−L_glass/10) + 0.7·10^(−L_concrete/10))`` with
    ``L_glass = 2 + 0.2 fc`` and ``L_concrete = 5 + 4 fc`` (TR 38.901 Tables 7.4.3-1/-2), and
    ``PL_in = 0.5 d_2D-in``. The random part ``N(0, 4.4²)`` dB is added by
    :func:`draw_o2i_low_loss_db`.

    Args:
        fc_hz: Carrier frequency, Hz.
        d_2d_in_m: Indoor horizontal distance, metres, any shape.

    Returns:
        Penetration loss, dB, the shape of ``d_2d_in_m``.
    """
    fc = fc_hz / 1e9
    return _o2i_penetration_db(0.3, 2.0 + 0.2 * fc, 0.7, 5.0 + 4.0 * fc, d_2d_in_m)


def o2i_high_loss_db(fc_hz: float, d_2d_in_m: ArrayLike) -> FloatArray:
    """Mean O2I building penetration loss of the high-loss model, ``PL_tw + PL_in``.

    ``PL_tw = 5 − 10 log10(0.7·10^(−L_IIRglass/10) + 0.3·10^(−L_concrete/10))`` with
    ``L_IIRglass = 23 + 0.3 fc`` and ``L_concrete = 5 + 4 fc`` (TR 38.901 Tables 7.4.3-1/-2),
    ``PL_in = 0.5 d_2D-in``; the random part is ``N(0, 6.5²)`` dB (:data:`O2I_HIGH_LOSS_STD_DB`).

    Args:
        fc_hz: Carrier frequency, Hz.
        d_2d_in_m: Indoor horizontal distance, metres, any shape.

    Returns:
        Penetration loss, dB, the shape of ``d_2d_in_m``.
    """
    fc = fc_hz / 1e9
    return _o2i_penetration_db(0.7, 23.0 + 0.3 * fc, 0.3, 5.0 + 4.0 * fc, d_2d_in_m)


def draw_o2i_low_loss_db(
    scenario: Scenario, fc_hz: float, shape: tuple[int, ...], rng: np.random.Generator
) -> FloatArray:
    """Draw O2I low-loss penetration losses for indoor UEs (TR 38.901 §7.4.3.1).

    ``d_2D-in`` is the minimum of two uniform draws on [0, 25] m (UMa, UMi) or [0, 10] m (RMa),
    and the random part is ``N(0, 4.4²)`` dB (TR 38.901 Table 7.4.3-2). InH UEs are indoors by
    definition and get 0 dB.

    Args:
        scenario: TR 38.901 scenario.
        fc_hz: Carrier frequency, Hz.
        shape: Output shape (e.g. [n_cell, n_ue]).
        rng: Random generator.

    Returns:
        Penetration loss, dB, of shape ``shape``.
    """
    _check(scenario)
    if scenario == "inh":
        return np.zeros(shape)
    d_max = 10.0 if scenario == "rma" else 25.0
    d_in = np.minimum(rng.uniform(0.0, d_max, shape), rng.uniform(0.0, d_max, shape))
    out: FloatArray = o2i_low_loss_db(fc_hz, d_in) + O2I_LOW_LOSS_STD_DB * rng.standard_normal(
        shape
    )
    return out


__all__ = [
    "O2I_HIGH_LOSS_STD_DB",
    "O2I_LOW_LOSS_STD_DB",
    "SCENARIOS",
    "Scenario",
    "breakpoint_distance_m",
    "draw_o2i_low_loss_db",
    "los_probability",
    "median_delay_spread_s",
    "o2i_high_loss_db",
    "o2i_low_loss_db",
    "pathloss_db",
    "shadow_fading_std_db",
]
