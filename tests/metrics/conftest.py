"""Fixtures for the metric tests: random smooth label maps, the real pyradiomics volumes and the dev CT."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from scipy import ndimage

_FETCH_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch_data.py"


def _load_fetch_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("napari_smp_fetch_data", _FETCH_SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def random_label_map(
    shape: tuple[int, ...], n_classes: int, seed: int, smooth: float = 2.0, fill: float = 0.35
) -> np.ndarray:
    """Blobby label map ``shape`` with labels 0..n_classes: smoothed noise split into quantile bands.

    Blobs touch the array border on purpose: the border must count as background in both our code and
    the references.
    """
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), smooth)
    out = np.zeros(shape, dtype=np.uint8)
    edges = np.quantile(field, np.linspace(1 - fill, 1, n_classes + 1))
    for k in range(n_classes):
        out[(field >= edges[k]) & (field <= edges[k + 1])] = k + 1
    return out


def perturb(label_map: np.ndarray, seed: int) -> np.ndarray:
    """A plausible 'prediction' of ``label_map``: shifted, one class dilated, one eroded, a far island."""
    rng = np.random.default_rng(seed + 1000)
    shift = tuple(int(s) for s in rng.integers(-2, 3, size=label_map.ndim))
    out = np.roll(label_map, shift, axis=tuple(range(label_map.ndim)))
    labels = [v for v in np.unique(label_map) if v]
    if labels:
        grow = ndimage.binary_dilation(out == labels[0])
        out[grow & (out == 0)] = labels[0]
        shrink = out == labels[-1]
        out[shrink & ~ndimage.binary_erosion(shrink)] = 0
        island = tuple(slice(0, 2) for _ in range(label_map.ndim))
        out[island] = labels[-1]
    return out


@pytest.fixture
def make_pair() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """Factory ``(shape, n_classes, seed) -> (pred, gt)`` of random label-map pairs."""

    def factory(shape: tuple[int, ...], n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        gt = random_label_map(shape, n_classes, seed)
        return perturb(gt, seed), gt

    return factory


@pytest.fixture
def load_fetch_module() -> Callable[[], ModuleType]:
    """Loader of a fresh copy of scripts/fetch_data.py (tests may monkeypatch it freely)."""
    return _load_fetch_module


@pytest.fixture(scope="session")
def pyradiomics_dir() -> Path:
    """Folder of the pyradiomics 3.0.1 volumes; fetched once, skipped only when pip is offline."""
    fetch = _load_fetch_module()
    try:
        return fetch.fetch_pyradiomics()
    except fetch.RegistryUnreachableError as err:
        pytest.skip(f"package registry unreachable, real data not available: {err}")


@pytest.fixture(scope="session")
def dev_ct_dir() -> Path:
    """Folder of the TotalSegmentator development CT; fetched once, skipped only when pip is offline."""
    fetch = _load_fetch_module()
    try:
        return fetch.fetch_dev_ct()
    except fetch.RegistryUnreachableError as err:
        pytest.skip(f"package registry unreachable, real data not available: {err}")
