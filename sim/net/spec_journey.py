"""Speculative rounds across the radio: a request's draft/verify loop between a UE and the cloud.

``DESIGN.md`` ("The request's journey") with speculative verification (issue 11). A request's
prompt crosses the uplink hops as in :class:`~edgetwin.sim.net.journey.Journeys`; the cloud
server prefills it in speculative mode and its first token comes back down. Then, until the
request's output is complete, the UE's process runs rounds (``distributed`` mode):

1. it draws the round's acceptance uniforms from the device's stream and asks the ``draft``
   DecisionPoint for ``k`` (observation: see :meth:`SpeculativeJourneys.observe`);
2. the device drafts ``k`` tokens (decode steps of the draft model over the growing context,
   timed and charged by its cost model and power);
3. the draft (:meth:`SpecDecConfig.draft_bits`) crosses the uplink hops (NR PUSCH, WAN);
4. the server verifies it in its batch (:meth:`LLMServer.verify`): ``N_acc`` of ``k`` accepted
   plus one corrected or bonus token, ``N = N_acc + 1`` tokens;
5. the reply (:attr:`SpecDecConfig.reply_bits`) crosses the downlink hops back to the UE.

``k`` is capped at ``tokens left − 1`` so that a round never produces more than the request
needs. Each round is one row of :meth:`SpeculativeJourneys.round_table`, whose terms telescope::

    end − start = t_draft + t_uplink + t_network_up + t_verify_wait + t_verify
                  + t_network_down + t_downlink

and a request's rounds follow one another, so ``e2e = ttft_ue + Σ rounds``.

``fused`` mode runs the same loop inside the cloud (a draft model on the cloud's hardware, no
radio per round) and streams each round's tokens down as plain serving does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import simpy

from edgetwin.sim.compute.acceptance import predict_acceptance
from edgetwin.sim.compute.cost_model import CostModel
from edgetwin.sim.compute.device import Device
from edgetwin.sim.compute.server import LLMServer, VerifyOutcome
from edgetwin.sim.compute.specdec import (
    DRAFT_FAMILY,
    ROUND_COLUMNS,
    DeviceDraftState,
    SpecDecConfig,
    round_summary,
)
from edgetwin.sim.decision import DecisionPoint
from edgetwin.sim.metrics.summary import RunResult
from edgetwin.sim.net.journey import Carrier, JourneyConfig, journey_frame, journey_row
from edgetwin.sim.net.message import Message
from edgetwin.sim.rng import RandomStreams
from edgetwin.sim.workload.request import Request

if TYPE_CHECKING:  # sim never imports agents at runtime (layering)
    from edgetwin.agents.protocol import Policy

__all__ = ["SpeculativeJourneys", "speculative_results"]

_E = np.zeros(0, np.int64)


@dataclass(slots=True)
class _Record:
    """UE-side state of one speculative request (times in s, ``nan`` until they happen)."""

    request: Request
    created_s: float
    ue: str
    server: LLMServer | None = None
    received_tokens: int = 0
    generated_tokens: int = 0  # at the server (fused mode streams ahead of the UE)
    first_token_ue_s: float = math.nan
    last_token_ue_s: float = math.nan
    last_token_server_s: float = math.nan
    status: str = "in_flight"
    up: Message | None = None
    last_down: Message | None = None
    done: simpy.Event | None = None
    device_energy_j: float = 0.0
    rounds: int = 0


class SpeculativeJourneys:
    """Requests of UEs decoded speculatively against cloud servers (see the module docstring).

    It has the interface of :class:`~edgetwin.sim.net.journey.Journeys` (``send``,
    ``estimate_s``, ``table``, ``config``), so the offloader routes cloud requests to it.

    Args:
        env: The SimPy environment.
        name: Component name.
        route: Picks the replica a new request goes to (e.g. a router's choice).
        up: Uplink hops, in order from the UE (the first is the radio).
        down: Downlink hops, in order from the server (the last is the radio).
        config: Prompt and streamed-token sizes (as plain journeys).
        spec: The speculative configuration (mode ``distributed`` or ``fused``).
        streams: The run's random streams (per device: ``specdec.accept.<ue>``,
            ``specdec.predict.<ue>``).
        draft_cost: Cost model of the draft model (on the device, or in the cloud for
            ``fused``): a decode step of batch 1 drafts one token.
        devices: UE name → its device (energy, battery); ``distributed`` mode needs one per UE.
        policy: Inline ``draft`` policy; None leaves the DecisionPoint detached (external).
        uplink_j_per_bit: UE name → its transmit energy per uplink bit so far, J/bit.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        route: Callable[[], LLMServer],
        up: Sequence[Carrier],
        down: Sequence[Carrier],
        config: JourneyConfig,
        spec: SpecDecConfig,
        streams: RandomStreams,
        draft_cost: CostModel,
        devices: Mapping[str, Device] | None = None,
        policy: Policy[Any, Any] | None = None,
        uplink_j_per_bit: Callable[[str], float] | None = None,
    ) -> None:
        if spec.mode not in ("distributed", "fused"):
            raise ValueError(
                f"{name}: speculative journeys run mode 'distributed' or 'fused', got "
                f"{spec.mode!r} (autoregressive: plain journeys)"
            )
        if not up or not down:
            raise ValueError(f"{name}: needs at least one uplink and one downlink hop")
        self.env = env
        self.name = name
        self.route = route
        self.up = list(up)
        self.down = list(down)
        self.config = config
        self.spec = spec
        self.streams = streams
        self.draft_cost = draft_cost
        self.devices = dict(devices or {})
        self.dp: DecisionPoint[dict[str, Any], int] = DecisionPoint(env, DRAFT_FAMILY, policy)
        self.uplink_j_per_bit = uplink_j_per_bit
        self.records: dict[int, _Record] = {}
        self.states: dict[str, DeviceDraftState] = {}
        self.rows: list[list[Any]] = []
        self._step_s: dict[int, float] = {}  # draft step time per context (deterministic)
        self._reply_bits = spec.reply_bits  # the config is frozen: computed once
        self._overhead_bits = spec.draft_bits(0)
        self._others: Policy[Any, Any] | None = None
        self._controls: Callable[[str], bool] | None = None
        # One external decision pending at a time: two UEs asking in the same instant would
        # otherwise fire the detached point's ``requested`` twice before the driver reads it.
        self._asking = simpy.Resource(env, capacity=1)

    def delegate(self, others: Policy[Any, Any], controls: Callable[[str], bool]) -> None:
        """Let the detached ``draft`` point ask only for the UEs that ``controls(ue)`` selects.

        The other UEs' rounds are answered by ``others`` inline (an RL env controlling one device
        while the rest of the cell follows the scenario's draft policy). Without delegation a
        detached point asks for every UE.

        Args:
            others: Policy of the UEs not controlled from outside.
            controls: ``controls(ue)`` is True for a UE whose decisions go to the detached
                point; called at each of a UE's decisions (it may claim a UE on first use).
        """
        self._others = others
        self._controls = controls

    # ------------------------------------------------------------------ component
    def start(self) -> None:
        """Nothing to start: journeys begin with :meth:`send`."""

    def finalize(self, now_s: float) -> None:
        """Nothing to close: unfinished journeys keep ``in_flight``."""

    def on_token(self, request: Request) -> None:
        """Servers' token callback: tokens of speculative requests travel in replies instead."""

    def state_of(self, ue: str) -> DeviceDraftState:
        """The drafting state of ``ue``'s device (made on first use from its own streams)."""
        state = self.states.get(ue)
        if state is None:
            state = DeviceDraftState.create(
                self.spec,
                self.streams.get(f"specdec.accept.{ue}"),
                self.streams.get(f"specdec.predict.{ue}"),
            )
            self.states[ue] = state
        return state

    # ------------------------------------------------------------------ sending
    def send(self, request: Request, ue: str = "ue") -> simpy.Event:
        """The UE ``ue`` sends ``request`` now; the event fires when its journey ends."""
        if request.id in self.records:
            raise ValueError(f"{self.name}: request id {request.id} sent twice")
        if self.spec.mode == "distributed" and ue not in self.devices:
            raise ValueError(f"{self.name}: UE {ue!r} has no device to draft on")
        rec = _Record(request, float(self.env.now), ue, done=self.env.event())
        self.records[request.id] = rec
        run = self._distributed if self.spec.mode == "distributed" else self._fused
        self.env.process(run(rec))
        assert rec.done is not None
        return rec.done

    def estimate_s(self, request: Request, ue: str | None = None) -> tuple[float, float]:
        """Expected (uplink, downlink) times of ``request``'s prompt and first token (s)."""
        cfg = self.config
        up = _bits(request.prompt_tokens * cfg.bytes_per_token + cfg.request_overhead_bytes)
        down = _bits(cfg.bytes_per_token + cfg.chunk_overhead_bytes)
        return (
            sum(h.estimate_s(up, ue) for h in self.up),
            sum(h.estimate_s(down, ue) for h in self.down),
        )

    def _end(self, rec: _Record, status: str) -> None:
        if rec.status == "in_flight":
            rec.status = status
        if rec.done is not None and not rec.done.triggered:
            rec.done.succeed(rec.request)

    def _prompt(self, rec: _Record) -> simpy.events.ProcessGenerator:
        """Prompt up every hop, speculative prefill; returns the server's outcome or None."""
        cfg = self.config
        req = rec.request
        n_bytes = req.prompt_tokens * cfg.bytes_per_token + cfg.request_overhead_bytes
        rec.up = Message(_bits(n_bytes), rec.ue, "server", rec.created_s, "prompt", req)
        for hop in self.up:
            yield hop.send(rec.up)
            if rec.up.lost:
                self._end(rec, f"lost uplink ({rec.up.lost})")
                return None
        req.arrival_s = float(self.env.now)
        rec.server = self.route()
        event = rec.server.submit_speculative(req)
        if event is None:
            self._end(rec, "rejected")
            return None
        outcome = yield event
        rec.generated_tokens = 1
        rec.last_token_server_s = float(self.env.now)
        return outcome

    def _down(self, rec: _Record, msg: Message) -> simpy.events.ProcessGenerator:
        """``msg`` (carrying ``msg.payload`` tokens) down every hop; False if it was lost."""
        for hop in self.down:
            yield hop.send(msg)
            if msg.lost:
                self._end(rec, f"lost downlink ({msg.lost})")
                return False
        now = float(self.env.now)
        if rec.received_tokens == 0:
            rec.first_token_ue_s = now
        rec.received_tokens += int(msg.payload)
        rec.last_token_ue_s = (
            now if math.isnan(rec.last_token_ue_s) else max(rec.last_token_ue_s, now)
        )
        if rec.received_tokens >= rec.request.output_tokens:
            rec.last_down = msg
            self._end(rec, "finished")
        return True

    def _tokens_msg(self, rec: _Record, n: int) -> Message:
        """A streamed-text message of ``n`` tokens to ``rec``'s UE (as plain journeys)."""
        cfg = self.config
        bits = _bits(n * cfg.bytes_per_token + cfg.chunk_overhead_bytes)
        return Message(bits, "server", rec.ue, float(self.env.now), "tokens", n)

    # ------------------------------------------------------------------ decision
    def observe(
        self, rec: _Record, state: DeviceDraftState, draws: np.ndarray, k_cap: int
    ) -> dict[str, Any]:
        """The ``draft`` observation of ``rec``'s next round (``agents/baselines/draft.py``).

        Keys: ``ue`` (the drafting UE's name), ``k_max`` (this round's longest draft:
        ``min(k_max, tokens left − 1)``), ``alpha_est``, ``predicted_accept`` [k_max],
        ``draft_token_s``, ``draft_token_j``,
        ``uplink_bps``, ``bits_per_draft_token``, ``uplink_overhead_bits``,
        ``uplink_j_per_bit``, ``rtt_s`` (wired hops both ways + the uplink's access delay),
        ``verify_s`` [k_max + 1] (the server's iteration time at its current batch),
        ``downlink_s``, ``energy_budget_j_per_token``, ``battery_j``, ``energy_used_j``,
        ``cloud_running`` (running + parked requests), ``cloud_waiting``, ``tokens_left``.
        """
        spec = self.spec
        ue = rec.ue
        req = rec.request
        server = rec.server
        assert server is not None
        probs = state.model.accept_probs(draws)[: spec.k_max]
        predicted = predict_acceptance(probs, spec.predictor.noise_logit_std, state.predict_rng)
        ctx = req.prompt_tokens + rec.generated_tokens
        token_s = self._draft_step_s(ctx)
        device = self.devices.get(ue)
        fused = spec.mode == "fused"
        power = device.config.active_power_w if device is not None and not fused else 0.0
        uplink_bps, rtt_s, downlink_s = math.inf, 0.0, 0.0
        if not fused:
            uplink_bps, rtt_s, downlink_s = self._radio_estimates(ue)
        battery = device.energy_left_j(float(self.env.now)) if device is not None else math.inf
        budget = spec.energy_budget_j_per_token
        return {
            "ue": ue,
            "k_max": k_cap,
            "alpha_est": state.alpha_est,
            "predicted_accept": predicted,
            "draft_token_s": token_s,
            "draft_token_j": power * token_s,
            "uplink_bps": uplink_bps,
            "bits_per_draft_token": float(spec.bits_per_draft_token),
            "uplink_overhead_bits": float(8 * spec.message_overhead_bytes),
            "uplink_j_per_bit": (
                self.uplink_j_per_bit(ue) if self.uplink_j_per_bit and not fused else 0.0
            ),
            "rtt_s": rtt_s,
            "verify_s": server.verify_time_s(req, k_cap),
            "downlink_s": downlink_s,
            "energy_budget_j_per_token": budget if budget is not None else math.inf,
            "battery_j": battery if not fused else math.inf,
            "energy_used_j": state.energy_used_j,
            "cloud_running": len(server.running) + len(server.parked),
            "cloud_waiting": len(server.waiting),
            "tokens_left": req.output_tokens - rec.generated_tokens,
        }

    def _radio_estimates(self, ue: str) -> tuple[float, float, float]:
        """(uplink rate bit/s, RTT s besides the payloads' air time, downlink reply time s)."""
        radio_up, radio_down = self.up[0], self.down[-1]
        group = getattr(radio_up, "group", None)
        index = getattr(radio_up, "ue_index", {})
        rate = math.inf
        if group is not None and ue in index:
            rate = float(group.rate_estimate_bps(*index[ue]))
            rate = rate if rate > 0 and math.isfinite(rate) else 1.0
        rtt = float(getattr(radio_up, "access_delay_s", 0.0))
        rtt += sum(h.estimate_s(self._overhead_bits, ue) for h in self.up[1:])
        rtt += sum(h.estimate_s(self._reply_bits, ue) for h in self.down[:-1])
        down = radio_down.estimate_s(self._reply_bits, ue)
        return rate, rtt, down if math.isfinite(down) else 0.0

    def _draft_step_s(self, ctx: int) -> float:
        """Time of one draft token at context ``ctx`` (a batch-1 decode step), s (memoized)."""
        t = self._step_s.get(ctx)
        if t is None:
            t = float(self.draft_cost.iteration_time_s(_E, _E, np.array([ctx + 1], np.int64)))
            self._step_s[ctx] = t
        return t

    def _draft_s(self, ctx: int, k: int) -> float:
        """Time of drafting ``k`` tokens after ``ctx`` tokens of context, s."""
        return sum(self._draft_step_s(ctx + j) for j in range(k))

    def _decide(
        self, rec: _Record, state: DeviceDraftState, draws: np.ndarray
    ) -> simpy.events.ProcessGenerator:
        """Ask the ``draft`` DecisionPoint for ``k`` (checked against this round's cap)."""
        left = rec.request.output_tokens - rec.generated_tokens
        k_cap = min(self.spec.k_max, left - 1)
        if self.dp.is_inline:
            action = self.dp.decide(self.observe(rec, state, draws, k_cap))
        elif self._controls is not None and not self._controls(rec.ue):
            assert self._others is not None
            action = self._others.act(self.observe(rec, state, draws, k_cap))
        else:  # external: observed once it is this UE's turn to ask
            with self._asking.request() as turn:
                yield turn
                action = yield from self.dp.ask(self.observe(rec, state, draws, k_cap))
        value = np.asarray(action)  # an int, a numpy integer or a one-element array (RL)
        whole = value.size == 1 and value.dtype.kind in "iuf"
        whole = whole and float(value.reshape(-1)[0]).is_integer()
        k = int(value.reshape(-1)[0]) if whole else -1
        if not 0 <= k <= k_cap:
            raise ValueError(
                f"{self.name}: draft action {action!r} for request {rec.request.id} is not a "
                f"draft length; allowed: 0..{k_cap}"
            )
        return k

    # ------------------------------------------------------------------ distributed rounds
    def _distributed(self, rec: _Record) -> simpy.events.ProcessGenerator:
        env = self.env
        spec = self.spec
        req = rec.request
        device = self.devices[rec.ue]
        state = self.state_of(rec.ue)
        state.new_request(spec)
        # the draft model prefills the prompt on the device while the prompt travels
        prefill_s = float(
            self.draft_cost.iteration_time_s(np.array([req.prompt_tokens], np.int64),
                                             np.array([0], np.int64), _E)
        )  # fmt: skip
        device_ready_s = rec.created_s + prefill_s
        rec.device_energy_j += device.spend(prefill_s)
        outcome = yield from self._prompt(rec)
        if outcome is None:
            return
        ok = yield from self._down(rec, self._tokens_msg(rec, 1))
        if not ok:
            assert rec.server is not None
            rec.server.abandon(req)
            return
        while rec.generated_tokens < req.output_tokens:
            # --- decide and draft on the device
            t0 = float(env.now)
            if device_ready_s > t0:
                yield env.timeout(device_ready_s - t0)
            # --- a target update: a tight draft is downloaded before the round
            version = spec.target_version_at(float(env.now))
            if state.follow_target(spec, version):
                assert version is not None
                assert spec.draft_coupling.download_bytes is not None
                t_dl = float(env.now)
                model_bits = _bits(spec.draft_coupling.download_bytes)
                msg = Message(model_bits, "server", rec.ue, t_dl, "draft_model", 0)
                for hop in self.down:
                    yield hop.send(msg)
                    if msg.lost:
                        self._end(rec, f"lost downlink ({msg.lost})")
                        assert rec.server is not None
                        rec.server.abandon(req)
                        return
                state.downloaded(spec, version, float(env.now) - t_dl)
                t0 = float(env.now)
            draws = state.model.draw(state.rng)
            k = yield from self._decide(rec, state, draws)
            ctx = req.prompt_tokens + rec.generated_tokens
            k = self._affordable(device, ctx, k)
            draft_s = self._draft_s(ctx, k)
            energy = device.spend(draft_s)
            rec.device_energy_j += energy
            state.energy_used_j += energy
            if draft_s > 0:
                yield env.timeout(draft_s)
            t1 = float(env.now)
            # --- the draft up the NR uplink and the WAN
            bits = spec.draft_bits(k)
            msg = Message(bits, rec.ue, "server", t1, "draft", k)
            for hop in self.up:
                yield hop.send(msg)
                if msg.lost:
                    self._end(rec, f"lost uplink ({msg.lost})")
                    assert rec.server is not None
                    rec.server.abandon(req)  # its KV would otherwise stay parked for good
                    return
            t3 = float(env.now)
            up_edge = msg.hops[1].t_enqueued_s if len(msg.hops) > 1 else t3
            # --- verify in the cloud batch (acceptance drawn at the UE: common random numbers)
            accepted = state.model.accepted(draws, k)
            state.model.advance(draws, accepted)
            assert rec.server is not None
            out: VerifyOutcome = yield rec.server.verify(req, k, accepted)
            t5 = float(env.now)
            rec.generated_tokens += accepted + 1
            rec.last_token_server_s = t5
            # --- the reply down the WAN and the NR downlink
            reply = Message(self._reply_bits, "server", rec.ue, t5, "verify", accepted + 1)
            ok = yield from self._down(rec, reply)
            if not ok:
                rec.server.abandon(req)
                return
            t7 = float(env.now)
            down_edge = reply.hops[-1].t_enqueued_s
            state.observe(k, accepted, spec.alpha_smoothing)
            rec.rounds += 1
            self.rows.append(
                [req.id, rec.ue, rec.rounds, "distributed", k, accepted, accepted + 1, t0, t7,
                 t1 - t0, up_edge - t1, t3 - up_edge, out.start_s - t3, t5 - out.start_s,
                 down_edge - t5, t7 - down_edge, energy, bits, out.kv_tokens, out.kv_blocks]
            )  # fmt: skip

    def _affordable(self, device: Device, ctx: int, k: int) -> int:
        """``k`` cut to the draft tokens the battery still pays for (all without a battery)."""
        left = device.energy_left_j(float(self.env.now))
        if not math.isfinite(left) or k == 0:
            return k
        power = device.config.active_power_w
        spent = 0.0
        for j in range(k):
            spent += power * self._draft_step_s(ctx + j)
            if spent > left:
                return j
        return k

    # ------------------------------------------------------------------ fused rounds
    def _fused(self, rec: _Record) -> simpy.events.ProcessGenerator:
        env = self.env
        spec = self.spec
        req = rec.request
        state = self.state_of(rec.ue)
        state.new_request(spec)
        outcome = yield from self._prompt(rec)
        if outcome is None:
            return
        env.process(self._down(rec, self._tokens_msg(rec, 1)))
        while rec.generated_tokens < req.output_tokens:
            if rec.status != "in_flight":  # a streamed chunk was lost: stop decoding it
                assert rec.server is not None
                rec.server.abandon(req)
                return
            t0 = float(env.now)
            draws = state.model.draw(state.rng)
            k = yield from self._decide(rec, state, draws)
            draft_s = self._draft_s(req.prompt_tokens + rec.generated_tokens, k)
            if draft_s > 0:
                yield env.timeout(draft_s)
            t1 = float(env.now)
            accepted = state.model.accepted(draws, k)
            state.model.advance(draws, accepted)
            assert rec.server is not None
            out: VerifyOutcome = yield rec.server.verify(req, k, accepted)
            t5 = float(env.now)
            rec.generated_tokens += accepted + 1
            rec.last_token_server_s = t5
            env.process(self._down(rec, self._tokens_msg(rec, accepted + 1)))
            state.observe(k, accepted, spec.alpha_smoothing)
            rec.rounds += 1
            self.rows.append(
                [req.id, rec.ue, rec.rounds, "fused", k, accepted, accepted + 1, t0, t5,
                 t1 - t0, 0.0, 0.0, out.start_s - t1, t5 - out.start_s, math.nan, math.nan,
                 0.0, 0, out.kv_tokens, out.kv_blocks]
            )  # fmt: skip

    # ------------------------------------------------------------------ results
    def round_table(self) -> pd.DataFrame:
        """One row per round (columns :data:`~edgetwin.sim.compute.specdec.ROUND_COLUMNS`)."""
        return pd.DataFrame(self.rows, columns=list(ROUND_COLUMNS))

    def table(self) -> pd.DataFrame:
        """One row per request, with the columns of ``Journeys.table`` plus draft energy."""
        return journey_frame(
            [
                {
                    **journey_row(rec),
                    "device_energy_j": rec.device_energy_j,
                    "spec_rounds": rec.rounds,
                }
                for rec in self.records.values()
            ]
        )

    def results(self) -> RunResult:
        """``spec_rounds`` table and the round metrics (:func:`round_summary`)."""
        rounds = self.round_table()
        summary = round_summary(rounds)
        if self.spec.target_updates:  # the draft's cost of following an evolving target
            summary["spec_draft_downloads"] = float(sum(s.downloads for s in self.states.values()))
            summary["spec_draft_download_s"] = float(
                sum(s.download_s for s in self.states.values())
            )
        return RunResult(tables={"spec_rounds": rounds}, summary=summary)


def speculative_results(journeys: Sequence[SpeculativeJourneys]) -> RunResult:
    """The ``spec_rounds`` table and round metrics of several journeys (e.g. per tier).

    Metrics: :func:`~edgetwin.sim.compute.specdec.round_summary`, plus, when the target
    evolves, ``spec_draft_downloads`` and ``spec_draft_download_s`` (tight drafts re-fetched).
    """
    rounds = pd.concat([j.round_table() for j in journeys], ignore_index=True)
    summary = round_summary(rounds)
    if any(j.spec.target_updates for j in journeys):
        states = [st for j in journeys for st in j.states.values()]
        summary["spec_draft_downloads"] = float(sum(st.downloads for st in states))
        summary["spec_draft_download_s"] = float(sum(st.download_s for st in states))
    return RunResult(tables={"spec_rounds": rounds}, summary=summary)


def _bits(n_bytes: float) -> int:
    """Whole bits of ``n_bytes`` bytes (at least 1)."""
    return max(1, math.ceil(8 * n_bytes))
