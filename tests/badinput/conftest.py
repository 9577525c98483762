"""Fixtures of the bad-input corpus (see ``corpus_harness.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus_harness import user_files


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch working directory holding files a user made."""
    return user_files(tmp_path)
