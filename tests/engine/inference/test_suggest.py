"""Where to paint next (inference/suggest.py): the least certain unpainted slice and its class."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smp.engine.errors import EngineError
from napari_smp.engine.inference.interpolation import FilledSlices
from napari_smp.engine.inference.suggest import error_reduction, slice_uncertainty, suggest_slice


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


def test_a_long_unsure_stretch_is_cut_in_its_middle_and_a_lone_unsure_slice_still_wins():
    p = np.zeros((3, 21, 4, 4), np.float32)
    p[0] = 1.0
    p[:, 1:10, :1] = np.array([0.5, 0.5, 0.0])[:, None, None, None]  # slices 1-9: 2 expected errors each
    got = suggest_slice(_filled(p, painted=[0, 10, 20]))
    assert got.slice == 5  # the middle: it brings slices 3-7 nearer a painted slice, slice 1 only itself
    # slice 15: 8 voxels, 4 expected errors, twice those of any stretch slice (the least sure slice), yet
    # painting it removes 4 where painting 5 removes 2 * (1/3 + 3/4 + 1 + 3/4 + 1/3) = 6.33
    p[:, 15, :2] = np.array([0.0, 0.5, 0.5])[:, None, None]
    assert suggest_slice(_filled(p, painted=[0, 10, 20])).slice == 5
    p[:, 15] = np.array([0.0, 0.5, 0.5])[:, None, None]  # 16 voxels, 8 expected errors: it outweighs them
    got = suggest_slice(_filled(p, painted=[0, 10, 20]))
    assert got.slice == 15 and got.expected_errors == pytest.approx(8.0)


def test_error_reduction_follows_the_distance_to_the_nearest_painted_slice():
    errors = np.array([0.0, 4.0, 4.0, 4.0, 0.0])
    removed = error_reduction(errors, np.array([0, 4]))
    # painting 2: slice 2 all (4), slices 1 and 3 keep their distance 1 (0); painting 1: slice 1 (4),
    # slice 2 from 2 to 1 (half of 4), slice 3 stays at 1
    np.testing.assert_allclose(removed, [0.0, 6.0, 4.0, 6.0, 0.0])


def test_nothing_to_suggest_when_every_slice_is_painted():
    p = np.zeros((3, 2, 2, 2), np.float32)
    p[0] = 1.0
    with pytest.raises(EngineError, match="every slice is painted"):
        suggest_slice(_filled(p, painted=[0, 1]))
