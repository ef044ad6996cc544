"""The demo's and the benchmark's sparse annotation: a few evenly spread, distinct, painted slices."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smp.engine.demo import sparse_annotation


def _slab(first: int, last: int, depth: int = 30) -> np.ndarray:
    labels = np.zeros((depth, 8, 8), np.uint8)
    labels[first : last + 1, 2:6, 2:6] = 1
    labels[first : last + 1, 0, 0] = 2
    return labels


def test_picks_are_evenly_spread_inside_the_labelled_slab() -> None:
    labels = _slab(5, 24)
    sparse, picks = sparse_annotation(labels, 4)
    assert picks == [9, 13, 16, 20]  # linspace(5, 24, 6)[1:-1] = 8.8, 12.6, 16.4, 20.2
    painted = np.flatnonzero(sparse.reshape(len(sparse), -1).any(axis=1)).tolist()
    assert painted == picks
    np.testing.assert_array_equal(sparse[picks], labels[picks])  # painted slices are copied whole


def test_thin_slab_gives_fewer_distinct_picks_not_repeats() -> None:
    labels = _slab(11, 17)  # 7 labelled slices; 8 asked for
    _, picks = sparse_annotation(labels, 8)
    assert picks == sorted(set(picks))
    assert set(picks) <= set(range(12, 17))  # strictly inside the slab


def test_empty_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="labelled slice"):
        sparse_annotation(np.zeros((5, 4, 4), np.uint8), 2)
