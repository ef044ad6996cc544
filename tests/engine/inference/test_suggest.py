"""Where to paint next (inference/suggest.py): the least certain unpainted slice and its class."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smp.engine.errors import EngineError
from napari_smp.engine.inference.interpolation import FilledSlices
from napari_smp.engine.inference.suggest import slice_uncertainty, suggest_slice


def _filled(probabilities: np.ndarray, painted: list[int], classes=(0, 5, 52)) -> FilledSlices:
    z = probabilities.shape[1]
    return FilledSlices(probabilities.astype(np.float32), np.array(classes), np.array(painted),
                        np.zeros(z, bool), "test")  # fmt: skip


def test_expected_errors_count_the_voxels_the_answer_may_get_wrong():
    p = np.zeros((3, 2, 2, 2), np.float32)
    p[0] = 1.0  # slice 0 and 1 sure of background ...
    p[:, 1, 0, 0] = (0.5, 0.5, 0.0)  # ... except one voxel of slice 1, a coin toss between 0 and 5
    errors, per_class = slice_uncertainty(p)
    np.testing.assert_allclose(errors, [0.0, 0.5])
    np.testing.assert_allclose(per_class[:, 1], [0.5, 0.5, 0.0])


def test_the_least_certain_unpainted_slice_and_class_are_suggested():
    p = np.zeros((3, 5, 4, 4), np.float32)
    p[0] = 1.0
    p[:, 1, :2] = np.array([0.4, 0.0, 0.6])[:, None, None]  # slice 1: 8 voxels unsure of class 52
    p[:, 3, :1] = np.array([0.3, 0.7, 0.0])[:, None, None]  # slice 3: 4 voxels unsure of class 5
    p[:, 0] = np.array([0.0, 0.5, 0.5])[:, None, None]  # slice 0 is the least sure, but painted
    got = suggest_slice(_filled(p, painted=[0, 4]))
    assert (got.slice, got.value) == (1, 52)
    assert got.expected_errors == pytest.approx(8 * 0.4)
    assert got.share == pytest.approx(3.2 / (3.2 + 1.2))
    assert "slice 1" in got.describe({52: "aorta"}) and "aorta" in got.describe({52: "aorta"})
    assert suggest_slice(_filled(p, painted=[0, 4]), exclude=[1]).slice == 3  # the user declined slice 1


def test_nothing_to_suggest_when_every_slice_is_painted():
    p = np.zeros((3, 2, 2, 2), np.float32)
    p[0] = 1.0
    with pytest.raises(EngineError, match="every slice is painted"):
        suggest_slice(_filled(p, painted=[0, 1]))
