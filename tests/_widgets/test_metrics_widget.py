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
    assert text[0] == ["class", "Dice", "HD95 (mm)", "HD (mm)", "ASSD (mm)", "volume (mL)", "GT volume (mL)",
                       "voxels", "GT voxels"]
    assert [r[0] for r in text[1:]] == ["liver", "spleen", "mean"]
    assert text[1][1] == "0.900" and ref.rows[0].dice == pytest.approx(0.9)
    for r, row in enumerate(ref.rows, start=1):
        assert [float(v) for v in text[r][1:7]] == pytest.approx(
            [row.dice, row.hd95_mm, row.hd_mm, row.assd_mm, row.pred_ml, row.gt_ml], abs=1e-3)
        assert [int(v) for v in text[r][7:]] == [int((pred == row.label).sum()), int((gt == row.label).sum())]
        assert row.gt_ml == pytest.approx(row.gt_voxels * np.prod(SPACING) / 1000)
    assert float(text[3][1]) == pytest.approx(ref.mean.dice, abs=1e-3)
    assert w.table.item(2, 0).font().bold() and not w.table.item(0, 0).font().bold()
    assert w.report.convention == "monai" and w.report.spacing == SPACING
    # per-slice Dice of the spleen: 1 on slices 0..2, 0 where it was missed
    w.slice_class_combo.setCurrentText("spleen")
    w.slice_button.click()
    qtbot.waitUntil(lambda: w.slice_dice is not None, timeout=10_000)
    np.testing.assert_allclose(w.slice_dice, [1, 1, 1, 0, 0, 0])
    qtbot.waitUntil(lambda: w.chart.pictures > 0, timeout=20_000)  # the line is drawn (in the plot thread)
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


def _computed(w, qtbot):
    """Compute, and return once the outcome reached the main thread (table, status, notifications)."""
    job = w.compute()
    assert job is not None
    with qtbot.waitSignal(job.ended, timeout=20_000):
        pass


def test_an_empty_ground_truth_is_named_and_clears_the_previous_result(metrics_viewer, qtbot):
    viewer, pred, gt = metrics_viewer
    w = _widget(viewer)
    _computed(w, qtbot)
    assert w.report is not None and w.table.rowCount() == 3 and w.bar_scroll.isVisibleTo(w)
    viewer.add_labels(np.zeros_like(gt), name="blank", scale=SPACING, translate=ORIGIN)
    w.gt_combo.set_layer("blank")
    _computed(w, qtbot)
    message = "the ground truth layer 'blank' has no labels"
    assert any(message in m for m in notifications("error")), notifications("error")
    assert message in w.status.text() and "mean Dice" not in w.status.text()
    assert w.report is None and w.table.rowCount() == 0 and not w.bar_scroll.isVisibleTo(w)
    assert not w.copy_button.isEnabled() and not w.export_button.isEnabled() and w.slice_class_combo.count() == 0


def test_an_empty_prediction_is_scored_and_said_to_be_empty(metrics_viewer, qtbot):
    viewer, pred, gt = metrics_viewer
    viewer.add_labels(np.zeros_like(pred), name="nothing", scale=SPACING, translate=ORIGIN)
    w = _widget(viewer)
    w.pred_combo.set_layer("nothing")
    _computed(w, qtbot)
    assert w.status.text().startswith("the prediction layer 'nothing' has no labels")
    assert any("'nothing' has no labels" in m for m in notifications("warning")), notifications("warning")
    assert [r.dice for r in w.report.rows] == [0.0, 0.0]


def test_a_grid_mismatch_after_a_result_clears_the_table(metrics_viewer, qtbot):
    viewer, pred, _ = metrics_viewer
    w = _widget(viewer)
    _computed(w, qtbot)
    assert w.table.rowCount() == 3
    viewer.add_labels(pred[:5], name="short", scale=SPACING, translate=ORIGIN)
    w.pred_combo.set_layer("short")
    assert w.compute() is None
    assert w.table.rowCount() == 0 and w.report is None and not w.bar_scroll.isVisibleTo(w)


def test_copy_puts_the_selected_rows_on_the_clipboard_tab_separated(metrics_viewer, qtbot):
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    viewer, _, _ = metrics_viewer
    w = _widget(viewer)
    _computed(w, qtbot)
    everything = w.copy_table()
    lines = everything.splitlines()
    assert QApplication.clipboard().text() == everything
    assert lines[0].split("\t") == table_text(w.table)[0] and [ln.split("\t")[0] for ln in lines[1:]] == [
        "liver", "spleen", "mean"]
    w.table.selectRow(1)
    qtbot.keyClick(w.table, "c", modifier=Qt.KeyboardModifier.ControlModifier)
    copied = QApplication.clipboard().text().splitlines()
    assert len(copied) == 2 and copied[1].split("\t") == table_text(w.table)[2]  # the header and the spleen


def test_34_classes_give_one_legible_bar_per_class_and_rows_built_in_the_worker(make_napari_viewer, qtbot,
                                                                               monkeypatch):
    import threading

    from napari_smp._widgets import evaluate
    from napari_smp._widgets._bar_list import ROW_PX

    viewer = make_napari_viewer()
    gt = np.zeros((4, 40, 40), np.uint8)
    for k in range(34):  # 34 classes, each a 4 x 4 block, values 1..34
        y, x = divmod(k, 6)
        gt[:, 1 + 6 * y:5 + 6 * y, 1 + 6 * x:5 + 6 * x] = k + 1
    pred = gt.copy()
    pred[:, :, :20][pred[:, :, :20] % 2 == 0] = 0  # the even classes on the left half are missed
    names = {k: f"organ number {k}" for k in range(1, 35)}
    viewer.add_labels(gt, name="ground truth", metadata={"class_names": names})
    viewer.add_labels(pred, name="prediction")
    threads, rows_of = [], evaluate.report_rows

    def spy(report):
        threads.append(threading.get_ident())
        return rows_of(report)

    monkeypatch.setattr(evaluate, "report_rows", spy)
    w = _widget(viewer)
    _computed(w, qtbot)
    assert w.table.rowCount() == 35 and table_text(w.table)[1][0] == "organ number 1"
    assert threads and threads[0] != threading.get_ident()  # the rows were built off the main thread
    assert w.bars.names == [f"organ number {k}" for k in range(1, 35)]
    assert w.bars.values == pytest.approx([r.dice for r in w.report.rows])
    assert w.bars.height() >= 34 * ROW_PX  # a row per class, never squeezed
    assert w.bar_scroll.height() < w.bars.height()  # inside a scroll area of bounded height


def test_bar_list_paints_bars_proportional_to_the_values(qtbot):
    from qtpy.QtGui import QColor

    from napari_smp._widgets._bar_list import ROW_PX, BarList

    bars = BarList()
    qtbot.addWidget(bars)
    bars.resize(300, 10)
    bars.set_bars(["a", "b", "c"], [0.2, float("nan"), 0.9])
    assert bars.height() == 3 * ROW_PX + 12
    image = bars.grab().toImage()
    scale = image.devicePixelRatio()  # the picture is in device pixels
    blue = QColor("#4c72b0")

    def is_blue(x, y):  # within the rounding of a 16-bit display (Xvfb's default depth)
        c = QColor(image.pixel(x, y))
        return max(abs(c.red() - blue.red()), abs(c.green() - blue.green()), abs(c.blue() - blue.blue())) <= 8

    widths = []
    for row in range(3):
        y = int((6 + row * ROW_PX + ROW_PX // 2) * scale)  # the middle of the row
        widths.append(sum(is_blue(x, y) for x in range(image.width())) / scale)
    assert widths[1] == 0 and widths[0] > 0  # n/a draws no bar
    assert widths[2] / widths[0] == pytest.approx(4.5, rel=0.08)
