"""The edge–cloud system: UEs' requests, the offload decision, devices, servers, hops.

One component that owns what sits above the radio (``DESIGN.md``, "The request's journey"):
per-UE chat sessions send requests to the :class:`~edgetwin.sim.compute.offload.Offloader`,
which runs each on the UE's :class:`~edgetwin.sim.compute.device.Device` or sends it on a
:class:`~edgetwin.sim.net.journey.Journeys` path (NR uplink → wired link → server → wired link
→ NR downlink) to the edge or cloud servers. The radio cell groups are components of their own
(the radio hops only read and fill their buffers); ``scenarios/builder.py`` wires everything.

Its results merge every request, wherever it ran, into one ``requests`` table whose breakdown
sums to the UE's end-to-end time (the terms telescope, see ``journey.py``)::

    e2e_ue = t_uplink + t_network_up + t_queue + t_prefill + t_decode + t_network_down
             + t_downlink

(``local`` requests: only ``t_queue`` (waiting for the device), ``t_prefill`` and ``t_decode``.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from edgetwin.sim.compute.device import Device
from edgetwin.sim.compute.offload import TIERS, Offloader
from edgetwin.sim.compute.server import LLMServer
from edgetwin.sim.metrics.summary import RunResult
from edgetwin.sim.net.journey import Journeys
from edgetwin.sim.net.link import WiredLink
from edgetwin.sim.net.spec_journey import SpeculativeJourneys, speculative_results

__all__ = ["BREAKDOWN", "EdgeCloudSystem", "SloTargets"]

#: Breakdown columns of the ``requests`` table, in journey order (s).
BREAKDOWN: tuple[str, ...] = (
    "t_uplink_s",
    "t_network_up_s",
    "t_queue_s",
    "t_prefill_s",
    "t_decode_s",
    "t_network_down_s",
    "t_downlink_s",
)


#: Columns of a request's row before the derived UE-side metrics.
_ROW_COLUMNS: tuple[str, ...] = (
    "id",
    "ue",
    "tier",
    "node",
    "status",
    "prompt_tokens",
    "output_tokens",
    "received_tokens",
    "created_s",
    "first_token_ue_s",
    "last_token_ue_s",
    *BREAKDOWN,
    "device_energy_j",
    "tx_energy_j",
)


@dataclass(frozen=True, slots=True)
class SloTargets:
    """Per-request service objectives measured at the UE (s)."""

    ttft_s: float
    tpot_s: float


@dataclass(slots=True)
class EdgeCloudSystem:
    """Sessions, offloader, devices, servers, journeys and wired links of a run.

    Attributes:
        source: What sends the UEs' requests (chat sessions, a trace): started with the rest.
        offloader: The ``offload`` decision and routing.
        devices: UE name → its device (empty without a ``local`` tier).
        servers: Tier (``edge``, ``cloud``) → its replicas.
        journeys: (tier, paths) pairs: one per site for the edge, one for the cloud.
        links: Every wired link (each direction one).
        ue_where: UE name → (cell, UE index in the cell).
        slo: SLO targets for attainment and goodput.
        radio_hop_names: Names of the uplink / downlink radio hops (``""``: no such hop).
        uplink: The NR uplink cell group (None: no radio uplink), for the UEs' transmit energy.
        tx_power_efficiency: RF output power / DC power of a UE's transmitter.
        name: Component name.
    """

    source: Any
    offloader: Offloader
    devices: Mapping[str, Device]
    servers: Mapping[str, Sequence[LLMServer]]
    journeys: Sequence[tuple[str, Journeys | SpeculativeJourneys]]
    links: Sequence[WiredLink]
    ue_where: Mapping[str, tuple[int, int]]
    slo: SloTargets
    radio_hop_names: tuple[str, str] = ("", "")
    uplink: Any = None
    tx_power_efficiency: float = 1.0
    name: str = "system"
    _t_end_s: float = field(default=math.nan)

    def start(self) -> None:
        """Start every server, device and session process."""
        for replicas in self.servers.values():
            for server in replicas:
                server.start()
        for device in self.devices.values():
            device.start()
        self.source.start()

    def finalize(self, now_s: float) -> None:
        """Close the servers' and devices' accounting at the horizon."""
        self._t_end_s = now_s
        for replicas in self.servers.values():
            for server in replicas:
                server.finalize(now_s)
        for device in self.devices.values():
            device.finalize(now_s)

    # ------------------------------------------------------------------ results
    def request_table(self) -> pd.DataFrame:
        """One row per request sent, wherever it ran (see the module docstring)."""
        parts = [self._remote_rows(tier, j) for tier, j in self.journeys]
        parts.append(self._local_rows())
        parts = [p for p in parts if len(p)]
        if parts:
            df = pd.concat(parts, ignore_index=True).sort_values("id", kind="stable")
        else:
            df = pd.DataFrame({c: pd.Series(dtype="float64") for c in _ROW_COLUMNS})
            df = df.astype({c: "object" for c in ("ue", "tier", "node", "status")})
            df = df.astype({"id": "int64"})
        where = [self.ue_where[u] for u in df["ue"]]
        df.insert(2, "cell", np.array([w[0] for w in where], dtype=np.int64))
        df.insert(3, "ue_index", np.array([w[1] for w in where], dtype=np.int64))
        df["ttft_ue_s"] = df["first_token_ue_s"] - df["created_s"]
        df["e2e_ue_s"] = df["last_token_ue_s"] - df["created_s"]
        gaps = (df["last_token_ue_s"] - df["first_token_ue_s"]) / (df["received_tokens"] - 1)
        df["tpot_ue_s"] = gaps.where(df["received_tokens"] > 1)
        decided = self.offloader.results().tables["offload"][["id", "est_latency_s"]]
        return df.merge(decided, on="id", how="left").reset_index(drop=True)

    def _remote_rows(self, tier: str, journeys: Journeys | SpeculativeJourneys) -> pd.DataFrame:
        df = journeys.table()
        if not len(df):
            return df
        up_hop, down_hop = self.radio_hop_names
        t_uplink = df.get(f"t_up_{up_hop}_s", pd.Series(0.0, index=df.index)).fillna(0.0)
        t_downlink = df.get(f"t_down_{down_hop}_s", pd.Series(0.0, index=df.index)).fillna(0.0)
        return pd.DataFrame(
            {
                "id": df["id"],
                "ue": df["ue"],
                "tier": tier,
                "node": journeys.name,
                "status": df["status"],
                "prompt_tokens": df["prompt_tokens"],
                "output_tokens": df["output_tokens"],
                "received_tokens": df["received_tokens"],
                "created_s": df["created_s"],
                "first_token_ue_s": df["first_token_ue_s"],
                "last_token_ue_s": df["last_token_ue_s"],
                "t_uplink_s": t_uplink.where(df["server_arrival_s"].notna()),
                "t_network_up_s": df["t_up_s"] - t_uplink,
                "t_queue_s": df["t_queue_s"],
                "t_prefill_s": df["t_prefill_s"],
                "t_decode_s": df["t_decode_s"],
                "t_network_down_s": df["t_down_s"] - t_downlink,
                "t_downlink_s": t_downlink.where(df["t_down_s"].notna()),
                "device_energy_j": df.get("device_energy_j", 0.0),
                "tx_energy_j": self._tx_energy_j(df, journeys),
            }
        )

    def _tx_energy_j(self, df: pd.DataFrame, journeys: Journeys | SpeculativeJourneys) -> Any:
        """UE transmit (DC) energy of each prompt, J: its share of the UE's PUSCH energy.

        The UE's radiated PUSCH energy over the run, in proportion to the prompt's bits among
        the bits the UE delivered, divided by the transmitter's efficiency.
        """
        if self.uplink is None:
            return 0.0
        cfg = journeys.config
        bits = 8.0 * (df["prompt_tokens"] * cfg.bytes_per_token + cfg.request_overhead_bytes)
        where = [self.ue_where[u] for u in df["ue"]]
        cells = np.array([w[0] for w in where], dtype=np.int64)
        ues = np.array([w[1] for w in where], dtype=np.int64)
        energy = self.uplink.m_energy_j[cells, ues]
        sent = np.maximum(self.uplink.delivered_bits[cells, ues], 1.0)
        share = np.minimum(bits.to_numpy() / sent, 1.0)
        return energy * share / self.tx_power_efficiency

    def _local_rows(self) -> pd.DataFrame:
        rows = []
        for ue, device in self.devices.items():
            for j in device.jobs:
                got = j.n_generated
                rows.append(
                    {
                        "id": j.id,
                        "ue": ue,
                        "tier": "local",
                        "node": ue,
                        "status": j.status,
                        "prompt_tokens": j.prompt_tokens,
                        "output_tokens": j.output_tokens,
                        "received_tokens": got,
                        "created_s": j.arrival_s,
                        "first_token_ue_s": j.first_token_s,
                        "last_token_ue_s": j.finish_s if j.status == "finished" else math.nan,
                        "t_uplink_s": 0.0,
                        "t_network_up_s": 0.0,
                        "t_queue_s": j.start_s - j.arrival_s,
                        "t_prefill_s": j.first_token_s - j.start_s,
                        "t_decode_s": j.finish_s - j.first_token_s,
                        "t_network_down_s": 0.0,
                        "t_downlink_s": 0.0,
                        "device_energy_j": j.energy_j,
                        "tx_energy_j": 0.0,
                    }
                )
        return pd.DataFrame(rows)

    def results(self) -> RunResult:
        """``requests``, ``offload``, ``links`` and ``servers`` tables and UE-side metrics."""
        req = self.request_table()
        duration_s = self._t_end_s if self._t_end_s > 0 else math.nan
        summary: dict[str, Any] = {"requests": len(req)}
        fin = req[req["status"] == "finished"]
        summary["requests_finished"] = len(fin)
        summary["requests_in_flight"] = int(req["status"].isin(["in_flight", "unfinished"]).sum())
        ok = (fin["ttft_ue_s"] <= self.slo.ttft_s) & (
            fin["tpot_ue_s"].isna() | (fin["tpot_ue_s"] <= self.slo.tpot_s)
        )
        summary["slo_attainment"] = float(ok.sum() / len(req)) if len(req) else math.nan
        summary["goodput_rps"] = float(ok.sum()) / duration_s
        for col in ("ttft_ue_s", "tpot_ue_s", "e2e_ue_s"):
            summary.update(_stats(col.removesuffix("_s"), fin[col].to_numpy()))
        for tier in TIERS:
            sub = fin[fin["tier"] == tier]
            summary[f"share_{tier}"] = float((req["tier"] == tier).mean()) if len(req) else 0.0
            summary.update(_stats(f"ttft_ue_{tier}", sub["ttft_ue_s"].to_numpy()))
        for tier, replicas in self.servers.items():
            util = [s.busy_s / duration_s for s in replicas]
            summary[f"utilization_{tier}"] = float(np.mean(util)) if util else math.nan
        if self.devices:
            util = [d.busy_s / duration_s for d in self.devices.values()]
            summary["utilization_local"] = float(np.mean(util))
            summary["device_energy_j"] = float(
                sum(d.active_energy_j for d in self.devices.values())
            )
        summary["tx_energy_j"] = float(req["tx_energy_j"].sum()) if len(req) else 0.0
        tables: dict[str, pd.DataFrame] = {"requests": req}
        spec = [j for _tier, j in self.journeys if isinstance(j, SpeculativeJourneys)]
        if spec:  # speculative rounds (issue 11): one row per round, and their metrics
            spec_res = speculative_results(spec)
            tables.update(spec_res.tables)
            summary.update(spec_res.summary)
        tables["offload"] = self.offloader.results().tables["offload"]
        if self.links:
            now = self._t_end_s
            tables["links"] = pd.DataFrame([{"link": lk.name, **lk.summary(now)}
                                            for lk in self.links])  # fmt: skip
        server_rows = []
        for tier, replicas in self.servers.items():
            for s in replicas:
                res = s.results(self.slo.ttft_s, self.slo.tpot_s).summary
                server_rows.append({"tier": tier, "server": s.name, **res})
        if server_rows:
            tables["servers"] = pd.DataFrame(server_rows)
        return RunResult(tables=tables, summary=summary)


def _stats(prefix: str, x: np.ndarray) -> dict[str, float]:
    """Mean, p50, p90, p99 of ``x`` (s) under ``<prefix>_<stat>_s`` (nan when empty)."""
    x = x[~np.isnan(x)] if x.size else x
    if not x.size:
        return {f"{prefix}_{k}_s": math.nan for k in ("mean", "p50", "p90", "p99")}
    p50, p90, p99 = np.quantile(x, [0.5, 0.9, 0.99])
    return {
        f"{prefix}_mean_s": float(x.mean()),
        f"{prefix}_p50_s": float(p50),
        f"{prefix}_p90_s": float(p90),
        f"{prefix}_p99_s": float(p99),
    }
