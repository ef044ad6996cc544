"""Pure helpers behind the widgets: painted-slice counts, cluster shares, cluster x class, boxes."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

from napari_smp._widgets._summaries import (
    AnnotationSummary,
    cluster_class_table,
    cluster_shares,
    receptive_field_boxes,
    touched_slices,
)


def test_annotation_summary_counts_slices_and_classes_and_follows_paint():
    labels = np.zeros((6, 8, 8), np.uint8)
    labels[1, 2:4, 2:4] = 1
    labels[4, 0, 0] = 3
    s = AnnotationSummary(labels)
    assert s.slices == [1, 4] and s.classes == [1, 3]
    assert s.describe({1: "liver", 3: "spleen"}) == "2 slices annotated (1, 4): liver, spleen"
    labels[4] = 0  # erase a slice, paint another, recount only those two
    labels[5, 1, 1] = 2
    s.recount([4, 5])
    assert s.slices == [1, 5] and s.classes == [1, 2]
    assert "no slice annotated" in AnnotationSummary(np.zeros((2, 3, 3), np.uint8)).describe()


def test_recount_changed_finds_edits_it_was_not_told_about():
    labels = np.zeros((5, 6, 6), np.int32)
    labels[1, :2, :2] = 1
    labels[3, 0, 0] = 2
    s = AnnotationSummary(labels)
    assert s.recount_changed() == [] and s.slices == [1, 3]  # nothing changed: nothing recounted
    labels[1, :2, :2] = 0  # an undo erases slice 1
    labels[3, 0, 0] = 1  # and turns the class of slice 3 from 2 into 1 (same voxel count)
    labels[4, 5, 5] = 2  # a redo paints slice 4
    assert s.recount_changed() == [1, 3, 4]
    assert s.slices == [3, 4] and s.classes == [1, 2]
    s.recount([0])  # a told edit refreshes that slice's fingerprint too
    labels[0, 0, 0] = 2
    s.recount([0])
    assert s.recount_changed() == [] and s.slices == [0, 3, 4]


def test_touched_slices_reads_both_kinds_of_history_atom():
    Masked = namedtuple("Masked", "slice_key mask old_values new_value")
    atoms = [((np.array([2, 2, 5]), np.array([0, 1, 2]), np.array([0, 0, 0])), None, 1),
             Masked((slice(7, 9), slice(0, 4), slice(0, 4)), None, None, 1)]
    assert touched_slices(atoms) == {2, 5, 7, 8}
    assert touched_slices(["something else"]) is None


def test_cluster_shares_sum_to_one_and_count_pixels():
    a = np.array([[[0, 0, 1], [2, 2, 2]]])
    np.testing.assert_allclose(cluster_shares(a, 4), [2 / 6, 1 / 6, 3 / 6, 0.0])


def test_cluster_class_table_rows_are_class_shares_and_empty_cluster_is_nan():
    a = np.array([[[0, 0, 0, 1], [1, 1, 0, 0]]])
    c = np.array([[[0, 1, 1, 2], [2, 2, 0, 1]]])
    t = cluster_class_table(a, c, 3, 3)
    # cluster 0 holds 5 pixels: classes 0,1,1,0,1 -> 2/5 background, 3/5 class 1
    np.testing.assert_allclose(t[0], [0.4, 0.6, 0.0])
    np.testing.assert_allclose(t[1], [0.0, 0.0, 1.0])
    assert np.isnan(t[2]).all()
    with pytest.raises(ValueError, match="differ in shape"):
        cluster_class_table(a, c[:, :1], 3, 3)


def test_receptive_field_boxes_grow_the_bounding_box_by_one_cell_and_clip():
    a = np.zeros((2, 32, 32), np.int64)
    a[0, 10:14, 20:22] = 1  # cluster 1 on the first plane
    a[1, 0:3, 0:3] = 2  # cluster 2 at the corner of the second plane: clipped at 0
    boxes = receptive_field_boxes(a, np.array([5, 6]), 3, (4.0, 4.0))
    by = {(b.slice, b.cluster): b for b in boxes}
    b1 = by[(5, 1)]
    assert (b1.y0, b1.x0, b1.y1, b1.x1) == (6, 16, 18, 26)
    b2 = by[(6, 2)]
    assert (b2.y0, b2.x0, b2.y1, b2.x1) == (0, 0, 7, 7)
    assert by[(5, 0)].y0 == 0 and by[(5, 0)].y1 == 32  # background spans the plane
    corners = b1.corners()
    assert corners.shape == (4, 3) and set(corners[:, 0]) == {5.0}
    assert corners[:, 1].min() == 5.5 and corners[:, 2].max() == 25.5
