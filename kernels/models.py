"""Real transformer dimensions of the models that ``kernels/`` profiles.

The numbers are the published Hugging Face ``config.json`` values of each checkpoint
(``hidden_size``, ``num_hidden_layers``, ``num_attention_heads``, ``num_key_value_heads``,
``intermediate_size``, ``vocab_size``, ``tie_word_embeddings``; ``head_dim = hidden_size /
num_attention_heads``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ModelSpec:
    """Dimensions of one decoder-only transformer (Llama-style: GQA attention, SwiGLU MLP).

    Attributes:
        model_id: Registry id, e.g. ``"smollm-135m"``.
        hf_name: Hugging Face repository the dimensions come from.
        hidden_size: Model width d.
        n_layers: Number of decoder layers.
        n_heads: Number of query heads H.
        n_kv_heads: Number of key/value heads (GQA groups); equals ``n_heads`` for MHA.
        head_dim: Per-head width.
        intermediate_size: SwiGLU MLP width I (gate and up are each d x I).
        vocab_size: Vocabulary size V (LM head is d x V).
        tie_embeddings: The LM head shares the input embedding's weights
            (``tie_word_embeddings`` of the checkpoint's config; SmolLM ties them).
    """

    model_id: str
    hf_name: str
    hidden_size: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        for name in (
            "hidden_size",
            "n_layers",
            "n_heads",
            "n_kv_heads",
            "head_dim",
            "intermediate_size",
            "vocab_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{self.model_id}: {name} must be >= 1, got {getattr(self, name)}")
        if not isinstance(self.tie_embeddings, bool):
            raise ValueError(
                f"{self.model_id}: tie_embeddings must be a bool, got {self.tie_embeddings!r}"
            )
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"{self.model_id}: n_heads ({self.n_heads}) must be a multiple of "
                f"n_kv_heads ({self.n_kv_heads})"
            )

    @property
    def q_size(self) -> int:
        """Width of the query projection output, H * head_dim."""
        return self.n_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of one of the key/value projection outputs, n_kv_heads * head_dim."""
        return self.n_kv_heads * self.head_dim


MODELS: Final[dict[str, ModelSpec]] = {
    m.model_id: m
    for m in (
        # id, HF repo, d, L, H, H_kv, d_h, I, V, tie_word_embeddings (default False)
        ModelSpec("smollm-135m", "HuggingFaceTB/SmolLM-135M", 576, 30, 9, 3, 64, 1536, 49152, True),
        ModelSpec(
            "smollm-360m", "HuggingFaceTB/SmolLM-360M", 960, 32, 15, 5, 64, 2560, 49152, True
        ),
        ModelSpec(
            "smollm-1.7b", "HuggingFaceTB/SmolLM-1.7B", 2048, 24, 32, 32, 64, 8192, 49152, True
        ),
        ModelSpec("llama-2-7b", "meta-llama/Llama-2-7b-hf", 4096, 32, 32, 32, 128, 11008, 32000),
        ModelSpec("llama-3.1-8b", "meta-llama/Llama-3.1-8B", 4096, 32, 32, 8, 128, 14336, 128256),
        ModelSpec("qwen2.5-7b", "Qwen/Qwen2.5-7B", 3584, 28, 28, 4, 128, 18944, 152064),
    )
}


def get_model(model_id: str) -> ModelSpec:
    """Return the registered model with this id.

    Raises:
        ValueError: Unknown id; the message lists the known ids.
    """
    try:
        return MODELS[model_id]
    except KeyError:
        raise ValueError(f"unknown model id {model_id!r}; known: {sorted(MODELS)}") from None
