"""Fixtures for engine tests (helpers live in tiny.py)."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import tiny_config, toy_volume

from napari_smp.config import ModelConfig


@pytest.fixture
def tiny_cfg() -> ModelConfig:
    return tiny_config()


@pytest.fixture
def toy() -> tuple[np.ndarray, np.ndarray]:
    return toy_volume()
