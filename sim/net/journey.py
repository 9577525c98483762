"""The request's journey: prompt up the links, served, tokens streamed back down, timed at the UE.

``DESIGN.md`` ("The request's journey"): a UE's prompt becomes a message of
``prompt_tokens × bytes_per_token + request_overhead_bytes`` bytes that crosses the uplink hops
in order (the NR uplink, then backhaul / WAN links), reaches the server, is served (queue,
prefill, decode), and its tokens come back in messages of ``token_chunk`` tokens
(``token_chunk × bytes_per_token + chunk_overhead_bytes`` each) over the downlink hops. The
UE's TTFT is the time to its first *received* token; its TPOT the mean gap between received
tokens.

Every timestamp is kept, so each request's end-to-end time splits exactly (the terms telescope)::

    e2e = t_up + t_queue + t_prefill + t_decode + t_down
    t_up     = server arrival - created             (all uplink hops)
    t_queue  = first scheduled - server arrival
    t_prefill = first token at the server - first scheduled
    t_decode = last token at the server - first token at the server
    t_down   = last token at the UE - last token at the server   (all downlink hops)

A hop is anything with ``name`` and ``send(message) -> simpy.Event`` (fired with the message on
delivery; a lost message has a hop with ``lost`` set): a :class:`~edgetwin.sim.net.link.WiredLink`,
an :class:`IdealLink`, and the NR radio :class:`~edgetwin.sim.net.radio_hop.RadioHop`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import simpy
from pydantic import Field

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.metrics.summary import RunResult
from edgetwin.sim.net.message import Hop, Message
from edgetwin.sim.workload.request import Request

__all__ = ["Carrier", "IdealLink", "JourneyConfig", "Journeys"]


class Carrier(Protocol):
    """A hop a message can cross."""

    name: str

    def send(self, msg: Message) -> simpy.Event:
        """Put ``msg`` on the hop now; the event fires with ``msg`` on delivery (or loss)."""
        ...

    def estimate_s(self, bits: int, ue: str | None = None) -> float:
        """Expected delivery time of ``bits`` sent now (s), for offloading decisions.

        ``ue`` is the UE at the message's end; hops whose delay depends on it (the radio) use it.
        """
        ...


class IdealLink:
    """A hop with no delay and no limit (an ideal radio, a co-located server)."""

    def __init__(self, env: simpy.Environment, name: str = "ideal") -> None:
        self.env = env
        self.name = name

    def send(self, msg: Message) -> simpy.Event:
        """Deliver ``msg`` now (a zero-delay event, so the sender's step completes first)."""
        now = float(self.env.now)
        msg.hops.append(Hop(self.name, now, now, now, now))
        return self.env.timeout(0.0, value=msg)

    def estimate_s(self, bits: int, ue: str | None = None) -> float:
        """No delay."""
        return 0.0


class JourneyConfig(StrictConfig):
    """How requests and tokens become bytes.

    Attributes:
        bytes_per_token: Bytes of text per token (≈ 4 for English with a BPE vocabulary).
        request_overhead_bytes: HTTP request and TLS framing per prompt, bytes.
        token_chunk: Tokens per downlink message (1: each token streamed on its own).
        chunk_overhead_bytes: Framing per token message (server-sent event + TLS record), bytes.
    """

    bytes_per_token: float = Field(4.0, gt=0, le=1e4)
    request_overhead_bytes: int = Field(600, ge=0, le=10**7)
    token_chunk: int = Field(1, ge=1, le=100_000)
    chunk_overhead_bytes: int = Field(60, ge=0, le=10**7)


@dataclass(slots=True)
class _Record:
    """UE-side state of one request (times in s, ``nan`` until they happen)."""

    request: Request
    created_s: float
    ue: str
    pending_tokens: int = 0
    received_tokens: int = 0
    first_token_ue_s: float = math.nan
    last_token_ue_s: float = math.nan
    last_token_server_s: float = math.nan
    status: str = "in_flight"
    up: Message | None = None
    last_down: Message | None = None  # the chunk with the last token
    done: simpy.Event | None = None


class Journeys:
    """Requests of UEs sent to one serving target over hops, and their tokens back.

    Args:
        env: The SimPy environment.
        name: Component name.
        submit: The serving target, e.g. ``LLMServer.submit`` or a router's; returns whether the
            request was accepted. The server must call :meth:`on_token` for each sampled token
            (``LLMServer(on_token=journeys.on_token)``).
        up: Uplink hops, in order from the UE.
        down: Downlink hops, in order from the server.
        config: Bytes per token, overheads, token chunking.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        submit: Callable[[Request], bool],
        up: Sequence[Carrier],
        down: Sequence[Carrier],
        config: JourneyConfig | None = None,
    ) -> None:
        self.env = env
        self.name = name
        self.submit_to_server = submit
        self.up = list(up)
        self.down = list(down)
        self.config = config or JourneyConfig()
        self.records: dict[int, _Record] = {}

    # ------------------------------------------------------------------ component
    def start(self) -> None:
        """Nothing to start: journeys begin with :meth:`send`."""

    def finalize(self, now_s: float) -> None:
        """Nothing to close: unfinished journeys keep ``in_flight``."""

    # ------------------------------------------------------------------ uplink
    def send(self, request: Request, ue: str = "ue") -> simpy.Event:
        """The UE ``ue`` sends ``request`` now.

        Returns:
            An event fired with the request when its journey ends: every token received, or
            lost / rejected on the way (its status says which).
        """
        if request.id in self.records:
            raise ValueError(f"{self.name}: request id {request.id} sent twice")
        cfg = self.config
        rec = _Record(request, float(self.env.now), ue, done=self.env.event())
        self.records[request.id] = rec
        n_bytes = request.prompt_tokens * cfg.bytes_per_token + cfg.request_overhead_bytes
        rec.up = Message(_bits(n_bytes), ue, "server", rec.created_s, "prompt", request)
        self.env.process(self._uplink(rec))
        assert rec.done is not None
        return rec.done

    def _uplink(self, rec: _Record) -> simpy.events.ProcessGenerator:
        msg = rec.up
        assert msg is not None
        for hop in self.up:
            yield hop.send(msg)
            if msg.lost:
                rec.status = f"lost uplink ({msg.lost})"
                _end(rec)
                return
        rec.request.arrival_s = float(self.env.now)
        if not self.submit_to_server(rec.request):
            rec.status = "rejected"
            _end(rec)

    # ------------------------------------------------------------------ downlink
    def on_token(self, request: Request) -> None:
        """The server sampled a token of ``request``: send a chunk when one is full or last."""
        rec = self.records.get(request.id)
        if rec is None:  # not a journey of ours (other traffic on the same server)
            return
        rec.pending_tokens += 1
        last = request.n_generated >= request.output_tokens
        if last:
            rec.last_token_server_s = float(self.env.now)
        if rec.pending_tokens >= self.config.token_chunk or last:
            n, rec.pending_tokens = rec.pending_tokens, 0
            cfg = self.config
            n_bytes = n * cfg.bytes_per_token + cfg.chunk_overhead_bytes
            msg = Message(_bits(n_bytes), "server", rec.ue, float(self.env.now), "tokens", n)
            if last:
                rec.last_down = msg
            self.env.process(self._downlink(rec, msg))

    def _downlink(self, rec: _Record, msg: Message) -> simpy.events.ProcessGenerator:
        for hop in self.down:
            yield hop.send(msg)
            if msg.lost:
                rec.status = f"lost downlink ({msg.lost})"
                _end(rec)
                return
        now = float(self.env.now)
        if rec.received_tokens == 0:
            rec.first_token_ue_s = now
        rec.received_tokens += int(msg.payload)
        # out-of-order links (in_order=False) may deliver an earlier chunk last
        rec.last_token_ue_s = (
            now if math.isnan(rec.last_token_ue_s) else max(rec.last_token_ue_s, now)
        )
        if rec.received_tokens == rec.request.output_tokens and rec.status == "in_flight":
            rec.status = "finished"
            _end(rec)

    def estimate_s(self, request: Request, ue: str | None = None) -> tuple[float, float]:
        """Expected (uplink, downlink) times of ``request`` sent now by ``ue`` (s).

        Its prompt up every hop, then its first token chunk down every hop; the server's time
        is not included.
        """
        cfg = self.config
        up = _bits(request.prompt_tokens * cfg.bytes_per_token + cfg.request_overhead_bytes)
        n = min(cfg.token_chunk, request.output_tokens)
        down = _bits(n * cfg.bytes_per_token + cfg.chunk_overhead_bytes)
        return (
            sum(h.estimate_s(up, ue) for h in self.up),
            sum(h.estimate_s(down, ue) for h in self.down),
        )

    # ------------------------------------------------------------------ results
    def table(self) -> pd.DataFrame:
        """One row per request: every timestamp (s), the breakdown (s), UE TTFT/TPOT/E2E (s)."""
        return journey_frame([journey_row(rec) for rec in self.records.values()])

    def results(self) -> RunResult:
        """``journeys`` table and UE-side headline metrics (s)."""
        df = self.table()
        done = df[df["status"] == "finished"] if len(df) else df
        summary: dict[str, float] = {"journeys": float(len(df)), "finished": float(len(done))}
        for col in ("ttft_ue_s", "tpot_ue_s", "e2e_ue_s"):
            x = done[col].dropna().to_numpy() if len(done) else np.zeros(0)
            summary[f"{col.removesuffix('_s')}_mean_s"] = float(x.mean()) if len(x) else math.nan
            summary[f"{col.removesuffix('_s')}_p90_s"] = (
                float(np.quantile(x, 0.9)) if len(x) else math.nan
            )
        return RunResult(tables={"journeys": df}, summary=summary)


def journey_row(rec: Any) -> dict[str, Any]:
    """A journey record's timestamps (s), its breakdown (s) and per-hop times (s), as a row.

    Args:
        rec: A journey record (``request``, ``ue``, ``status``, the UE-side timestamps, the
            prompt's ``up`` message and the last token chunk's ``last_down`` message).
    """
    r = rec.request
    row: dict[str, Any] = {
        "id": r.id,
        "ue": rec.ue,
        "status": rec.status,
        "prompt_tokens": r.prompt_tokens,
        "output_tokens": r.output_tokens,
        "received_tokens": rec.received_tokens,
        "created_s": rec.created_s,
        "server_arrival_s": r.arrival_s,
        "first_scheduled_s": r.first_scheduled_s,
        "first_token_server_s": r.first_token_s,
        "last_token_server_s": rec.last_token_server_s,
        "first_token_ue_s": rec.first_token_ue_s,
        "last_token_ue_s": rec.last_token_ue_s,
        "t_up_s": r.arrival_s - rec.created_s,
        "t_queue_s": r.first_scheduled_s - r.arrival_s,
        "t_prefill_s": r.first_token_s - r.first_scheduled_s,
        "t_decode_s": rec.last_token_server_s - r.first_token_s,
        "t_down_s": rec.last_token_ue_s - rec.last_token_server_s,
    }
    if rec.up is not None:  # per-hop time of the prompt
        for hop in rec.up.hops:
            row[f"t_up_{hop.link}_s"] = hop.t_delivered_s - hop.t_enqueued_s
    if rec.last_down is not None:  # per-hop time of the last token's chunk: t_down
        for hop in rec.last_down.hops:
            row[f"t_down_{hop.link}_s"] = hop.t_delivered_s - hop.t_enqueued_s
    return row


def journey_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows of :func:`journey_row` as a table, with UE TTFT, TPOT and E2E (s) added."""
    df = pd.DataFrame(rows)
    if len(df):
        df["ttft_ue_s"] = df["first_token_ue_s"] - df["created_s"]
        df["e2e_ue_s"] = df["last_token_ue_s"] - df["created_s"]
        gaps = (df["last_token_ue_s"] - df["first_token_ue_s"]) / (df["received_tokens"] - 1)
        df["tpot_ue_s"] = gaps.where(df["received_tokens"] > 1)
    return df


def _end(rec: _Record) -> None:
    """Fire the journey's end event once."""
    if rec.done is not None and not rec.done.triggered:
        rec.done.succeed(rec.request)


def _bits(n_bytes: float) -> int:
    """Whole bits of ``n_bytes`` bytes (at least 1)."""
    return max(1, math.ceil(8 * n_bytes))
