"""Cluster summaries: shares, cluster x class, receptive-field boxes, and all three from ClusterMaps."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smp.engine.inference.cluster_summary import (
    cluster_class_table,
    cluster_shares,
    receptive_field_boxes,
    summarize_clusters,
)


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


def test_summarize_clusters_counts_tables_and_boxes_at_image_resolution():
    from napari_smp.engine.inference import ClusterMaps

    a = np.zeros((2, 32, 64), np.int16)
    a[0, 10:14, 20:22] = 1
    a[1, :, 32:] = 2
    maps = ClusterMaps("decoder.stage1", np.array([4, 5]), a, np.zeros((3, 2, 32, 64), np.float16), stride=4)
    labels = np.zeros((2, 32, 64), np.uint8)
    labels[1, :, 32:] = 1
    s = summarize_clusters(maps, 64, labels, {0: "background", 1: "liver", 3: "spleen"})
    assert s.maps is maps and s.counts.tolist() == [2 * 32 * 64 - 8 - 32 * 32, 8, 32 * 32]
    np.testing.assert_allclose(s.shares, s.counts / s.counts.sum())
    # a column per value present or named (0, 1, 3): a named class gets one though nothing holds it
    assert s.class_table.shape == (3, 3) and s.classes.values == (0, 1, 3)
    assert s.classes.names == ("background", "liver", "spleen")
    np.testing.assert_allclose(s.class_table[2], [0.0, 1.0, 0.0])
    # one feature cell = stride x image side / input side: 4 x 32/64 = 2 rows, 4 x 64/64 = 4 columns
    b1 = next(b for b in s.boxes if b.cluster == 1)
    assert (b1.slice, b1.y0, b1.x0, b1.y1, b1.x1) == (4, 8, 16, 16, 26)
    assert summarize_clusters(maps, 64).class_table is None


def test_main_region_boxes_frame_the_largest_region_inside_the_mask():
    from napari_smp.engine.inference.cluster_summary import main_region_boxes

    a = np.zeros((1, 20, 20), dtype=np.int16)
    a[0, 2:8, 3:9] = 1  # cluster 1's organ: 6 x 6
    a[0, 15, 15] = 1  # and a stray cell far away: not in its box
    a[0, 18:20, 0:20] = 2  # cluster 2 only in the air row
    mask = np.ones((1, 20, 20), dtype=bool)
    mask[0, 18:] = False
    boxes = {b.cluster: b for b in main_region_boxes(a, np.array([7]), 3, mask)}
    b1 = boxes[1]
    assert (b1.slice, b1.y0, b1.x0, b1.y1, b1.x1) == (7, 2, 3, 8, 9)
    assert 2 not in boxes  # it claims nothing inside the body
    b0 = boxes[0]  # background: one region around the organ, the whole body
    assert (b0.y0, b0.x0, b0.y1, b0.x1) == (0, 0, 18, 20)
    assert not any(b.cluster == 1 for b in main_region_boxes(a, np.array([7]), 3, mask, min_pixels=37))
