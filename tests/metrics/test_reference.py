"""Our metrics against medpy (default convention) and MONAI (``convention="monai"``) on random pairs."""

from __future__ import annotations

import numpy as np
import pytest
from medpy.metric import binary as medpy_binary

from napari_smp.metrics import class_metrics, hd95
from napari_smp.metrics import surface as surface_module
from napari_smp.metrics.surface import directed_surface_distances

CASES = [
    ((48, 40), (0.7, 1.3), 3, 0),
    ((48, 40), (1.0, 1.0), 2, 1),
    ((14, 30, 26), (3.0, 0.8, 0.8), 3, 2),
    ((14, 30, 26), (2.5, 0.6, 0.9), 3, 3),
    ((12, 24, 24), (1.5, 1.5, 1.5), 1, 4),
]


@pytest.mark.parametrize(("shape", "spacing", "n_classes", "seed"), CASES)
def test_every_metric_equals_medpy_per_class(make_pair, shape, spacing, n_classes, seed) -> None:
    pred, gt = make_pair(shape, n_classes, seed)
    ours = class_metrics(pred, gt, spacing)
    assert list(ours) == list(range(1, n_classes + 1))
    for label, m in ours.items():
        p, g = pred == label, gt == label
        assert m.dice == pytest.approx(medpy_binary.dc(p, g), abs=1e-12)
        assert m.hd95 == pytest.approx(medpy_binary.hd95(p, g, spacing), rel=1e-9, abs=1e-9)
        assert m.hd == pytest.approx(medpy_binary.hd(p, g, spacing), rel=1e-9)
        assert m.assd == pytest.approx(medpy_binary.assd(p, g, spacing), rel=1e-9)
        assert m.asd == pytest.approx(medpy_binary.asd(p, g, spacing), rel=1e-9)
        assert (m.pred_voxels, m.gt_voxels) == (int(p.sum()), int(g.sum()))


def _one_hot(label_map: np.ndarray, n_classes: int) -> np.ndarray:
    return np.stack([label_map == k for k in range(n_classes + 1)])[None].astype(np.float32)


@pytest.mark.parametrize(("shape", "spacing", "n_classes", "seed"), CASES)
def test_monai_convention_equals_monai(make_pair, shape, spacing, n_classes, seed) -> None:
    monai_metrics = pytest.importorskip("monai.metrics")
    torch = pytest.importorskip("torch")
    from monai.metrics.utils import get_edge_surface_distance

    pred, gt = make_pair(shape, n_classes, seed)
    yp, yt = _one_hot(pred, n_classes), _one_hot(gt, n_classes)
    ref95 = monai_metrics.compute_hausdorff_distance(yp, yt, percentile=95, spacing=spacing)[0].numpy()
    ref_max = monai_metrics.compute_hausdorff_distance(yp, yt, spacing=spacing)[0].numpy()
    ref_assd = monai_metrics.compute_average_surface_distance(yp, yt, symmetric=True, spacing=spacing)[
        0
    ].numpy()
    ours = class_metrics(pred, gt, spacing, convention="monai")
    for label, m in ours.items():
        p, g = torch.as_tensor(pred == label), torch.as_tensor(gt == label)
        _, directed, _ = get_edge_surface_distance(p, g, spacing=spacing, symmetric=True)
        # MONAI's own formula on its own edge distances, with the quantile taken in float64
        ref95_f64 = max(torch.quantile(d.double(), 0.95).item() for d in directed)
        assert m.hd95 == pytest.approx(ref95_f64, rel=1e-6)
        # compute_hausdorff_distance takes the quantile in float32, whose rank arithmetic drifts by a
        # few 1e-6 on a thousand points; hence the looser bound on MONAI's public number
        assert m.hd95 == pytest.approx(float(ref95[label - 1]), rel=1e-5)
        assert m.hd == pytest.approx(float(ref_max[label - 1]), rel=1e-6)
        assert m.assd == pytest.approx(float(ref_assd[label - 1]), rel=1e-6)


def test_monai_hd95_is_never_below_medpy_and_differs_somewhere(make_pair) -> None:
    pred, gt = make_pair((14, 30, 26), 3, 7)
    pooled = hd95(pred, gt, (3.0, 0.8, 0.8))
    worst_direction = hd95(pred, gt, (3.0, 0.8, 0.8), convention="monai")
    assert all(worst_direction[k] >= pooled[k] - 1e-12 for k in pooled)
    assert any(worst_direction[k] > pooled[k] + 1e-6 for k in pooled)


@pytest.mark.parametrize("corner", [(0, 0, 0), (30, 50, 60), (50, 88, 74)])
def test_crop_gives_the_uncropped_medpy_values(make_pair, corner) -> None:
    # the same small pair pasted into a large empty volume, flush with the border or inside it
    pred_small, gt_small = make_pair((14, 30, 26), 2, 5)
    spacing = (2.0, 0.7, 0.9)
    pred = np.zeros((64, 118, 100), dtype=np.uint8)
    gt = np.zeros_like(pred)
    box = tuple(slice(c, c + n) for c, n in zip(corner, pred_small.shape, strict=True))
    pred[box], gt[box] = pred_small, gt_small
    ours = class_metrics(pred, gt, spacing)
    for label, m in ours.items():
        p, g = pred == label, gt == label
        assert m.hd95 == pytest.approx(medpy_binary.hd95(p, g, spacing), rel=1e-12)
        assert m.hd == pytest.approx(medpy_binary.hd(p, g, spacing), rel=1e-12)
        assert m.assd == pytest.approx(medpy_binary.assd(p, g, spacing), rel=1e-12)


def test_kdtree_and_edt_routes_give_the_same_distances(make_pair, monkeypatch) -> None:
    pred, gt = make_pair((14, 30, 26), 1, 9)
    p, g = pred == 1, gt == 1
    spacing = (2.5, 0.8, 0.8)
    monkeypatch.setattr(surface_module, "_MIN_VOXELS_PER_SURFACE_POINT", 10**9)
    edt_pg, edt_gp = directed_surface_distances(p, g, spacing)
    # KD-tree only, including the unbounded second query for far points
    monkeypatch.setattr(surface_module, "_MIN_VOXELS_PER_SURFACE_POINT", 0)
    monkeypatch.setattr(surface_module, "_PROBE_RADIUS_VOXELS", 0.5)
    monkeypatch.setattr(surface_module, "_EDT_VOXELS_PER_DEEP_QUERY", 0)
    kd_pg, kd_gp = directed_surface_distances(p, g, spacing)
    np.testing.assert_allclose(kd_pg, edt_pg, rtol=1e-14, atol=0)
    np.testing.assert_allclose(kd_gp, edt_gp, rtol=1e-14, atol=0)
    # probe, then every far query inside the other surface's box through the EDT of that box
    monkeypatch.setattr(surface_module, "_EDT_VOXELS_PER_DEEP_QUERY", 10**9)
    mixed_pg, mixed_gp = directed_surface_distances(p, g, spacing)
    np.testing.assert_allclose(mixed_pg, edt_pg, rtol=1e-14, atol=0)
    np.testing.assert_allclose(mixed_gp, edt_gp, rtol=1e-14, atol=0)
    assert edt_pg.max() > 0 and edt_gp.max() > 0
