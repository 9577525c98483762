"""PNG plots of runs and comparisons (matplotlib, Agg canvas).

Imported lazily by ``run.py`` only when plots are written, so neither ``edgetwin.sim`` nor
``edgetwin.scenarios.schema`` imports matplotlib. Figures are drawn on their own Agg canvas
(no ``pyplot``), which leaves the caller's matplotlib backend alone (e.g. in a notebook).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Metrics shown in the comparison chart, with axis labels.
METRIC_LABELS: dict[str, str] = {
    "cell_throughput_mbps": "cell throughput [Mbit/s]",
    "spectral_efficiency_bps_per_hz": "spectral efficiency [bit/s/Hz]",
    "ue_throughput_mean_mbps": "mean UE throughput [Mbit/s]",
    "ue_throughput_median_mbps": "median UE throughput [Mbit/s]",
    "ue_throughput_p5_mbps": "5th-pct UE throughput [Mbit/s]",
    "jain_index": "Jain's fairness index",
    "bler": "BLER",
    "mean_mcs": "mean MCS index",
    "prb_utilization": "PRB utilization",
}


def _figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG atomically (temporary file, then ``os.replace``)."""
    part = path.with_name(path.name + ".part")
    fig.savefig(part, format="png", dpi=110)
    os.replace(part, path)
    return path


def _ecdf(values: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.sort(np.asarray(values, dtype=np.float64))
    x = x[np.isfinite(x)]
    return x, np.arange(1, x.size + 1) / max(x.size, 1)


def ue_throughput_cdf(
    groups: Mapping[str, Any], path: Path, title: str = "Per-UE throughput"
) -> Path:
    """Empirical CDF of per-UE throughput, one curve per group (label → Mbit/s values)."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    top = 0.0
    xlabel = "UE throughput [Mbit/s]"
    for label, values in groups.items():
        x, y = _ecdf(values)
        if x.size:
            ax.step(np.r_[x[0], x], np.r_[0.0, y], where="post", label=str(label))
            top = max(top, float(x[-1]))
    if top > 0:
        # Starved UEs (0) and a few very fast ones share one readable axis: linear near 0.
        linthresh = 10.0 ** np.floor(np.log10(max(top / 100.0, 1e-3)))
        ax.set_xscale("symlog", linthresh=linthresh, linscale=1.0)
        xlabel += f" (linear below {linthresh:g}, log above)"
    ax.set_xlabel(xlabel)
    ax.set_ylabel("CDF")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(groups) > 1:
        ax.legend(fontsize="small")
    return _save(fig, path)


def mcs_bler_over_time(
    slot: pd.DataFrame, horizon_s: float, path: Path, n_bins: int = 50, title: str = ""
) -> Path:
    """Mean MCS and BLER per time bin (all cells pooled), from the per-slot table.

    Args:
        slot: Per-slot table with ``time_s``, ``n_tx``, ``n_nack``, ``mean_mcs``.
        horizon_s: Simulated duration (the time axis).
        path: PNG file to write.
        n_bins: Number of equal time bins.
        title: Figure title.
    """
    edges = np.linspace(0.0, horizon_s, n_bins + 1)
    centers = 0.5 * (edges[:-1] + edges[1:])
    mcs = np.full(n_bins, np.nan)
    bler = np.full(n_bins, np.nan)
    if len(slot):
        b = np.clip(
            np.searchsorted(edges, slot["time_s"].to_numpy(), side="right") - 1, 0, n_bins - 1
        )
        n_tx = slot["n_tx"].to_numpy(dtype=np.float64)
        tx = np.bincount(b, weights=n_tx, minlength=n_bins)
        nack = np.bincount(b, weights=slot["n_nack"].to_numpy(dtype=np.float64), minlength=n_bins)
        mcs_sum = np.bincount(
            b, weights=slot["mean_mcs"].to_numpy(dtype=np.float64) * n_tx, minlength=n_bins
        )
        ok = tx > 0
        mcs[ok] = mcs_sum[ok] / tx[ok]
        bler[ok] = nack[ok] / tx[ok]
    fig = _figure(7.0, 4.5)
    ax_mcs, ax_bler = fig.subplots(2, 1, sharex=True)
    ax_mcs.plot(centers, mcs, marker=".")
    ax_mcs.set_ylabel("mean MCS")
    ax_mcs.grid(alpha=0.3)
    ax_bler.plot(centers, bler, marker=".", color="tab:red")
    ax_bler.set_ylabel("BLER")
    ax_bler.set_xlabel("time [s]")
    ax_bler.set_ylim(bottom=0.0)
    ax_bler.grid(alpha=0.3)
    fig.suptitle(title or f"MCS and BLER over time ({n_bins} bins)")
    return _save(fig, path)


def plot_run(
    tables: Mapping[str, pd.DataFrame],
    horizon_s: float,
    out_dir: Path,
    *,
    n_bins: int = 50,
    title: str = "",
) -> list[Path]:
    """The plots of one run: per-UE throughput CDF and MCS/BLER over time."""
    out = []
    if "ue" in tables:
        out.append(
            ue_throughput_cdf(
                {"all UEs": tables["ue"]["throughput_mbps"]},
                out_dir / "ue_throughput_cdf.png",
                title=f"Per-UE throughput {title}".strip(),
            )
        )
    if "slot" in tables:
        out.append(
            mcs_bler_over_time(
                tables["slot"], horizon_s, out_dir / "mcs_bler_over_time.png", n_bins, title
            )
        )
    if "requests" in tables and "tier" in tables["requests"]:
        out += edge_cloud_plots(tables, out_dir, title)
    return out


#: Breakdown terms of an edge-cloud request (``sim/system.py``), with legend labels.
_BREAKDOWN_LABELS: dict[str, str] = {
    "t_uplink_s": "NR uplink",
    "t_network_up_s": "network up",
    "t_queue_s": "queue",
    "t_prefill_s": "prefill",
    "t_decode_s": "decode",
    "t_network_down_s": "network down",
    "t_downlink_s": "NR downlink",
}


def edge_cloud_plots(tables: Mapping[str, pd.DataFrame], out_dir: Path, title: str) -> list[Path]:
    """TTFT CDF per tier, latency breakdown per tier, TTFT against the UE's downlink SINR."""
    req = tables["requests"]
    fin = req[req["status"] == "finished"]
    tiers = [t for t in ("local", "edge", "cloud") if (fin["tier"] == t).any()]
    paths = []

    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    for tier in tiers:
        x, y = _ecdf(fin.loc[fin["tier"] == tier, "ttft_ue_s"])
        if x.size:
            ax.step(np.r_[x[0], x], np.r_[0.0, y], where="post", label=f"{tier} ({x.size})")
    ax.set_xscale("log")
    ax.set_xlabel("TTFT at the UE [s]")
    ax.set_ylabel("CDF")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(f"TTFT per tier {title}".strip(), fontsize="small")
    ax.grid(alpha=0.3)
    if tiers:
        ax.legend(fontsize="small")
    paths.append(_save(fig, out_dir / "ttft_cdf_per_tier.png"))

    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    bottom = np.zeros(len(tiers))
    for col, label in _BREAKDOWN_LABELS.items():
        means = np.array([fin.loc[fin["tier"] == t, col].mean() for t in tiers])
        means = np.nan_to_num(means)
        ax.bar(tiers, means, bottom=bottom, label=label)
        bottom += means
    ax.set_ylabel("mean end-to-end latency at the UE [s]")
    ax.set_title(f"Latency breakdown {title}".strip(), fontsize="small")
    ax.legend(fontsize="x-small")
    paths.append(_save(fig, out_dir / "latency_breakdown.png"))

    if "ue" in tables and len(fin):
        ue = tables["ue"].rename(columns={"ue": "ue_index"})[
            ["cell", "ue_index", "geometry_sinr_db"]
        ]
        joined = fin.merge(ue, on=["cell", "ue_index"], how="left")
        fig = _figure(6.0, 4.0)
        ax = fig.add_subplot()
        for tier in tiers:
            sub = joined[joined["tier"] == tier]
            ax.scatter(sub["geometry_sinr_db"], sub["ttft_ue_s"], s=8, alpha=0.6, label=tier)
        ax.set_yscale("log")
        ax.set_xlabel("UE's downlink geometry SINR [dB]")
        ax.set_ylabel("TTFT at the UE [s]")
        ax.set_title(f"TTFT against SINR {title}".strip(), fontsize="small")
        ax.grid(alpha=0.3)
        if tiers:
            ax.legend(fontsize="small")
        paths.append(_save(fig, out_dir / "ttft_vs_sinr.png"))
    return paths


def metrics_with_ci(
    summary: pd.DataFrame, order: Sequence[str], metrics: Sequence[str], path: Path, title: str = ""
) -> Path:
    """Mean ± 95 % CI half-width per policy set, one panel per metric.

    Args:
        summary: Long table with ``policy_set``, ``metric``, ``mean``, ``ci95_half_width``.
        order: Policy sets in display order.
        metrics: Metrics to show (one panel each).
        path: PNG file to write.
        title: Figure title.
    """
    metrics = [m for m in metrics if m in set(summary["metric"])]
    n = max(len(metrics), 1)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig = _figure(3.6 * cols, 2.6 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    x = np.arange(len(order))
    for ax, metric in zip(axes, metrics, strict=False):
        s = summary[summary["metric"] == metric].set_index("policy_set").reindex(list(order))
        err = s["ci95_half_width"].fillna(0.0).to_numpy()
        ax.errorbar(x, s["mean"].to_numpy(), yerr=err, fmt="o", capsize=4)
        ax.set_xticks(x, list(order), rotation=20, ha="right", fontsize="small")
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize="medium")
        ax.grid(alpha=0.3, axis="y")
        ax.margins(x=0.2)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle(title or "mean ± 95 % CI over seeds")
    return _save(fig, path)


def plot_comparison(
    ue: pd.DataFrame,
    summary: pd.DataFrame,
    order: Sequence[str],
    out_dir: Path,
    *,
    metrics: Sequence[str] = tuple(METRIC_LABELS),
    title: str = "",
) -> list[Path]:
    """The plots of a comparison: overlaid per-UE throughput CDFs and metrics with 95 % CIs.

    Args:
        ue: Per-UE rows of every run with ``policy_set`` and ``throughput_mbps`` (seeds pooled).
        summary: Long per-set summary (see :func:`metrics_with_ci`).
        order: Policy sets in display order.
        out_dir: Folder to write into.
        metrics: Metrics of the CI chart.
        title: Title prefix.
    """
    groups = {label: ue.loc[ue["policy_set"] == label, "throughput_mbps"] for label in order}
    return [
        ue_throughput_cdf(
            groups,
            out_dir / "ue_throughput_cdf.png",
            title=f"Per-UE throughput {title} (seeds pooled)".replace("  ", " "),
        ),
        metrics_with_ci(
            summary, order, metrics, out_dir / "metrics_ci.png", f"{title} mean ± 95 % CI".strip()
        ),
    ]


def metric_vs_axis(
    summary: pd.DataFrame,
    axes: Sequence[str],
    order: Sequence[str],
    metric: str,
    path: Path,
    title: str = "",
) -> Path:
    """A sweep's metric against its first grid axis: one line per policy set, 95 % CI bands.

    One panel per combination of the other grid axes (their values in the panel title).

    Args:
        summary: Long sweep summary: the grid-axis columns, ``policy_set``, ``metric``,
            ``mean``, ``ci95_half_width``.
        axes: Grid-axis columns, the first one on the x axis.
        order: Policy sets in legend order.
        metric: The metric to draw.
        path: PNG file to write.
        title: Figure title.
    """
    s = summary[summary["metric"] == metric]
    x_axis, others = axes[0], list(axes[1:])
    panels = list(s.groupby(others, sort=False)) if others else [((), s)]
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig = _figure(3.8 * cols, 2.8 * rows + 0.5)
    grid = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    x_values = list(dict.fromkeys(s[x_axis]))
    numeric = all(isinstance(v, int | float | np.number) for v in x_values)
    for ax, (values, panel) in zip(grid, panels, strict=False):
        for label in order:
            line = panel[panel["policy_set"] == label]
            if line.empty:
                continue
            # Categorical axis values (strings) sit at 0, 1, 2, ... in sweep order.
            x = (
                line[x_axis].to_numpy(dtype=np.float64)
                if numeric
                else np.array([x_values.index(v) for v in line[x_axis]], dtype=np.float64)
            )
            mean = line["mean"].to_numpy(dtype=np.float64)
            half = line["ci95_half_width"].fillna(0.0).to_numpy(dtype=np.float64)
            (drawn,) = ax.plot(x, mean, marker="o", label=label)
            ax.fill_between(x, mean - half, mean + half, color=drawn.get_color(), alpha=0.2)
        if not numeric:
            ax.set_xticks(range(len(x_values)), [str(v) for v in x_values])
        ax.set_xlabel(x_axis)
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        values = values if isinstance(values, tuple) else (values,)
        ax.set_title(
            ", ".join(
                f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in zip(others, values, strict=True)
            ),
            fontsize="small",
        )
        ax.grid(alpha=0.3)
    grid[0].legend(fontsize="small")
    for ax in grid[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title or f"{metric}: mean ± 95 % CI over seeds")
    return _save(fig, path)
