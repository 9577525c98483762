"""Actor and critic networks: permutation symmetry, padding, SB3 export."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgetwin.agents.rl.features import N_UE_FEATURES  # noqa: E402
from edgetwin.agents.rl.networks import (  # noqa: E402
    CentralCritic,
    FlatActor,
    PerUEActor,
    build_actor,
)

F = N_UE_FEATURES


def _batch(seed=0, b=3, m=7):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, m, F, generator=g)
    mask = torch.rand(b, m, generator=g) < 0.7
    mask[:, 0] = True
    return x, mask


def _scaled(net):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.5)
    return net


def test_per_ue_actor_is_permutation_equivariant_and_ignores_padding():
    actor = _scaled(PerUEActor(F, hidden=32))
    x, mask = _batch()
    out = actor(x, mask)
    assert out.shape == (3, 7)
    assert (out[~mask] == 0).all()
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(actor(x[:, perm], mask[:, perm]), out[:, perm])
    x2 = x.clone()
    x2[~mask] = 1e3 * torch.randn(int((~mask).sum()), F)
    torch.testing.assert_close(actor(x2, mask), out)


def test_per_ue_actor_initial_means_small_and_log_std():
    actor = PerUEActor(F)
    x, mask = _batch(3)
    assert actor(x, mask).abs().max() < 0.2
    assert actor.log_std.shape == (1,)
    assert float(actor.log_std.detach().exp()) == pytest.approx(0.5)


def test_central_critic_is_permutation_invariant_and_ignores_padding():
    critic = _scaled(CentralCritic(F, hidden=32))
    x, mask = _batch(4)
    v = critic(x, mask)
    assert v.shape == (3,)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(critic(x[:, perm], mask[:, perm]), v)
    x2 = x.clone()
    x2[~mask] = 50.0
    torch.testing.assert_close(critic(x2, mask), v)
    assert torch.isfinite(critic(x, torch.zeros_like(mask))).all()  # no UE at all


def test_build_actor_kinds():
    assert isinstance(build_actor("per_ue", {"n_features": F, "hidden": 8}), PerUEActor)
    flat = build_actor("flat", {"in_dim": 10, "out_dim": 3, "hidden": [8, 8]})
    assert isinstance(flat, FlatActor)
    assert flat(torch.zeros(2, 10)).shape == (2, 3)
    with pytest.raises(ValueError, match="allowed: per_ue, flat"):
        build_actor("lstm", {})


def test_flat_actor_from_sb3_reproduces_the_policy_mean():
    from stable_baselines3 import PPO

    from edgetwin.agents.rl.features import FlatFeatures
    from edgetwin.envs.prb_power import PrbPowerEnv

    env = FlatFeatures(PrbPowerEnv(control="joint", overrides={"duration_s": 0.01}))
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=16,
        batch_size=16,
        policy_kwargs={"net_arch": [32, 16], "activation_fn": torch.nn.Tanh},
        seed=0,
        device="cpu",
    )
    _scaled(model.policy.action_net)
    actor = FlatActor.from_sb3(model)
    assert (actor.in_dim, actor.out_dim, actor.hidden) == (20 * F, 40, (32, 16))
    obs = np.random.default_rng(0).normal(size=(4, 20 * F)).astype(np.float32)
    with torch.no_grad():
        expected = model.policy.get_distribution(torch.from_numpy(obs)).distribution.mean
        torch.testing.assert_close(actor(torch.from_numpy(obs)), expected)
    pred, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(
        pred, np.clip(actor(torch.from_numpy(obs)).detach().numpy(), -1, 1), rtol=1e-5, atol=1e-6
    )


def test_per_ue_actor_two_heads_is_equivariant_per_head_and_heads_major():
    actor = _scaled(PerUEActor(F, hidden=32, n_heads=2))
    x, mask = _batch(6)
    out = actor(x, mask)
    assert out.shape == (3, 14)
    heads = out.reshape(3, 2, 7)  # heads-major: [PRB of every UE, power of every UE]
    assert (heads[:, 0][~mask] == 0).all()
    assert (heads[:, 1][~mask] == 0).all()
    assert not torch.allclose(heads[:, 0], heads[:, 1])
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(7))
    permuted = actor(x[:, perm], mask[:, perm]).reshape(3, 2, 7)
    for h in range(2):
        torch.testing.assert_close(permuted[:, h], heads[:, h][:, perm])
    x2 = x.clone()
    x2[~mask] = 1e3 * torch.randn(int((~mask).sum()), F)
    torch.testing.assert_close(actor(x2, mask), out)
    # Head h of the two-head actor is the one-head actor with that output row.
    one = PerUEActor(F, hidden=32)
    state = {k: v.clone() for k, v in actor.state_dict().items()}
    state["head.1.weight"] = state["head.1.weight"][1:2]
    state["head.1.bias"] = state["head.1.bias"][1:2]
    one.load_state_dict(state)
    torch.testing.assert_close(one(x, mask), heads[:, 1])


def test_per_ue_actor_one_head_keeps_its_state_dict_layout():
    torch.manual_seed(0)
    default = PerUEActor(F, hidden=16)
    torch.manual_seed(0)
    explicit = PerUEActor(F, hidden=16, n_heads=1)
    a, b = default.state_dict(), explicit.state_dict()
    assert list(a) == list(b)
    assert a["head.1.weight"].shape == (1, 16)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert build_actor("per_ue", {"n_features": F, "hidden": 8, "n_heads": 2}).n_heads == 2
    with pytest.raises(ValueError, match="n_heads"):
        PerUEActor(F, n_heads=0)
