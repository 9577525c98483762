from __future__ import annotations

import pytest

from edgetwin.kernels.models import ModelSpec


@pytest.fixture
def tiny_model() -> ModelSpec:
    """A very small Llama-style model (GQA 4:2) so that tests run in milliseconds."""
    return ModelSpec("tiny", "test/tiny", 64, 2, 4, 2, 16, 128, 256)
