"""Fixtures of the io tests: small label maps and the affines of the orientations we must handle."""

from __future__ import annotations

import numpy as np
import pytest
from io_files import rotation_z


@pytest.fixture
def label_block() -> np.ndarray:
    """``(I, J, K)`` = (7, 6, 5) float32 label map with 4 classes and no symmetry (every flip shows)."""
    rng = np.random.default_rng(7)
    return rng.integers(0, 4, size=(7, 6, 5)).astype(np.float32)


@pytest.fixture
def ras_affine() -> np.ndarray:
    """Axis-aligned RAS+ grid, anisotropic spacing, non-zero origin."""
    return np.array([[0.8, 0, 0, -20.0], [0, 0.7, 0, 15.0], [0, 0, 2.5, 40.0], [0, 0, 0, 1]])


@pytest.fixture
def lps_affine() -> np.ndarray:
    """Axis-aligned LPS-stored grid (i to the left, j to the posterior), as DICOM converters write it."""
    return np.array([[-0.8, 0, 0, 20.0], [0, -0.7, 0, 30.0], [0, 0, 2.5, -12.0], [0, 0, 0, 1]])


@pytest.fixture
def oblique_affine() -> np.ndarray:
    """A sagittal-ish permuted grid rotated by 17 degrees: oblique, but clearly closest to one orientation."""
    permuted = np.array([[0, 0, -1.1, 30.0], [0.9, 0, 0, -10.0], [0, 2.0, 0, 5.0], [0, 0, 0, 1]])
    return rotation_z(17.0) @ permuted
