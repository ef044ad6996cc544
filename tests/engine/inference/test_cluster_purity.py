"""Purity of clusters: known answers on small arrays (engine/inference/cluster_purity.py)."""

import numpy as np
import pytest

from napari_smp.engine.inference.cluster_purity import (
    body_mask,
    cluster_purity,
    grid_assignment,
    otsu_threshold,
    top_purity,
)


def test_tied_purity_known_answer_and_body_only():
    # one slice, 4 x 4: left half class 1, right half class 0; air in the last column
    labels = np.array([[[1, 1, 0, 0]] * 4])
    assign = np.array([[[1, 1, 1, 0]] * 4])  # cluster 1 claims the left half and one column of class 0
    mask = np.ones_like(labels, dtype=bool)
    mask[..., 3] = False  # the last column is air
    t = cluster_purity(assign, labels, k=2, n_classes=2, mask=mask)
    # cluster 1: 8 of its 12 pixels in class 1; cluster 0 claims only air -> NaN
    assert t.purity[1] == pytest.approx(8 / 12)
    assert np.isnan(t.purity[0])
    assert t.counts.tolist() == [[0, 0], [4, 8]]
    # a tied cluster whose class is present but which claims nothing counts 0 in the mean
    assert t.mean() == pytest.approx((8 / 12 + 0) / 2)
    assert t.mean(present=np.array([False, True])) == pytest.approx(8 / 12)
    # without the body mask cluster 0's air column counts: pure background
    t_all = cluster_purity(assign, labels, k=2, n_classes=2)
    assert t_all.purity[0] == 1.0


def test_majority_class_for_an_unseeded_bank():
    labels = np.array([[[2, 2, 2, 0]]])
    assign = np.array([[[0, 0, 0, 0]]])  # cluster 0 = mostly class 2
    tied = cluster_purity(assign, labels, k=3, n_classes=3)
    free = cluster_purity(assign, labels, k=3, n_classes=3, tied=False)
    assert tied.purity[0] == pytest.approx(0.25)  # tied to class 0: only the background pixel
    assert free.classes[0] == 2 and free.purity[0] == pytest.approx(0.75)
    assert free.classes[1] == -1 and np.isnan(free.purity[1])
    assert free.mean() == pytest.approx(0.75) and free.covered() == 1
    np.testing.assert_allclose(free.shares[0], [0.25, 0, 0.75])


def test_mean_skips_classes_absent_from_the_slices():
    labels = np.array([[[0, 0, 1, 1]]])
    assign = np.array([[[0, 0, 1, 2]]])  # cluster 2 (class 2, absent) claims a class-1 pixel
    t = cluster_purity(assign, labels, k=3, n_classes=3)
    assert t.purity.tolist()[:2] == [1.0, 1.0] and t.purity[2] == 0.0
    assert t.mean() == pytest.approx(2 / 3)
    assert t.mean(present=np.array([True, True, False])) == 1.0


def test_bad_shapes_and_too_many_tied_clusters_are_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        cluster_purity(np.zeros((1, 2, 2)), np.zeros((1, 2, 3)), 2, 2)
    with pytest.raises(ValueError, match="one cluster per class"):
        cluster_purity(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), 3, 2)


def test_top_purity_is_r_precision():
    labels = np.array([[[1, 1, 0, 0, 0]]])
    # cluster 1's similarity ranks one class-1 pixel and one background pixel highest
    sim = np.zeros((2, 1, 1, 5), dtype=np.float32)
    sim[1, 0, 0] = [0.9, 0.1, 0.8, 0.2, 0.3]
    sim[0, 0, 0] = [0.0, 0.0, 0.5, 0.6, 0.7]
    top = top_purity(sim, labels, np.array([0, 1]))
    assert top[1] == pytest.approx(0.5)  # 2 class-1 pixels; the top 2 hold one of them
    assert top[0] == 1.0
    # a class with no pixel on these slices gets NaN
    assert np.isnan(top_purity(sim, labels, np.array([2, -1]))).all()


def test_grid_assignment_ties_go_to_the_lower_index():
    sim = np.zeros((3, 1, 2, 2), dtype=np.float16)
    sim[2, 0, 0, 0] = 1
    a = grid_assignment(sim)
    assert a.dtype == np.int16 and a[0].tolist() == [[2, 0], [0, 0]]


def test_otsu_separates_two_modes_and_body_fills_holes():
    rng = np.random.default_rng(0)
    vals = np.concatenate([rng.normal(-1000, 10, 500), rng.normal(40, 10, 500)])
    cut = otsu_threshold(vals)
    assert -900 < cut < -50
    vol = np.full((1, 9, 9), -1000.0)
    vol[0, 1:8, 1:8] = 40.0  # the body
    vol[0, 3:6, 3:6] = -900.0  # a lung inside it: a hole, still body
    vol[0, 0, 8] = 40.0  # a speck outside: not body
    m = body_mask(vol)
    assert m[0, 4, 4] and m[0, 1, 1] and not m[0, 0, 8] and not m[0, 0, 0]
    assert int(m.sum()) == 49
    with pytest.raises(ValueError, match="volume"):
        body_mask(np.zeros((3, 3)))


def test_tied_classes_given_per_cluster():
    labels = np.array([[[0, 2, 2, 5]]])
    assign = np.array([[[1, 1, 0, 0]]])
    # cluster 0 stands for class 5, cluster 1 for class 2 (the columns of a label map with more classes)
    t = cluster_purity(assign, labels, k=2, n_classes=6, tied=np.array([5, 2]))
    assert t.purity.tolist() == [0.5, 0.5] and t.tied
    none = cluster_purity(assign, labels, k=2, n_classes=6, tied=np.array([-1, 2]))
    assert none.purity[0] == 0.0
