"""Corrections carried through an existing segmentation as far as its error goes (correct_existing.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smp.engine.errors import EngineError
from napari_smp.engine.inference.correct_existing import correct_segmentation, corrected_slices


def _volume(depth: int = 16, size: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A bright disc (1) on every slice and a dark one (2) on slices 2-13, over textured noise."""
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:depth, :size, :size]
    truth = np.zeros((depth, size, size), np.uint8)
    truth[((y - 13) ** 2 + (x - 13) ** 2) < 36] = 1
    truth[((y - 26) ** 2 + (x - 26) ** 2 < 30) & (z >= 2) & (z <= 13)] = 2
    image = rng.normal(0, 0.1, truth.shape) + np.choose(truth, [0.0, 1.0, -1.0])
    return image.astype(np.float32), truth


def test_a_repeated_error_is_fixed_where_it_repeats_and_nothing_else_moves():
    image, truth = _volume()
    tool = truth.copy()
    tool[5:11][tool[5:11] == 2] = 0  # the tool missed organ 2 on slices 5-10
    painting = np.zeros_like(truth)
    painting[8] = truth[8]  # the user repaints one of them
    done = correct_segmentation(image, tool, painting)
    np.testing.assert_array_equal(done.slices, [8])
    for z in range(5, 11):  # the error is fixed on the slices that repeat it, not only on slice 8
        got, want = done.labels[z] == 2, truth[z] == 2
        assert 2 * (got & want).sum() / (got.sum() + want.sum()) > 0.85
    np.testing.assert_array_equal(done.labels[:4], tool[:4])  # where the tool was right: untouched
    np.testing.assert_array_equal(done.labels[12:], tool[12:])
    assert done.carried > 5 * 20 and done.changed > done.carried


def test_an_isolated_error_stays_local():
    image, truth = _volume()
    tool = truth.copy()
    tool[8][tool[8] == 1] = 0  # one slice lost organ 1
    painting = np.zeros_like(truth)
    painting[8] = truth[8]
    done = correct_segmentation(image, tool, painting)
    np.testing.assert_array_equal(done.labels, truth)  # the slice fixed, its right neighbours kept
    np.testing.assert_array_equal(done.anchors, [7, 9])
    assert done.carried == 0


def test_an_erased_false_structure_goes_where_it_repeats_but_an_emptied_slice_stays_local():
    image, truth = _volume()
    tool = truth.copy()  # the tool's organ 2 (slices 2-13) is the error here
    painting = np.zeros_like(truth)
    painting[8] = np.where(truth[8] == 2, 0, truth[8])  # the user erases it on slice 8, keeps organ 1
    done = correct_segmentation(image, tool, painting)
    assert not (done.labels == 2).any()  # erased over its whole run, where the tool repeats it
    np.testing.assert_array_equal(done.labels == 1, truth == 1)  # organ 1 untouched everywhere
    # a slice made all background carries nothing, which no other slice agrees with (all hold organ 1): the
    # anchors stay next to it
    done = correct_segmentation(image, tool, np.zeros_like(truth), background=[8])
    np.testing.assert_array_equal(done.labels[np.r_[0:8, 9:16]], tool[np.r_[0:8, 9:16]])
    assert not done.labels[8].any()


def test_the_whole_edited_segmentation_may_be_the_painting():
    image, truth = _volume()
    tool = truth.copy()
    tool[5:11][tool[5:11] == 2] = 0
    edited = tool.copy()
    edited[8] = truth[8]  # the user edited the segmentation layer itself
    np.testing.assert_array_equal(corrected_slices(tool, edited), [8])
    same = correct_segmentation(image, tool, edited).labels
    sparse = np.zeros_like(truth)
    sparse[8] = truth[8]
    np.testing.assert_array_equal(same, correct_segmentation(image, tool, sparse).labels)


def test_nothing_corrected_or_another_shape_is_one_sentence():
    image, truth = _volume(depth=6)
    with pytest.raises(EngineError, match="the painting corrects nothing"):
        correct_segmentation(image, truth, truth.copy())
    with pytest.raises(EngineError, match="segmentation has shape"):
        correct_segmentation(image, truth[:5], truth)
    with pytest.raises(EngineError, match="background slice 9 is outside"):
        correct_segmentation(image, truth, truth, background=[9])
    erased = correct_segmentation(image, truth, np.zeros_like(truth), background=[3])  # a slice erased
    assert not erased.labels[3].any() and erased.slices.tolist() == [3]
