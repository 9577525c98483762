"""``edgetwin/DraftLength-v0``: the draft length of one device's speculative rounds (radio).

The env drives the same :class:`~edgetwin.sim.engine.Simulation` a scenario run builds
(:func:`edgetwin.scenarios.builder.build` with the ``draft`` decision point detached): one cell,
its drafting devices, the NR uplink and downlink with background users, the WAN and the cloud
server that verifies every device's drafts in its shared batch (issue 11). The controlled device
is asked for ``k`` at each of its rounds; every other device follows the scenario's draft policy
(:meth:`~edgetwin.sim.net.spec_journey.SpeculativeJourneys.delegate`). There is no second copy
of the physics.

Description
    One step is one round of the controlled device: it drafts ``k`` tokens, sends them up the
    NR uplink and the WAN, the cloud verifies them and the accepted prefix plus one token comes
    back. Between the device's requests (think time, the next session) the simulation runs on
    without asking.

Action Space
    ``Discrete(k_max + 1)``: the draft length ``k``. A ``k`` above this round's cap (``tokens
    left − 1``, feature ``k_cap``) is cut to the cap, and a draft the battery cannot pay for
    is cut by the simulator; ``info["k"]`` is the length drafted.

Observation Space
    ``Box(0, 1e6, (n_features,), float32)``, the features :data:`FEATURES` computed from the
    ``draft`` decision observation (``agents/baselines/draft.py``) by :func:`draft_features`:

    ==========================  ==============================================================
    ``uplink_mbps``             uplink rate estimate (SRS report, OLLA, equal share), Mbit/s
    ``alpha_est``               recent per-token acceptance (EWMA of the device's rounds)
    ``predicted_accept_i``      predicted acceptance of draft position i = 1..k_max (0 beyond
                                the cap), SpecDec++'s acceptance head
    ``k_cap``                   longest draft this round
    ``draft_token_ms``          device time per drafted token, ms
    ``draft_token_j``           device energy per drafted token, J
    ``rtt_ms``                  network round trip besides the payloads' air time, ms
    ``verify_ms_0``             cloud iteration time of a k = 0 round at its batch now, ms
    ``verify_ms_kmax``          ... of a k = k_max round, ms
    ``downlink_ms``             downlink time estimate of the reply, ms
    ``energy_used_j``           draft energy the device has spent so far, J
    ``battery_frac``            battery left / capacity (1 when mains powered)
    ``cloud_running``           requests in the cloud's batch (running + parked)
    ``cloud_waiting``           requests queued at the cloud
    ``tokens_left``             tokens the request still needs
    ==========================  ==============================================================

Rewards
    ``(N − λ·E) / T`` for the round the action started: ``N`` tokens delivered (accepted + 1),
    ``E`` the device's draft energy, J, ``T`` the round's wall time, s, and λ =
    ``energy_price`` (tokens per J, default 0.1): tokens delivered per second net of energy.
    A round cut by the horizon earns 0.

Episode End
    ``truncated`` when the scenario's simulated duration is reached; never ``terminated``.
    Registered with ``max_episode_steps=None``: the simulated horizon is the only time limit.

Arguments:
    ``scenario`` (name or YAML path, default ``specdec_jetson``; one cell, ``speculative.mode:
    distributed``), ``ue`` (the controlled UE, e.g. ``"c0u3"``; default None: the first device
    of the episode to ask for a draft length), ``others`` (policy id of the other devices,
    default: the scenario's ``policies.draft``), ``energy_price`` (finite ≥ 0), ``overrides``
    (dotted scenario overrides, e.g. ``{"duration_s": 3}``). Bad arguments raise one
    ``ValueError`` whose one-line message names the argument and its allowed values;
    ``reset(options=...)`` accepts only ``episode_seed`` (an int in ``0..2**32 − 1``).

Version History
    * v0: initial version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from edgetwin.scenarios.builder import build, make_policies, policy_plan
from edgetwin.scenarios.schema import ScenarioConfig
from edgetwin.sim.decision import DecisionRequest
from edgetwin.sim.net.spec_journey import SpeculativeJourneys

from .prb_power import episode_seed_from, load_cell_scenario

__all__ = [
    "FEATURE_HIGH",
    "DraftEpisode",
    "DraftLengthEnv",
    "draft_features",
    "feature_names",
    "load_specdec_scenario",
]

#: Upper bound of every feature (the observation space is ``[0, FEATURE_HIGH]``).
FEATURE_HIGH = 1e6
_DETACH = ("draft",)


def feature_names(k_max: int) -> list[str]:
    """Names of the observation entries for drafts of at most ``k_max`` tokens."""
    return [
        "uplink_mbps",
        "alpha_est",
        *(f"predicted_accept_{i + 1}" for i in range(k_max)),
        "k_cap",
        "draft_token_ms",
        "draft_token_j",
        "rtt_ms",
        "verify_ms_0",
        "verify_ms_kmax",
        "downlink_ms",
        "energy_used_j",
        "battery_frac",
        "cloud_running",
        "cloud_waiting",
        "tokens_left",
    ]


#: Feature names of the shipped scenarios' ``k_max = 8``.
FEATURES: tuple[str, ...] = tuple(feature_names(8))


def draft_features(
    obs: Mapping[str, Any], k_max: int, battery_capacity_j: float | None = None
) -> np.ndarray:
    """The env observation of one ``draft`` decision observation (see the module docstring).

    Shared by the env and the trained policy (``draft/ppo``), so both see the same numbers.

    Args:
        obs: The ``draft`` observation (``agents/baselines/draft.py``).
        k_max: The scenario's longest draft (the vector has ``k_max + 14`` entries).
        battery_capacity_j: The device's battery, J (None: mains powered, fraction 1).

    Returns:
        float32 [k_max + 14], every entry in ``[0, FEATURE_HIGH]`` (``nan`` → 0).
    """
    k_cap = int(obs["k_max"])
    pred = np.zeros(k_max, np.float64)
    p = np.asarray(obs["predicted_accept"], np.float64)[: min(k_cap, k_max)]
    pred[: p.size] = p
    verify = np.asarray(obs["verify_s"], np.float64)
    battery = float(obs.get("battery_j", math.inf))
    frac = 1.0
    if battery_capacity_j is not None and math.isfinite(battery) and battery_capacity_j > 0:
        frac = battery / battery_capacity_j
    head = [float(obs["uplink_bps"]) / 1e6, float(obs["alpha_est"])]
    tail = [
        float(k_cap),
        1e3 * float(obs["draft_token_s"]),
        float(obs["draft_token_j"]),
        1e3 * float(obs["rtt_s"]),
        1e3 * float(verify[0]),
        1e3 * float(verify[-1]),
        1e3 * float(obs["downlink_s"]),
        float(obs["energy_used_j"]),
        frac,
        float(obs["cloud_running"]),
        float(obs["cloud_waiting"]),
        float(obs["tokens_left"]),
    ]
    x = np.concatenate([head, pred, tail])
    return np.clip(np.nan_to_num(x, nan=0.0, posinf=FEATURE_HIGH), 0.0, FEATURE_HIGH).astype(
        np.float32
    )


def load_specdec_scenario(
    scenario: str | Path | ScenarioConfig, overrides: Mapping[str, Any] | None = None
) -> ScenarioConfig:
    """Load a one-cell scenario with distributed speculative decoding.

    Raises:
        ScenarioError: Unknown scenario or invalid field.
        ValueError: Not a name, path or config; more than one cell; no ``speculative`` section
            in ``distributed`` mode.
    """
    config = load_cell_scenario(scenario, overrides, "the draft-length envs run")
    spec = config.speculative
    if spec is None or spec.mode != "distributed" or "draft" not in config.families:
        mode = None if spec is None else spec.mode
        raise ValueError(
            f"scenario {config.name!r} has speculative.mode={mode!r}; the draft-length envs need "
            f"speculative.mode='distributed' (e.g. scenario 'specdec_jetson' or 'specdec')"
        )
    return config


def _check_price(energy_price: Any) -> float:
    ok = isinstance(energy_price, int | float | np.integer | np.floating) and not isinstance(
        energy_price, bool
    )
    if not ok or not (math.isfinite(energy_price) and energy_price >= 0):
        raise ValueError(
            f"energy_price must be a finite number >= 0 (tokens per J), got {energy_price!r:.80}"
        )
    return float(energy_price)


def drafting_ues(config: ScenarioConfig) -> list[str]:
    """Names of the drafting UEs of a one-cell scenario (``c0u0``, ``c0u1``, ...)."""
    assert config.workload is not None
    return [f"c0u{u}" for u in range(config.workload.llm_ues_per_cell)]


class DraftEpisode:
    """One episode: a freshly built simulation advanced draft decision by draft decision.

    Shared by :class:`DraftLengthEnv` and the PettingZoo env.

    Args:
        config: One-cell distributed speculative scenario.
        seed: Seed of the simulation.
        controlled: UEs whose decisions the caller answers (None: every drafting UE; an empty
            set: the first UE to ask is claimed).
        others: Policy id (or ``ID:ARG`` string) of the UEs not controlled (None: the
            scenario's ``policies.draft``).
        energy_price: λ of the reward, tokens per J.
    """

    def __init__(
        self,
        config: ScenarioConfig,
        seed: int,
        controlled: set[str] | None,
        others: str | None,
        energy_price: float,
    ) -> None:
        self.sim = build(config, seed=seed, detach=_DETACH)
        self.journeys = self.find_journeys(self.sim)
        assert config.speculative is not None
        self.k_max = config.speculative.k_max
        dev = config.nodes.device if config.nodes is not None else None
        self.battery_j = dev.battery_j if dev is not None else None
        self.energy_price = energy_price
        self.controlled = controlled
        if controlled is not None:
            plan = policy_plan(config, {"draft": others} if others is not None else None)
            policy = make_policies({"draft": plan["draft"]})["draft"]
            assert policy is not None
            policy.reset(seed=int(self.sim.streams.fresh("policy.draft").integers(2**31)))
            self.journeys.delegate(policy, self._controls)
        self.request: DecisionRequest[Any, Any] | None = None
        self._seen = 0  # rows of the round table already scored

    @staticmethod
    def find_journeys(sim: Any) -> SpeculativeJourneys:
        """The speculative journeys of a built simulation."""
        system = sim.components.get("system")
        for _tier, j in getattr(system, "journeys", ()):
            if isinstance(j, SpeculativeJourneys):
                return j
        raise ValueError("the scenario has no speculative journeys")  # pragma: no cover

    def _controls(self, ue: str) -> bool:
        assert self.controlled is not None
        if not self.controlled:
            self.controlled.add(ue)  # the first UE to ask is the controlled one
        return ue in self.controlled

    @property
    def ue(self) -> str:
        """UE of the pending decision."""
        assert self.request is not None
        return str(self.request.obs["ue"])

    def run_to_decision(self) -> bool:
        """Run until a controlled UE asks; False once the horizon is reached."""
        self.request = self.sim.run_until_decision("draft")
        return self.request is not None

    def features(self) -> np.ndarray:
        """The env observation of the pending decision (fresh array)."""
        assert self.request is not None
        return draft_features(self.request.obs, self.k_max, self.battery_j)

    def act(self, action: Any) -> int:
        """Answer the pending decision with ``k`` (cut to this round's cap); the ``k`` sent."""
        assert self.request is not None
        k = min(int(action), int(self.request.obs["k_max"]))
        self.request.reply.succeed(k)
        return k

    def new_rounds(self) -> list[tuple[str, float, dict[str, float]]]:
        """``(ue, reward, info)`` of every round finished since the last call."""
        rows = self.journeys.rows
        out = []
        for row in rows[self._seen :]:
            _id, ue, _r, _mode, k, acc, tokens, t0, t7, *_parts, energy = row[:17]
            dur = float(t7) - float(t0)
            reward = (float(tokens) - self.energy_price * float(energy)) / dur if dur > 0 else 0.0
            info = {
                "k": float(k),
                "accepted": float(acc),
                "tokens": float(tokens),
                "round_s": dur,
                "energy_j": float(energy),
            }
            out.append((str(ue), reward, info))
        self._seen = len(rows)
        return out


def check_discrete_action(action: Any, n: int, who: str = "action") -> int:
    """``action`` as an int in ``0..n − 1`` (an int, numpy integer or one-element array)."""
    value = np.asarray(action)
    ok = value.size == 1 and value.dtype.kind in "iu"
    k = int(value.reshape(-1)[0]) if ok else -1
    if isinstance(action, bool) or not 0 <= k < n:
        raise ValueError(f"{who} must be an integer draft length in 0..{n - 1}, got {action!r:.80}")
    return k


class DraftLengthEnv(gym.Env[np.ndarray, np.int64]):
    """Gymnasium env of one device's draft length (see the module docstring)."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gym.Env's attribute)

    def __init__(
        self,
        scenario: str | ScenarioConfig = "specdec_jetson",
        ue: str | None = None,
        others: str | None = None,
        energy_price: float = 0.1,
        overrides: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode {render_mode!r} is not supported; allowed: None")
        self.config = load_specdec_scenario(scenario, overrides)
        ues = drafting_ues(self.config)
        if ue is not None and ue not in ues:
            raise ValueError(
                f"ue {ue!r:.40} is not a drafting UE of scenario {self.config.name!r}; allowed: "
                f"None (the first to ask) or {ues[0]}..{ues[-1]}"
            )
        if others is not None:
            if not isinstance(others, str):
                raise ValueError(f"others must be a draft policy id or None, got {others!r:.80}")
            policy_plan(self.config, {"draft": others})  # a bad id fails here, listing ids
        self.ue = ue
        self.others = others
        self.energy_price = _check_price(energy_price)
        assert self.config.speculative is not None
        self.k_max = self.config.speculative.k_max
        self.feature_names = feature_names(self.k_max)
        n = len(self.feature_names)
        self.observation_space = gym.spaces.Box(0.0, FEATURE_HIGH, (n,), np.float32)
        self.action_space = gym.spaces.Discrete(self.k_max + 1)  # type: ignore[assignment]
        self._episode: DraftEpisode | None = None
        self._last_obs: np.ndarray | None = None

    @property
    def episode(self) -> DraftEpisode | None:
        """The running episode (its simulation and journeys), ``None`` before :meth:`reset`."""
        return self._episode

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Rebuild the simulation and run to the controlled device's first round.

        ``options={"episode_seed": S}`` uses simulation seed ``S`` (``edgetwin run --seed S``).

        Raises:
            ValueError: An option other than ``episode_seed``, or a bad ``episode_seed``.
            RuntimeError: The horizon comes before the controlled device's first round.
        """
        super().reset(seed=seed)
        episode_seed = episode_seed_from(options, self.np_random, strict=True)
        controlled: set[str] = set() if self.ue is None else {self.ue}
        ep = DraftEpisode(self.config, episode_seed, controlled, self.others, self.energy_price)
        self._episode = ep
        if not ep.run_to_decision():
            raise RuntimeError(
                "the scenario reached its horizon before the controlled device's first round "
                "(raise duration_s)"
            )
        ep.new_rounds()  # the other devices' rounds so far score nothing
        obs = ep.features()
        self._last_obs = obs
        return obs, {"episode_seed": episode_seed, "ue": ep.ue}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Draft ``action`` tokens this round, run to the device's next round; reward the round.

        Raises:
            ValueError: An action that is not an integer in ``0..k_max``.
            RuntimeError: Before :meth:`reset` or after the episode was truncated.
        """
        ep = self._episode
        if ep is None or ep.request is None:
            raise RuntimeError("call reset() before step() (and after an episode is truncated)")
        k_asked = check_discrete_action(action, self.k_max + 1)
        ue = ep.ue
        k = ep.act(k_asked)
        alive = ep.run_to_decision()
        reward = 0.0
        info: dict[str, Any] = {
            "k": float(k),
            "accepted": 0.0,
            "tokens": 0.0,
            "round_s": 0.0,
            "energy_j": 0.0,
        }
        for who, r, round_info in ep.new_rounds():
            if who == ue:
                reward += r
                info = round_info
        if alive:
            obs = ep.features()
            self._last_obs = obs
        else:
            assert self._last_obs is not None
            obs = self._last_obs.copy()
        return obs, reward, False, not alive, info
