"""Fixtures for engine tests (helpers live in tiny.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# tiny.py serves the tests of every stage folder below (training/, inference/, pretraining/)
sys.path.insert(0, str(Path(__file__).parent))
from tiny import tiny_config, toy_volume  # noqa: E402

from napari_smp.config import ModelConfig


@pytest.fixture
def tiny_cfg() -> ModelConfig:
    return tiny_config()


@pytest.fixture
def toy() -> tuple[np.ndarray, np.ndarray]:
    return toy_volume()
