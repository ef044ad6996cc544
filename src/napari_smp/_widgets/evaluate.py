"""Metrics widget: a prediction scored against a ground truth, per class, in a worker.

Dice, HD95, HD and ASSD (mm, from the layers' voxel size) per class and their mean, a bar chart of
Dice, Dice per slice for one class on demand, and CSV export. Two layers that do not share one grid
are refused with a sentence saying how they differ.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QPushButton

from ._controls import LayerCombo
from ._display import BarPlot, fill_table, make_table
from ._jobs import EngineJob, JobContext, JobWidget, section
from ._layers import check_same_grid, class_names_of, labels_of, volume_spacing

__all__ = ["MetricsWidget", "report_rows", "HEADER"]

HEADER = ["class", "Dice", "HD95 (mm)", "HD (mm)", "ASSD (mm)", "volume (mL)", "GT volume (mL)"]


def report_rows(report: Any) -> tuple[list[list[object]], dict[tuple[int, int], str], list[int]]:
    """Table rows (classes, then the mean), tooltips saying why a value is n/a, and the class labels."""
    rows: list[list[object]] = []
    tips: dict[tuple[int, int], str] = {}
    labels: list[int] = []
    for r, row in enumerate(report.rows):
        rows.append([row.name, row.dice, row.hd95_mm, row.hd_mm, row.assd_mm, row.pred_ml, row.gt_ml])
        labels.append(int(row.label))
        if row.note:
            for c in range(1, 5):
                tips[(r, c)] = f"{row.note}: {row.pred_voxels} predicted and {row.gt_voxels} true voxels"
    m = report.mean
    rows.append(["mean", m.dice, m.hd95_mm, m.hd_mm, m.assd_mm, "", ""])
    for c in range(1, 5):
        tips[(len(rows) - 1, c)] = m.note
    return rows, tips, labels


class MetricsWidget(JobWidget):
    """Prediction + ground truth Labels -> per-class table, Dice chart, per-slice Dice, CSV."""

    def __init__(self, napari_viewer: Any) -> None:
        import napari

        super().__init__(napari_viewer, "Compute")
        self.pred_combo = LayerCombo(napari_viewer, napari.layers.Labels)
        self.gt_combo = LayerCombo(napari_viewer, napari.layers.Labels)
        self.convention_combo = QComboBox()
        self.convention_combo.addItems(["medpy", "monai"])
        self.convention_combo.setToolTip("HD95: medpy pools both surface-distance sets (the paper's numbers); "
                                         "monai takes the larger of the two directed 95th percentiles")
        self.form.addRow("prediction", self.pred_combo)
        self.form.addRow("ground truth", self.gt_combo)
        self.form.addRow("HD95 convention", self.convention_combo)
        self.table = make_table(150)
        self.chart = BarPlot()
        self.slice_class_combo = QComboBox()
        self.slice_button = QPushButton("Dice per slice")
        self.export_button = QPushButton("Export CSV...")
        self.slice_button.setEnabled(False)
        self.export_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.slice_class_combo, 1)
        row.addWidget(self.slice_button)
        row.addWidget(self.export_button)
        self.body.addWidget(self.table)
        self.body.addWidget(self.chart)
        self.chart.setVisible(False)  # an empty chart says nothing: it appears with the first result
        self.body.addWidget(section("one class, slice by slice"))
        self.body.addLayout(row)
        self.run_button.clicked.connect(self.compute)
        self.slice_button.clicked.connect(self.per_slice)
        self.export_button.clicked.connect(self._export_dialog)
        self.report: Any = None
        self.slice_dice: np.ndarray | None = None
        self._pair: tuple[np.ndarray, np.ndarray] | None = None

    def _inputs(self) -> tuple[Any, Any] | None:
        pred, gt = self.pred_combo.layer(), self.gt_combo.layer()
        if pred is None or gt is None:
            self.fail("choose a prediction and a ground-truth Labels layer")
            return None
        if pred is gt:
            self.fail("the prediction and the ground truth are the same layer; choose two layers")
            return None
        try:
            check_same_grid(pred, gt)
        except ValueError as err:
            self.fail(str(err))
            return None
        return pred, gt

    def compute(self) -> EngineJob | None:
        """Score the prediction against the ground truth in a worker and fill the table and chart."""
        layers = self._inputs()
        if layers is None:
            return None
        pred_layer, gt_layer = layers
        pred, gt = labels_of(pred_layer), labels_of(gt_layer)
        spacing = volume_spacing(gt_layer)
        names = class_names_of(gt_layer) or class_names_of(pred_layer)
        convention = self.convention_combo.currentText()

        def work(ctx: JobContext) -> Any:
            from ..metrics import evaluate_labels

            report = evaluate_labels(pred, gt, spacing, convention=convention, class_names=names)
            if ctx.cancelled():
                from ..engine.errors import Cancelled

                raise Cancelled("metrics cancelled")
            return report

        def done(report: Any) -> None:
            self.report, self._pair = report, (pred, gt)
            self._show(report)

        return self.start_job(work, done, "Metrics", f"scoring '{pred_layer.name}' against '{gt_layer.name}'...")

    def _show(self, report: Any) -> None:
        rows, tips, labels = report_rows(report)
        fill_table(self.table, HEADER, rows, bold_last=True, tooltips=tips)
        self.chart.setVisible(True)
        self.chart.bars([str(r[0]) for r in rows[:-1]], [float(r[1]) for r in rows[:-1]], "Dice")
        self.slice_class_combo.clear()
        for label, row in zip(labels, rows, strict=False):
            self.slice_class_combo.addItem(str(row[0]), label)
        self.slice_button.setEnabled(bool(labels))
        self.export_button.setEnabled(True)
        mean = rows[-1][1]
        self.status.setText(f"mean Dice {'n/a' if math.isnan(mean) else f'{mean:.3f}'} over {len(labels)} classes")

    def per_slice(self) -> EngineJob | None:
        """Dice of the chosen class on every axial slice, drawn as a line (after ``compute``)."""
        if self._pair is None or self.slice_class_combo.count() == 0:
            self.fail("compute the metrics first")
            return None
        pred, gt = self._pair
        label = int(self.slice_class_combo.currentData())
        name = self.slice_class_combo.currentText()

        def work(ctx: JobContext) -> np.ndarray:
            from ..metrics import per_slice_dice

            return np.asarray(per_slice_dice(pred, gt, label), dtype=np.float64)

        def done(values: np.ndarray) -> None:
            self.slice_dice = values
            self.chart.line(range(len(values)), values, "axial slice", "Dice", f"Dice per slice: {name}")
            scored = values[~np.isnan(values)]
            self.status.setText(f"{name}: Dice per slice from {scored.min():.2f} to {scored.max():.2f} "
                                f"on {scored.size} slices holding it" if scored.size else
                                f"{name} is on no slice of either layer")

        return self.start_job(work, done, "Dice per slice", f"Dice per slice of {name}...")

    def export_csv(self, path: str | Path) -> Path:
        """Write the last report as CSV (atomically) and return the path."""
        from ..io.atomic import atomic_write_text

        if self.report is None:
            raise ValueError("compute the metrics first")
        path = Path(path)
        atomic_write_text(path, self.report.to_csv())
        return path

    def _export_dialog(self) -> None:
        from napari.utils.notifications import show_error, show_info

        path, _ = QFileDialog.getSaveFileName(self, "Export metrics", "metrics.csv", "CSV (*.csv)")
        if not path:
            return
        try:
            show_info(f"metrics written to {self.export_csv(path)}")
        except (OSError, ValueError) as err:
            show_error(f"could not write {path}: {err}")
