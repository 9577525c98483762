from __future__ import annotations

import dataclasses

import pytest

from edgetwin.kernels.models import MODELS, ModelSpec, get_model


def test_smollm_135m_published_dims():
    m = get_model("smollm-135m")
    assert (m.hidden_size, m.n_layers, m.n_heads, m.n_kv_heads) == (576, 30, 9, 3)
    assert (m.head_dim, m.intermediate_size, m.vocab_size) == (64, 1536, 49152)


def test_llama31_8b_published_dims():
    m = get_model("llama-3.1-8b")
    assert (m.hidden_size, m.n_layers, m.n_heads, m.n_kv_heads) == (4096, 32, 32, 8)
    assert (m.intermediate_size, m.vocab_size, m.head_dim) == (14336, 128256, 128)


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_registry_consistent(model_id):
    m = MODELS[model_id]
    assert m.model_id == model_id
    assert m.n_heads % m.n_kv_heads == 0
    assert m.q_size == m.hidden_size  # all registered models have H * d_h = d


def test_all_expected_ids():
    assert set(MODELS) == {
        "smollm-135m",
        "smollm-360m",
        "smollm-1.7b",
        "llama-2-7b",
        "llama-3.1-8b",
        "qwen2.5-7b",
    }


def test_unknown_id_lists_known():
    with pytest.raises(ValueError, match="smollm-135m"):
        get_model("gpt-5")


def test_frozen_and_validated():
    m = get_model("smollm-135m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.hidden_size = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="multiple"):
        ModelSpec("bad", "x", 64, 1, 4, 3, 16, 128, 100)


def test_sim_side_model_table_matches_the_kernel_specs():
    # edgetwin.sim keeps a numpy-side copy of the dimensions (it must not import kernels/);
    # the two must never drift apart.
    from edgetwin.kernels.models import MODELS
    from edgetwin.sim.compute.cost_model import MODEL_DIMS

    for model_id, spec in MODELS.items():
        d = MODEL_DIMS[model_id]
        assert (d.hidden, d.layers, d.heads, d.kv_heads, d.head_dim, d.intermediate, d.vocab) == (
            spec.hidden_size, spec.n_layers, spec.n_heads, spec.n_kv_heads, spec.head_dim,
            spec.intermediate_size, spec.vocab_size,
        )  # fmt: skip
