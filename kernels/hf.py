"""Hugging Face ``transformers``, the optional reference framework: import it and build configs.

``transformers`` is an optional dependency (``pip install 'edgetwin[validate]'``). It is used by
whole-model validation (``validate.py``) and by the ``transformers`` framework of the
``decoder_layer`` operator (``ops/layer.py``); without it :func:`classes` raises
:class:`TransformersMissingError`, one line naming the install command.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edgetwin.kernels.models import ModelSpec

#: What to install when transformers is missing.
INSTALL_HINT: Final[str] = "pip install 'edgetwin[validate]'"


class TransformersMissingError(ImportError):
    """Hugging Face ``transformers`` is not installed (the ``validate`` extra)."""


@dataclass(frozen=True)
class HFClasses:
    """The pieces of ``transformers`` EdgeTwin uses (imported once)."""

    version: str
    config_cls: Any
    model_cls: Any
    cache_cls: Any
    layer_cls: Any
    rotary_cls: Any


@contextlib.contextmanager
def kernels_unshadowed() -> Iterator[None]:
    """Hide this checkout's root from ``sys.path`` while transformers is imported.

    transformers 5 imports the Hugging Face ``kernels`` package by that top-level name; in a
    source checkout of EdgeTwin this package's folder is also called ``kernels/``, and when the
    checkout's root is on ``sys.path`` (``python -m ...`` or ``python -c`` run from it) Python
    finds ours first and the import fails. The installed ``edgetwin.kernels`` is unaffected.
    """
    root = Path(__file__).resolve().parent.parent
    saved = list(sys.path)

    def is_root(entry: str) -> bool:
        try:
            return Path(entry or os.getcwd()).resolve() == root
        except OSError:
            return False

    if Path(__file__).resolve().parent.name == "kernels" and any(is_root(p) for p in saved):
        sys.path[:] = [p for p in saved if not is_root(p)]
    try:
        yield
    finally:
        sys.path[:] = saved


@functools.lru_cache(maxsize=1)
def classes() -> HFClasses:
    """Import transformers' Llama classes and ``DynamicCache``.

    Raises:
        TransformersMissingError: transformers is not installed.
    """
    try:
        with kernels_unshadowed():
            import transformers
            from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM
            from transformers.models.llama.modeling_llama import (
                LlamaDecoderLayer,
                LlamaRotaryEmbedding,
            )
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "transformers":
            raise
        raise TransformersMissingError(
            f"this needs Hugging Face transformers, which is not installed: {INSTALL_HINT}"
        ) from None
    return HFClasses(
        str(transformers.__version__),
        LlamaConfig,
        LlamaForCausalLM,
        DynamicCache,
        LlamaDecoderLayer,
        LlamaRotaryEmbedding,
    )


def version() -> str:
    """Installed transformers version (raises :class:`TransformersMissingError` without it)."""
    return classes().version


def available() -> bool:
    """Whether transformers can be imported."""
    try:
        classes()
    except TransformersMissingError:
        return False
    return True


def llama_config(spec: ModelSpec, *, max_context: int) -> Any:
    """A ``LlamaConfig`` of ``spec``'s dimensions with SDPA attention (no download).

    Args:
        spec: Model dimensions (width, layers, heads, KV heads, head width, MLP width,
            vocabulary, ``tie_word_embeddings``).
        max_context: Longest sequence the model will see (``max_position_embeddings - 1``).
    """
    return classes().config_cls(
        vocab_size=spec.vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.n_layers,
        num_attention_heads=spec.n_heads,
        num_key_value_heads=spec.n_kv_heads,
        head_dim=spec.head_dim,
        tie_word_embeddings=spec.tie_embeddings,
        max_position_embeddings=max_context + 1,
        use_cache=True,
        attn_implementation="sdpa",
    )


def new_cache(config: Any) -> Any:
    """An empty ``DynamicCache`` for a model of ``config``."""
    cache_cls = classes().cache_cls
    try:
        return cache_cls(config=config)
    except TypeError:  # transformers 4.4x: no config argument
        return cache_cls()


def cache_kwarg(forward: Callable[..., Any]) -> str:
    """Name of the KV-cache argument of a transformers ``forward``.

    Recent transformers 5.x call it ``cache`` (``past_key_values`` is deprecated there), 4.x
    ``past_key_values``.
    """
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def last_logits_kwarg(forward: Callable[..., Any]) -> dict[str, int]:
    """The "LM head on the last position only" argument of a transformers ``forward``.

    ``logits_to_keep`` (``num_logits_to_keep`` in older 4.x); ``{}`` when neither exists.
    """
    params = inspect.signature(forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            return {name: 1}
    return {}
