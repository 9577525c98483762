"""Checkpoint format and TorchPolicy: round trip, errors, actions on real cell observations."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rl_helpers import NR_MAX_UE, NR_N_PRB, random_checkpoint  # noqa: E402

from edgetwin.agents import PolicyRegistryError, make_policy  # noqa: E402
from edgetwin.agents.rl.checkpoint import (  # noqa: E402
    CHECKPOINT_FORMAT,
    load_policy_checkpoint,
    save_policy_checkpoint,
)
from edgetwin.agents.rl.torch_policy import TorchPolicy  # noqa: E402


def _run(policy, decisions, family):
    policy.reset(seed=0)
    return [policy.act(prb if family == "prb" else power) for prb, power in decisions]


@pytest.mark.parametrize("family", ["prb", "power"])
def test_round_trip_gives_identical_actions(tmp_path, nr_checkpoint, nr_decisions, family):
    first = TorchPolicy(nr_checkpoint, family)
    # Re-save what was loaded: the second file must act identically.
    data = load_policy_checkpoint(nr_checkpoint)
    assert data["format"] == CHECKPOINT_FORMAT
    again = save_policy_checkpoint(
        tmp_path / "again.pt",
        max_ue=data["max_ue"],
        n_prb=data["n_prb"],
        actors=data["actors"],
        meta=data["meta"],
    )
    second = TorchPolicy(again, family)
    a, b = _run(first, nr_decisions, family), _run(second, nr_decisions, family)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert [p.name for p in tmp_path.iterdir()] == ["again.pt"]  # no temporary file left


def test_actions_are_valid_and_not_all_equal(nr_checkpoint, nr_decisions):
    prb = make_policy("prb/ppo", path=str(nr_checkpoint))
    power = make_policy("power/ppo", path=str(nr_checkpoint))
    assert prb.policy_id == "prb/ppo"
    assert power.policy_id == "power/ppo"
    for prb_obs, power_obs in nr_decisions:
        alloc = prb.act(prb_obs)
        assert alloc.shape == (1, NR_N_PRB)
        assert alloc.dtype == np.int64
        eligible = prb_obs["has_data"][0] & prb_obs["ue_mask"][0]
        assert eligible[alloc[0]].all()
        watts = power.act(power_obs)
        assert watts.shape == (1, NR_N_PRB)
        assert watts.dtype == np.float64
        assert watts.sum() == pytest.approx(float(power_obs["max_power_w"][0]))
        assert np.ptp(watts[0]) > 0  # the random actor does not play equal power


def test_act_env_returns_the_family_slice(nr_checkpoint, nr_decisions):
    from edgetwin.envs.observation import ObservationBuilder

    power = TorchPolicy(nr_checkpoint, "power")
    env_obs = ObservationBuilder(NR_MAX_UE, NR_N_PRB)(nr_decisions[0][1])
    a = power.act_env(env_obs)
    assert a.shape == (NR_MAX_UE,)
    assert a.dtype == np.float32
    # zero_prb_count: the joint actor ignores this slot's PRB map.
    b = power.act_env({**env_obs, "prb_count": env_obs["prb_count"] * 0 + 3})
    np.testing.assert_array_equal(a, b)


def test_missing_checkpoint_names_the_path():
    with pytest.raises(FileNotFoundError, match=r"/no/such/model\.pt"):
        TorchPolicy("/no/such/model.pt")
    with pytest.raises(FileNotFoundError, match=r"/no/such/model\.pt"):
        load_policy_checkpoint("/no/such/model.pt")
    with pytest.raises(PolicyRegistryError, match=r"--policy prb=ppo:PATH"):
        make_policy("prb/ppo")


def test_bad_files_name_the_path_and_format(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pt.*edgetwin-policy/1"):
        load_policy_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"format": "sb3", "actors": {}}, other)
    with pytest.raises(ValueError, match=r"other\.pt.*'sb3'.*edgetwin-policy/1"):
        load_policy_checkpoint(other)
    with pytest.raises(ValueError, match="allowed: prb, power"):
        save_policy_checkpoint(tmp_path / "x.pt", max_ue=1, n_prb=1, actors={"serve": {}})


def test_family_missing_and_shape_mismatch(tmp_path, nr_checkpoint, nr_decisions):
    data = load_policy_checkpoint(nr_checkpoint)
    only_prb = save_policy_checkpoint(
        tmp_path / "prb_only.pt",
        max_ue=NR_MAX_UE,
        n_prb=NR_N_PRB,
        actors={"prb": data["actors"]["prb"]},
    )
    with pytest.raises(ValueError, match="no 'power' actor; it holds: prb"):
        TorchPolicy(only_prb, "power")
    small = random_checkpoint(tmp_path / "small.pt", max_ue=4, n_prb=NR_N_PRB)
    with pytest.raises(ValueError, match=r"20 UEs.*max_ue=4"):
        TorchPolicy(small, "prb").act(nr_decisions[0][0])
    other_prb = random_checkpoint(tmp_path / "p25.pt", max_ue=NR_MAX_UE, n_prb=25)
    with pytest.raises(ValueError, match=r"51 PRBs.*n_prb=25"):
        TorchPolicy(other_prb, "prb").act(nr_decisions[0][0])


def test_act_restores_the_torch_thread_count(nr_checkpoint, nr_decisions):
    before = torch.get_num_threads()
    TorchPolicy(nr_checkpoint, "prb").act(nr_decisions[0][0])
    assert torch.get_num_threads() == before


def test_per_ue_actor_accepts_per_feature_or_per_position_statistics(
    tmp_path, nr_checkpoint, nr_decisions
):
    """obs_rms [F] (MAPPO) and the same statistics tiled to [max_ue, F] (SB3) act identically."""
    data = load_policy_checkpoint(nr_checkpoint)
    rec = data["actors"]["prb"]
    rms = rec["obs_rms"]
    tiled = {
        "shape": [NR_MAX_UE, len(rms["mean"])],
        "mean": [rms["mean"]] * NR_MAX_UE,
        "var": [rms["var"]] * NR_MAX_UE,
        "count": rms["count"],
    }
    path = save_policy_checkpoint(
        tmp_path / "tiled.pt",
        max_ue=NR_MAX_UE,
        n_prb=NR_N_PRB,
        actors={"prb": {**rec, "obs_rms": tiled}},
    )
    a = _run(TorchPolicy(nr_checkpoint, "prb"), nr_decisions, "prb")
    b = _run(TorchPolicy(path, "prb"), nr_decisions, "prb")
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    # Per-position statistics are used per row: changing row 0's mean changes UE 0's input only.
    from edgetwin.envs.observation import ObservationBuilder

    env_obs = ObservationBuilder(NR_MAX_UE, NR_N_PRB)(nr_decisions[0][0])
    shifted = {**tiled, "mean": [[m + 1.0 for m in rms["mean"]], *tiled["mean"][1:]]}
    path2 = save_policy_checkpoint(
        tmp_path / "shifted.pt",
        max_ue=NR_MAX_UE,
        n_prb=NR_N_PRB,
        actors={"prb": {**rec, "obs_rms": shifted}},
    )
    base = TorchPolicy(path, "prb").act_env(env_obs)
    moved = TorchPolicy(path2, "prb").act_env(env_obs)
    assert base[0] != moved[0]


def test_inconsistent_actor_shapes_are_rejected(tmp_path, nr_checkpoint):
    data = load_policy_checkpoint(nr_checkpoint)
    rec = data["actors"]["prb"]
    bad_rms = {**rec["obs_rms"], "shape": [7], "mean": [0.0] * 7, "var": [1.0] * 7}
    cases = {
        "rms.pt": ({**rec, "obs_rms": bad_rms}, r"obs_rms has shape \[7\]"),
        "slice.pt": ({**rec, "slice": [20, 40]}, r"slice \[20, 40\] is outside the actor's 20"),
    }
    for name, (bad, match) in cases.items():
        path = save_policy_checkpoint(
            tmp_path / name, max_ue=NR_MAX_UE, n_prb=NR_N_PRB, actors={"prb": bad}
        )
        with pytest.raises(ValueError, match=match):
            TorchPolicy(path, "prb")
    two_heads = {**rec, "kwargs": {**rec["kwargs"], "n_heads": 2}, "slice": [20, 40]}
    path = save_policy_checkpoint(
        tmp_path / "heads.pt", max_ue=NR_MAX_UE, n_prb=NR_N_PRB, actors={"prb": two_heads}
    )
    with pytest.raises(ValueError, match="weights do not fit"):  # the state dict has one head
        TorchPolicy(path, "prb")
