"""Predictions with scattered false positives (salt noise, islands, holes) against medpy, and the machinery
that keeps their cost on the surface: one-pass surface scans, one-pass counts, the KD-tree routes."""

from __future__ import annotations

import numpy as np
import pytest
from medpy.metric import binary as medpy_binary
from scipy import ndimage

from napari_smp.metrics import class_metrics, dice, hd95
from napari_smp.metrics import per_class as per_class_module
from napari_smp.metrics import surface as surface_module
from napari_smp.metrics._boxes import label_boxes
from napari_smp.metrics.surface import surface_indices, surface_voxels

# medpy's directed surface distances (the sets hd95, hd, asd and assd reduce), for the MONAI convention
_medpy_surface_distances = getattr(medpy_binary, "__surface_distances")


NOISY = [
    ("salt", (64, 56), (0.7, 1.3), 3, 0),
    ("islands", (60, 50), (1.0, 1.0), 2, 1),
    ("salt", (16, 34, 30), (3.0, 0.8, 0.8), 3, 2),
    ("islands", (16, 34, 30), (2.5, 0.6, 0.9), 3, 3),
    ("holes", (18, 32, 32), (1.5, 1.5, 1.5), 2, 4),
    ("both noisy", (14, 30, 40), (2.0, 0.7, 1.1), 3, 5),
    ("holes", (70, 64), (0.5, 2.0), 1, 6),
]


def _assert_equals_medpy(pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...]) -> None:
    ours = class_metrics(pred, gt, spacing)
    monai = class_metrics(pred, gt, spacing, convention="monai")
    assert list(ours) == sorted((set(np.unique(pred).tolist()) | set(np.unique(gt).tolist())) - {0})
    for label, m in ours.items():
        p, g = pred == label, gt == label
        assert (m.pred_voxels, m.gt_voxels) == (int(p.sum()), int(g.sum()))
        assert m.dice == pytest.approx(medpy_binary.dc(p, g), abs=1e-12)
        if not (p.any() and g.any()):
            continue
        assert m.hd95 == pytest.approx(medpy_binary.hd95(p, g, spacing), rel=1e-9, abs=1e-12)
        assert m.hd == pytest.approx(medpy_binary.hd(p, g, spacing), rel=1e-9, abs=1e-12)
        assert m.assd == pytest.approx(medpy_binary.assd(p, g, spacing), rel=1e-9, abs=1e-12)
        assert m.asd == pytest.approx(medpy_binary.asd(p, g, spacing), rel=1e-9, abs=1e-12)
        d_pg = _medpy_surface_distances(p, g, spacing, 1)
        d_gp = _medpy_surface_distances(g, p, spacing, 1)
        ref = max(np.percentile(d_pg, 95), np.percentile(d_gp, 95))
        assert monai[label].hd95 == pytest.approx(ref, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("kind", "shape", "spacing", "n_classes", "seed"), NOISY)
def test_noisy_pairs_equal_medpy_in_both_conventions(noise, kind, shape, spacing, n_classes, seed) -> None:
    pred, gt = noise.pair(kind, shape, n_classes, seed)
    _assert_equals_medpy(pred, gt, spacing)


@pytest.mark.parametrize("route", ["kd-tree", "deep edt", "dense edt"])
def test_every_route_equals_medpy_on_noisy_pairs(noise, monkeypatch, route) -> None:
    if route == "kd-tree":
        monkeypatch.setattr(surface_module, "_MIN_VOXELS_PER_SURFACE_POINT", 0)
        monkeypatch.setattr(surface_module, "_EDT_VOXELS_PER_DEEP_QUERY", 0)
    elif route == "deep edt":  # short probe: many queries are far, and all far ones inside the box use the EDT
        monkeypatch.setattr(surface_module, "_MIN_VOXELS_PER_SURFACE_POINT", 0)
        monkeypatch.setattr(surface_module, "_PROBE_RADIUS_VOXELS", 0.5)
        monkeypatch.setattr(surface_module, "_EDT_VOXELS_PER_DEEP_QUERY", 10**9)
    else:
        monkeypatch.setattr(surface_module, "_MIN_VOXELS_PER_SURFACE_POINT", 10**9)
    for kind, shape, spacing, n_classes, seed in NOISY[2:6]:
        pred, gt = noise.pair(kind, shape, n_classes, seed)
        _assert_equals_medpy(pred, gt, spacing)


def test_noise_in_a_large_volume_never_runs_a_volume_sized_edt(noise, monkeypatch) -> None:
    # one small organ, salt over the whole volume: the boxes are the volume, the surfaces are small
    shape = (40, 96, 96)
    gt = np.zeros(shape, dtype=np.uint8)
    gt[14:26, 30:60, 35:70] = 1
    pred = noise.salt(np.roll(gt, 2, axis=2), 0.0005, [1], 3)
    sizes: list[int] = []
    edt = surface_module.ndimage.distance_transform_edt

    def recording_edt(grid, *args, **kwargs):
        sizes.append(grid.size)
        return edt(grid, *args, **kwargs)

    monkeypatch.setattr(surface_module.ndimage, "distance_transform_edt", recording_edt)
    spacing = (2.5, 0.8, 0.8)
    value = hd95(pred, gt, spacing).value()
    assert value == pytest.approx(medpy_binary.hd95(pred == 1, gt == 1, spacing), rel=1e-9)
    assert all(size <= 14 * 32 * 37 for size in sizes)  # at most the organ's own box


@pytest.mark.parametrize("shape", [(33, 29), (9, 21, 17)])
@pytest.mark.parametrize("chunk", [1, 40, 1 << 21])
def test_one_pass_and_per_class_surfaces_equal_the_erosion_definition(noise, monkeypatch, shape, chunk) -> None:
    # chunk=1 scans one slice per slab: every slab border is an inner border of the map
    monkeypatch.setattr(surface_module, "_CHUNK_VOXELS", chunk)
    label_map = noise.salt(noise.label_map(shape, 4, seed=11), 0.05, [1, 2, 3, 4], seed=12)
    one_pass = surface_indices(label_map)  # boxes spread by the salt: one pass for all labels
    per_class = {k: surface_indices(label_map, [k])[k] for k in range(1, 5)}  # one scan per label
    subset = surface_indices(label_map, [2, 4])
    assert sorted(one_pass) == [1, 2, 3, 4] and sorted(subset) == [2, 4]
    for k in range(1, 5):
        expected = np.flatnonzero(surface_voxels(label_map == k))
        np.testing.assert_array_equal(one_pass[k], expected)
        np.testing.assert_array_equal(per_class[k], expected)
        if k in subset:
            np.testing.assert_array_equal(subset[k], expected)


@pytest.mark.parametrize("chunk", [1, 1 << 21])
def test_one_pass_counts_equal_per_box_counts(noise, monkeypatch, chunk) -> None:
    monkeypatch.setattr(per_class_module, "_CHUNK_VOXELS", chunk)  # 1: one slice per slab
    pred, gt = noise.pair("both noisy", (14, 30, 40), 3, 5)
    per_box = class_metrics(pred, gt, distances=False)
    monkeypatch.setattr(per_class_module, "_BOXES_PER_COUNT_PASS", 0)  # the single bincount pass
    one_pass = class_metrics(pred, gt, distances=False)
    assert [(m.pred_voxels, m.gt_voxels, m.dice) for m in one_pass.values()] == [
        (m.pred_voxels, m.gt_voxels, m.dice) for m in per_box.values()
    ]
    for k, m in one_pass.items():
        assert m.dice == pytest.approx(medpy_binary.dc(pred == k, gt == k), abs=1e-12)


def test_views_large_labels_and_label_subsets_on_noisy_maps(noise) -> None:
    pred, gt = noise.pair("salt", (16, 34, 30), 3, 2)
    spacing = (3.0, 0.8, 0.8)
    full = class_metrics(pred, gt, spacing)
    # non-contiguous views: reversed and transposed arrays
    flipped = class_metrics(pred[::-1], gt[::-1], spacing)
    assert all(flipped[k].hd95 == pytest.approx(full[k].hd95, rel=1e-12) for k in full)
    t_spacing = (0.8, 0.8, 3.0)
    turned = class_metrics(pred.transpose(2, 1, 0), gt.transpose(2, 1, 0), t_spacing)
    assert all(turned[k].assd == pytest.approx(full[k].assd, rel=1e-12) for k in full)
    # label values beyond the bincount range are scored through the boxes
    big = 70000
    pred_big, gt_big = pred.astype(np.int64), gt.astype(np.int64)
    pred_big[pred == 2], gt_big[gt == 2] = big, big
    res = class_metrics(pred_big, gt_big, spacing)
    assert res[big].hd95 == pytest.approx(full[2].hd95, rel=1e-12)
    assert res[big].dice == pytest.approx(full[2].dice, abs=1e-12)
    # a subset of labels gives the same numbers as the full run
    sub = class_metrics(pred, gt, spacing, labels=[1, 3, 9])
    assert [sub[k].hd95 for k in (1, 3)] == [full[k].hd95 for k in (1, 3)]
    assert np.isnan(sub[9].dice) and sub[9].reason == "both empty"
    assert dice(pred, gt, labels=[3])[3] == full[3].dice


def test_masks_flush_with_every_face_and_noise_on_the_faces() -> None:
    shape = (12, 20, 18)
    gt = np.zeros(shape, dtype=bool)
    gt[:7, :11, 4:] = True  # touches five faces
    pred = np.zeros(shape, dtype=bool)
    pred[1:, 3:, :15] = True  # touches four faces
    faces = np.zeros(shape, dtype=bool)
    faces[[0, -1]], faces[:, [0, -1]], faces[:, :, [0, -1]] = True, True, True
    rng = np.random.default_rng(4)
    pred |= faces & (rng.random(shape) < 0.05)
    gt &= ~(ndimage.binary_erosion(gt) & (rng.random(shape) < 0.05))  # holes inside the gt
    for spacing in ((2.0, 0.7, 0.9), (1.0, 1.0, 1.0)):
        _assert_equals_medpy(pred.astype(np.uint8), gt.astype(np.uint8), spacing)


def test_monai_convention_equals_monai_on_a_noisy_pair(noise) -> None:
    pytest.importorskip("monai")
    torch = pytest.importorskip("torch")
    from monai.metrics.utils import get_edge_surface_distance

    pred, gt = noise.pair("both noisy", (14, 30, 40), 3, 5)
    spacing = (2.0, 0.7, 1.1)
    ours = class_metrics(pred, gt, spacing, convention="monai")
    for label, m in ours.items():
        p, g = torch.as_tensor(pred == label), torch.as_tensor(gt == label)
        _, directed, _ = get_edge_surface_distance(p, g, spacing=spacing, symmetric=True)
        # MONAI's formula on its own edge distances, the quantile taken in float64 (see test_reference)
        assert m.hd95 == pytest.approx(max(torch.quantile(d.double(), 0.95).item() for d in directed), rel=1e-6)
        assert m.hd == pytest.approx(max(d.max().item() for d in directed), rel=1e-6)


@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 9), (1, 5), (3, 1, 4)])
def test_mask_boxes_from_projections_equal_find_objects(shape) -> None:
    rng = np.random.default_rng(len(shape))
    for _ in range(30):
        mask = (rng.random(shape) < rng.uniform(0.01, 0.3)).astype(np.uint8)
        if not mask.any():
            continue
        for arr in (mask, mask[::-1], mask.T):  # views as well
            assert label_boxes(arr) == {1: ndimage.find_objects(arr)[0]}
