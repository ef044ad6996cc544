"""Positive-pair rules, SupCon and superpixel pooling of SuperCL/MACL, on hand-made examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_smp.engine.pretraining.contrastive import (
    component_mask,
    label_mask,
    position_mask,
    sample_cells,
    supcon_loss,
    two_view_mask,
)
from napari_smp.engine.pretraining.superpixels import (
    default_segments,
    downsample_superpixels,
    slic_slice,
    superpixel_pool,
)


def _supcon_loops(z: np.ndarray, pos: np.ndarray, tau: float = 0.1, base: float = 0.07) -> float:
    """The SupCon formula written out anchor by anchor (independent of the vectorised code)."""
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    losses = []
    for i in range(len(z)):
        others = [k for k in range(len(z)) if k != i]
        denom = sum(math.exp(z[i] @ z[k] / tau) for k in others)
        ps = [p for p in others if pos[i, p]]
        if ps:
            losses.append(-(tau / base) * np.mean([z[i] @ z[p] / tau - math.log(denom) for p in ps]))
    return float(np.mean(losses))


def test_supcon_matches_closed_form_on_two_orthogonal_pairs():
    # anchors e1 and e2, each seen identically in two views: every anchor has one positive (cos 1)
    # and two negatives (cos 0), so l = (tau / base) * log(1 + 2 exp(-1 / tau))
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    got = supcon_loss(z, two_view_mask(2), temperature=0.5, base_temperature=0.25)
    assert got.item() == pytest.approx(2.0 * math.log(1 + 2 * math.exp(-2)), rel=1e-6)
    # at the papers' tau = 0.1 the same pairs are nearly perfect: the loss is almost 0
    assert 0 < supcon_loss(z, two_view_mask(2)).item() < 1e-3


def test_supcon_matches_loop_reference_and_skips_anchors_without_positive():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 5)).astype(np.float32)
    pos = np.zeros((6, 6), bool)
    pos[0, 3] = pos[3, 0] = pos[1, 4] = pos[4, 1] = pos[0, 1] = True  # anchors 2 and 5 have none
    got = supcon_loss(torch.from_numpy(z), torch.from_numpy(pos)).item()
    assert got == pytest.approx(_supcon_loops(z, pos), rel=1e-5)


def test_supcon_is_batched_over_leading_dimensions():
    z = torch.randn(3, 4, 8)
    pos = two_view_mask(2)
    whole = supcon_loss(z, pos)
    each = torch.stack([supcon_loss(z[i], pos) for i in range(3)]).mean()
    assert whole.item() == pytest.approx(each.item(), rel=1e-5)


def test_position_mask_uses_the_slice_position_threshold_in_both_views():
    p = torch.tensor([0.10, 0.15, 0.50])
    m = position_mask(p, 0.1)
    expect = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], bool)
    assert np.array_equal(m.numpy(), np.block([[expect, expect], [expect, expect]]))
    # a tighter threshold separates 0.10 and 0.15; None keeps only the other view of the same slice
    assert not position_mask(p, 0.04)[0, 1] and position_mask(p, 0.04)[0, 3]
    assert np.array_equal(position_mask(p, None).numpy(), two_view_mask(3).numpy())


def test_label_mask_pairs_cells_of_one_superpixel_across_views():
    ids = torch.tensor([7, 7, 2])
    m = label_mask(torch.cat([ids, ids]))
    assert m[0, 1] and m[0, 3] and m[0, 4] and m[2, 5]
    assert not m[0, 2] and not m[1, 5] and not m[2, 3]


def test_component_mask_follows_nearest_neighbour_components():
    # views of images 0 and 1 chain together through 1-NN links (1 -> 3 -> 0, 4 -> 1); image 2 is apart
    v = torch.tensor([[1, 0, 0], [1, 0.1, 0], [0, 0, 1], [1, 0.05, 0], [1, 0.25, 0], [0, 0.1, 1]])
    m = component_mask(v).numpy()
    group = np.zeros(6, int)
    group[[2, 5]] = 1
    assert np.array_equal(m, group[:, None] == group[None, :])


def test_component_mask_is_symmetric_reflexive_and_joins_the_two_views():
    v = torch.randn(10, 16)
    v[7] = -v[2]  # the two views of image 2 look nothing alike: still positives
    m = component_mask(v)
    assert torch.equal(m, m.T) and bool(m.diagonal().all())
    assert all(m[i, i + 5] for i in range(5))
    with pytest.raises(ValueError):
        component_mask(torch.randn(5, 3))


def test_sample_cells_draws_distinct_sorted_cells():
    g = torch.Generator().manual_seed(0)
    cells = sample_cells(100, 16, g)
    assert len(cells) == 16 and len(set(cells.tolist())) == 16 and torch.equal(cells, cells.sort().values)
    assert torch.equal(sample_cells(9, 64), torch.arange(9))


def test_superpixel_pool_mean_and_area_weighted():
    values = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    labels = torch.tensor([[[0, 0], [1, 1]]])
    assert superpixel_pool(values, labels).tolist() == [[1.5, 1.5, 3.5, 3.5]]
    assert superpixel_pool(values, labels, area_weighted=True).tolist() == [[0.75, 0.75, 1.75, 1.75]]
    # superpixel ids need not be contiguous, and each image is pooled on its own
    two = superpixel_pool(torch.stack([values[0], values[0] * 10]), torch.tensor([[[5, 0], [5, 0]]] * 2))
    assert two.tolist() == [[2.0, 3.0, 2.0, 3.0], [20.0, 30.0, 20.0, 30.0]]


def test_downsample_superpixels_takes_nearest_labels():
    sp = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])[None]
    assert downsample_superpixels(sp, 2).tolist() == [[[0, 1], [2, 3]]]


def test_slic_never_crosses_a_sharp_edge_and_constant_slices_are_one_segment():
    img = np.zeros((32, 32))
    img[:, 16:] = 1.0
    lab = slic_slice(img, n_segments=8)
    for sp in np.unique(lab):
        side = img[lab == sp]
        assert side.min() == side.max()  # every superpixel lies on one side of the edge
    assert len(np.unique(lab)) >= 2
    assert np.array_equal(slic_slice(np.full((16, 16), 0.3), 8), np.zeros((16, 16), np.int32))


def test_default_segments_keeps_the_papers_density():
    assert default_segments(512) == 100 and default_segments(256) == 25 and default_segments(32) == 4
