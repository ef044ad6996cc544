"""Metrics widget in a real viewer: per-class table with a mean row, chart, per-slice Dice, CSV, mismatches."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from widget_helpers import NAMES, ORIGIN, SPACING, notifications, tiny_volume

from napari_smp._widgets._display import table_text

pytestmark = pytest.mark.gui


@pytest.fixture
def metrics_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    _, gt = tiny_volume()
    pred = gt.copy()
    pred[gt == 1] = 0
    pred[:, 6:16, 6:16] = 1  # the liver square moved one voxel along x: Dice 2 * 90 / 200 = 0.9
    pred[3:, gt[0] == 2] = 0  # the spleen is missed on slices 3..5
    viewer.add_labels(gt, name="ground truth", scale=SPACING, translate=ORIGIN,
                      metadata={"class_names": dict(enumerate(NAMES))})
    viewer.add_labels(pred, name="prediction", scale=SPACING, translate=ORIGIN)
    return viewer, pred, gt


def _widget(viewer):
    from napari_smp._widgets.evaluate import MetricsWidget

    w = MetricsWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.pred_combo.set_layer("prediction")
    w.gt_combo.set_layer("ground truth")
    return w


def test_metrics_table_chart_per_slice_and_csv(metrics_viewer, qtbot, tmp_path):
    from napari_smp.metrics.report import evaluate_labels

    viewer, pred, gt = metrics_viewer
    w = _widget(viewer)
    w.convention_combo.setCurrentText("monai")
    w.run_button.click()
    qtbot.waitUntil(lambda: w.report is not None, timeout=20_000)
    ref = evaluate_labels(pred, gt, SPACING, convention="monai", class_names=dict(enumerate(NAMES)))
    text = table_text(w.table)
    assert text[0] == ["class", "Dice", "HD95 (mm)", "HD (mm)", "ASSD (mm)", "volume (mL)", "GT volume (mL)"]
    assert [r[0] for r in text[1:]] == ["liver", "spleen", "mean"]
    assert text[1][1] == "0.900" and ref.rows[0].dice == pytest.approx(0.9)
    for r, row in enumerate(ref.rows, start=1):
        assert [float(v) for v in text[r][1:]] == pytest.approx(
            [row.dice, row.hd95_mm, row.hd_mm, row.assd_mm, row.pred_ml, row.gt_ml], abs=1e-3)
        assert row.gt_ml == pytest.approx(row.gt_voxels * np.prod(SPACING) / 1000)
    assert float(text[3][1]) == pytest.approx(ref.mean.dice, abs=1e-3)
    assert w.table.item(2, 0).font().bold() and not w.table.item(0, 0).font().bold()
    assert w.report.convention == "monai" and w.report.spacing == SPACING
    # per-slice Dice of the spleen: 1 on slices 0..2, 0 where it was missed
    w.slice_class_combo.setCurrentText("spleen")
    w.slice_button.click()
    qtbot.waitUntil(lambda: w.slice_dice is not None, timeout=10_000)
    np.testing.assert_allclose(w.slice_dice, [1, 1, 1, 0, 0, 0])
    out = w.export_csv(tmp_path / "m.csv")
    rows = list(csv.reader(out.open()))
    assert rows[0][:3] == ["label", "name", "dice"] and [r[1] for r in rows[1:]] == ["liver", "spleen", "mean"]
    assert float(rows[1][2]) == pytest.approx(0.9)


@pytest.mark.parametrize("change, message", [
    ({"data": np.zeros((5, 32, 32), np.uint8)}, "is (5, 32, 32) but 'ground truth' is (6, 32, 32)"),
    ({"scale": (3.0, 0.8, 0.8)}, "has voxels of 3 x 0.8 x 0.8 mm but 'ground truth' has 2.5 x 0.8 x 0.8 mm"),
])
def test_layers_on_different_grids_are_refused_with_a_sentence(metrics_viewer, qtbot, change, message):
    viewer, pred, _ = metrics_viewer
    kwargs = {"data": pred, "scale": SPACING, "translate": ORIGIN, **change}
    viewer.add_labels(kwargs.pop("data"), name="other", **kwargs)
    w = _widget(viewer)
    w.pred_combo.set_layer("other")
    assert w.compute() is None
    assert any(message in m for m in notifications("error")), notifications("error")
    assert w.report is None and w.run_button.isEnabled()
