"""Clean-up of label maps: known answers on blobs of known volume."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smp.engine.cleanup import clean_labels, describe_cleanup


def _two_blobs() -> np.ndarray:
    lab = np.zeros((10, 20, 20), np.uint8)
    lab[1:6, 2:8, 2:8] = 3  # 180 voxels: the organ
    lab[7:9, 14:16, 14:16] = 3  # 8 voxels: a detached speck
    lab[2:4, 12:18, 2:6] = 5  # another class, one piece
    return lab


def test_largest_component_keeps_the_larger_blob_and_zeroes_the_other():
    lab = _two_blobs()
    before = lab.copy()
    out = clean_labels(lab, (1.0, 1.0, 1.0), largest_component=True)
    assert np.array_equal(lab, before)  # the input is untouched
    expected = before.copy()
    expected[7:9, 14:16, 14:16] = 0
    assert np.array_equal(out.labels, expected)
    assert out.removed_voxels == {3: 8} and out.removed_components == {3: 1}
    assert out.labels.dtype == lab.dtype


def test_diagonal_neighbours_are_one_component():
    lab = np.zeros((4, 4, 4), np.uint8)
    lab[0, 0, 0] = lab[1, 1, 1] = lab[2, 2, 2] = 1  # a corner-touching chain
    out = clean_labels(lab, (1, 1, 1), largest_component=True)
    assert out.removed_voxels == {} and np.array_equal(out.labels, lab)


def test_island_under_threshold_dropped_with_anisotropic_spacing():
    # spacing 2.5 x 0.8 x 0.8 mm: one voxel is 1.6 mm^3 = 0.0016 mL
    spacing = (2.5, 0.8, 0.8)
    lab2 = np.zeros((12, 40, 40), np.uint16)
    lab2[0:10, 0:20, 0:20] = 7  # 4000 voxels = 6.4 mL: the organ
    lab2[10:12, 25:40, 30:35] = 7  # 2 x 15 x 5 = 150 voxels
    lab2[10:12, 25:35, 35:40] = 7  # 2 x 10 x 5 = 100 more: an island of 250 voxels = 0.4 mL
    lab2[5, 38, 0] = 2  # another class's single voxel (largest of its class: stays)
    assert int((lab2[10:12] == 7).sum()) == 250
    out = clean_labels(lab2, spacing, min_island_ml=0.5)
    assert out.removed_voxels == {7: 250}
    assert out.removed_ml[7] == pytest.approx(0.4)
    assert not out.labels[10:12].any()  # removed voxels are background
    assert (out.labels == 7).sum() == 4000 and out.labels[5, 38, 0] == 2
    # at 0.3 mL the 0.4 mL island stays
    kept = clean_labels(lab2, spacing, min_island_ml=0.3)
    assert kept.removed_voxels == {} and np.array_equal(kept.labels, lab2)
    # with isotropic 1 mm voxels the same 250 voxels are 0.25 mL: dropped at 0.3
    assert clean_labels(lab2, (1, 1, 1), min_island_ml=0.3).removed_voxels == {7: 250}


def test_background_untouched_and_small_class_never_erased():
    lab = np.zeros((6, 10, 10), np.int32)
    lab[2, 2, 2] = 1  # a class of one voxel: its largest component stays whatever the threshold
    out = clean_labels(lab, (1, 1, 1), largest_component=True, min_island_ml=100.0)
    assert np.array_equal(out.labels, lab)
    assert (out.labels == 0).sum() == lab.size - 1


def test_both_rules_off_is_a_copy_and_bad_settings_are_refused():
    lab = _two_blobs()
    out = clean_labels(lab, (1, 1, 1))
    assert np.array_equal(out.labels, lab) and out.labels is not lab and out.removed_voxels == {}
    with pytest.raises(ValueError, match="0 mL or more"):
        clean_labels(lab, (1, 1, 1), min_island_ml=-1)
    with pytest.raises(ValueError, match="does not fit"):
        clean_labels(lab, (1, 1), largest_component=True)


def test_describe_names_classes_and_volumes():
    out = clean_labels(_two_blobs(), (2.0, 1.0, 1.0), largest_component=True)
    text = describe_cleanup(out, {3: "liver"})
    assert text == "clean-up removed 1 piece (0.02 mL): liver 0.02 mL"
    assert describe_cleanup(clean_labels(_two_blobs(), (1, 1, 1))) == "clean-up removed nothing"
