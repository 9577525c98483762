"""The single-agent Gymnasium envs train with Ray RLlib's PPO (issue 13, part 2)."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.rllib")

from edgetwin.agents.rl.rllib_export import gym_ppo_config, ray_init_kwargs  # noqa: E402

CASES = {
    "edgetwin/AdapterCache-v0": {"n_epochs": 6},
    "edgetwin/DraftLength-v0": {"overrides": {"duration_s": 3.0}},
}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(**ray_init_kwargs(1))
    yield
    ray.shutdown()


@pytest.mark.parametrize("env_id", list(CASES))
def test_one_ppo_iteration_samples_the_env_and_updates_the_module(local_ray, env_id):
    algo = gym_ppo_config(env_id, CASES[env_id], train_batch_size=32, minibatch_size=16).build()
    try:
        module = algo.get_module()
        before = {k: v.detach().clone() for k, v in module.state_dict().items()}
        result = algo.train()
        sampled = result["env_runners"]["num_env_steps_sampled_lifetime"]
        assert sampled >= 32
        after = (
            module.state_dict() if algo.get_module() is module else algo.get_module().state_dict()
        )
        moved = max(float((after[k] - v).abs().max()) for k, v in before.items())
        assert moved > 0.0  # the learner took gradient steps on the sampled batch
        assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
    finally:
        algo.stop()
