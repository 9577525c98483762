"""An evolving target (FlexSpec, arXiv 2601.00644): frozen drafts lose acceptance, tight ones
are re-downloaded over the downlink."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edgetwin.scenarios import build
from edgetwin.scenarios.errors import ScenarioError
from edgetwin.scenarios.load import load_scenario

UPDATE_S = 4.0
ALPHA = {"v1": 0.75, "v2": 0.45}
BASE = {
    "duration_s": 9.0,
    "speculative.acceptance": {
        "kind": "versioned", "alpha_by_version": ALPHA, "version": "v1", "k_max": 8,
    },
    "speculative.target_updates": [{"at_s": UPDATE_S, "version": "v2"}],
}  # fmt: skip
TIGHT = {"kind": "tight", "download_bytes": 2e5, "alpha": 0.75}


def _run(coupling: dict) -> tuple[pd.DataFrame, dict]:
    config = load_scenario("specdec_jetson", {**BASE, "speculative.draft_coupling": coupling})
    sim = build(config, {"draft": "draft/fixed:k=4"}, seed=0)
    sim.run()
    res = sim.results()
    return res.tables["spec_rounds"], res.summary


def _acceptance_ratio(rounds: pd.DataFrame, alpha: float) -> float:
    """Accepted tokens over their i.i.d. expectation Σ_{i≤k} α^i per round (Leviathan 2023)."""
    k = rounds["k"].to_numpy()
    expected = np.array([sum(alpha**i for i in range(1, kk + 1)) for kk in k])
    return float(rounds["accepted"].sum() / expected.sum())


@pytest.fixture(scope="module")
def runs():
    return {"frozen": _run({"kind": "frozen"}), "tight": _run(TIGHT)}


def test_a_frozen_draft_accepts_at_each_versions_rate(runs):
    rounds, summary = runs["frozen"]
    before, after = rounds[rounds.end_s < UPDATE_S], rounds[rounds.start_s >= UPDATE_S]
    assert len(before) > 100
    assert len(after) > 100
    # within ~3 standard errors of a few hundred truncated-geometric rounds
    assert _acceptance_ratio(before, ALPHA["v1"]) == pytest.approx(1.0, abs=0.12)
    assert _acceptance_ratio(after, ALPHA["v2"]) == pytest.approx(1.0, abs=0.15)
    assert summary["spec_draft_downloads"] == 0


def test_a_tight_draft_is_downloaded_once_per_device_then_keeps_its_rate(runs):
    rounds, summary = runs["tight"]
    after = rounds[rounds.start_s >= UPDATE_S]
    drafting_after = after["ue"].nunique()
    assert summary["spec_draft_downloads"] == drafting_after  # one download per device
    # 1.6 Mbit per device down the NR downlink: at least its air time at the cell's peak rate
    assert summary["spec_draft_download_s"] / drafting_after > 1.6e6 / 400e6
    assert _acceptance_ratio(after, TIGHT["alpha"]) == pytest.approx(1.0, abs=0.12)


def test_both_couplings_see_the_same_rounds_before_the_update(runs):
    # common random numbers: the tight draft starts at the rate the frozen one has for v1
    a, b = (r[0] for r in (runs["frozen"], runs["tight"]))
    cols = ["ue", "round", "k", "accepted", "start_s", "end_s"]
    early = [r[r.end_s < UPDATE_S - 0.5][cols].reset_index(drop=True) for r in (a, b)]
    pd.testing.assert_frame_equal(*early)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"speculative.target_updates": [{"at_s": 1.0, "version": "v2"}]}, "need acceptance kind"),
        (
            {**BASE, "speculative.target_updates": [{"at_s": 1.0, "version": "v3"}]},
            "version 'v3' is not in acceptance.alpha_by_version",
        ),
        (
            {**BASE, "speculative.target_updates": [
                {"at_s": 2.0, "version": "v2"}, {"at_s": 1.0, "version": "v1"}]},
            "increasing at_s",
        ),
        ({**BASE, "speculative.draft_coupling": {"kind": "tight"}}, "needs download_bytes"),
    ],
)  # fmt: skip
def test_bad_target_updates_are_one_line_errors(overrides, match):
    with pytest.raises(ScenarioError, match=match) as err:
        load_scenario("specdec_jetson", overrides)
    assert "\n" not in str(err.value)
