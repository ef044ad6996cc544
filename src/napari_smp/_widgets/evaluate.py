"""Metrics widget: a prediction scored against a ground truth, per class, in a worker.

Dice, HD95, HD and ASSD (mm, from the layers' voxel size), the volumes in mL and the voxel counts per
class and their mean; a horizontal bar chart of Dice (one row per class, legible with 34 classes);
Dice per slice for one class on demand; the table copied (Ctrl+C or Copy: the selected rows, or all,
tab-separated, as spreadsheets paste them) or exported as CSV.

The copies of the layers, the scores and the table rows are made in the worker; the main thread only
fills the table and paints the chart (``_bar_list.BarList``: a few ms for 34 classes). Two layers
that do not share one grid are refused with a sentence saying how they differ; an empty ground truth
is refused, an empty prediction is scored and said to be empty. Any failure clears the previous
result, so what is on screen always belongs to the layers named in the status line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import QApplication, QComboBox, QFileDialog, QHBoxLayout, QPushButton, QScrollArea

from ._bar_list import BarList
from ._controls import LayerCombo
from ._display import BarPlot, fill_table, make_table, table_text
from ._jobs import EngineJob, JobContext, JobWidget, Outcome, section
from ._layers import check_same_grid, class_names_of, labels_of, volume_spacing

__all__ = ["MetricsWidget", "report_rows", "HEADER", "CHART_MAX_HEIGHT"]

HEADER = ["class", "Dice", "HD95 (mm)", "HD (mm)", "ASSD (mm)", "volume (mL)", "GT volume (mL)", "voxels",
          "GT voxels"]
#: the Dice chart scrolls beyond this height (about 16 classes)
CHART_MAX_HEIGHT = 340


@dataclass
class _Scored:
    """What the worker hands the main thread: the report and its table rows."""

    report: Any
    rows: list[list[object]]
    tips: dict[tuple[int, int], str]
    labels: list[int]
    note: str  # a sentence about an empty prediction, or ""
    pair: tuple[np.ndarray, np.ndarray]  # the (Z, Y, X) prediction and ground truth that were scored


def report_rows(report: Any) -> tuple[list[list[object]], dict[tuple[int, int], str], list[int]]:
    """Table rows (classes, then the mean), tooltips saying why a value is n/a, and the class labels."""
    rows: list[list[object]] = []
    tips: dict[tuple[int, int], str] = {}
    labels: list[int] = []
    for r, row in enumerate(report.rows):
        rows.append([row.name, row.dice, row.hd95_mm, row.hd_mm, row.assd_mm, row.pred_ml, row.gt_ml,
                     int(row.pred_voxels), int(row.gt_voxels)])
        labels.append(int(row.label))
        if row.note:
            for c in range(1, 5):
                tips[(r, c)] = f"{row.note}: {row.pred_voxels} predicted and {row.gt_voxels} true voxels"
    m = report.mean
    rows.append(["mean", m.dice, m.hd95_mm, m.hd_mm, m.assd_mm, "", "", "", ""])
    for c in range(1, 5):
        tips[(len(rows) - 1, c)] = m.note
    return rows, tips, labels


class MetricsWidget(JobWidget):
    """Prediction + ground truth Labels -> per-class table, Dice chart, per-slice Dice, copy, CSV."""

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
        self.table.setSelectionMode(self.table.SelectionMode.ExtendedSelection)
        self.table.setToolTip("Ctrl+C copies the selected rows (all rows when none is selected), tab-separated")
        self.table.installEventFilter(self)  # Ctrl+C: Qt's own copies one cell; ours copies the rows
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("copy the selected rows (or all) with the header, tab-separated")
        self.export_button = QPushButton("Export CSV...")
        table_row = QHBoxLayout()
        table_row.addStretch(1)
        table_row.addWidget(self.copy_button)
        table_row.addWidget(self.export_button)
        # the Dice chart: one painted row per class, scrolling past CHART_MAX_HEIGHT
        self.bars = BarList()
        self.bar_scroll = QScrollArea()
        self.bar_scroll.setWidget(self.bars)
        self.bar_scroll.setWidgetResizable(True)
        self.bar_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chart = BarPlot()  # Dice per slice: one line, cheap to draw
        self.slice_class_combo = QComboBox()
        self.slice_button = QPushButton("Dice per slice")
        for button in (self.slice_button, self.export_button, self.copy_button):
            button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.slice_class_combo, 1)
        row.addWidget(self.slice_button)
        self.body.addWidget(self.table)
        self.body.addLayout(table_row)
        self.body.addWidget(self.bar_scroll)
        self.body.addWidget(section("one class, slice by slice"))
        self.body.addLayout(row)
        self.body.addWidget(self.chart)
        # empty charts say nothing: each appears with its first result
        self.bar_scroll.setVisible(False)
        self.chart.setVisible(False)
        self.run_button.clicked.connect(self.compute)
        self.slice_button.clicked.connect(self.per_slice)
        self.copy_button.clicked.connect(self.copy_table)
        self.export_button.clicked.connect(self._export_dialog)
        self.report: Any = None
        self.slice_dice: np.ndarray | None = None
        self._pair: tuple[np.ndarray, np.ndarray] | None = None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if (watched is self.table and event.type() == QEvent.Type.KeyPress
                and event.matches(QKeySequence.StandardKey.Copy)):
            self.copy_table()
            return True
        return super().eventFilter(watched, event)

    def fail(self, message: str) -> None:
        """A user mistake: the previous result goes too, so nothing on screen belongs to other layers."""
        self.clear_results()
        super().fail(message)

    def clear_results(self) -> None:
        """Empty the table, hide both charts and forget the last report."""
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.bars.set_bars([], [])
        self.bar_scroll.setVisible(False)
        self.chart.setVisible(False)
        self.slice_class_combo.clear()
        for button in (self.slice_button, self.export_button, self.copy_button):
            button.setEnabled(False)
        self.report, self._pair, self.slice_dice = None, None, None

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
        # the copies are made in the worker: two CT-sized copies took 370 ms on the viewer's thread
        pred_layer_ref, gt_layer_ref = pred_layer, gt_layer
        spacing = volume_spacing(gt_layer)
        names = class_names_of(gt_layer) or class_names_of(pred_layer)
        convention = self.convention_combo.currentText()
        pred_name, gt_name = pred_layer.name, gt_layer.name

        def work(ctx: JobContext) -> _Scored:
            from ..engine.errors import Cancelled
            from ..metrics import evaluate_labels
            pred, gt = labels_of(pred_layer_ref), labels_of(gt_layer_ref)
            if not gt.any():
                raise ValueError(f"the ground truth layer '{gt_name}' has no labels; there is nothing to score against")
            note = "" if pred.any() else f"the prediction layer '{pred_name}' has no labels: every class is missed"
            report = evaluate_labels(pred, gt, spacing, convention=convention, class_names=names)
            if ctx.cancelled():
                raise Cancelled("metrics cancelled")
            rows, tips, labels = report_rows(report)
            return _Scored(report, rows, tips, labels, note, (pred, gt))

        def done(scored: _Scored) -> None:
            self.report, self._pair = scored.report, scored.pair
            self._show(scored)

        job = self.start_job(work, done, "Metrics", f"scoring '{pred_name}' against '{gt_name}'...")
        if job is not None:
            job.ended.connect(self._on_compute_ended)
        return job

    def _on_compute_ended(self, outcome: Outcome) -> None:
        if outcome.status == "error":  # the status line says why; a stale table would say otherwise
            self.clear_results()

    def _show(self, scored: _Scored) -> None:
        rows, labels = scored.rows, scored.labels
        fill_table(self.table, HEADER, rows, bold_last=True, tooltips=scored.tips)
        self.bars.set_bars([str(r[0]) for r in rows[:-1]], [float(r[1]) for r in rows[:-1]])
        self.bar_scroll.setFixedHeight(min(self.bars.height() + 2 * self.bar_scroll.frameWidth(), CHART_MAX_HEIGHT))
        self.bar_scroll.setVisible(True)
        self.chart.setVisible(False)
        self.slice_class_combo.clear()
        for label, row in zip(labels, rows, strict=False):
            self.slice_class_combo.addItem(str(row[0]), label)
        self.slice_button.setEnabled(bool(labels))
        self.export_button.setEnabled(True)
        self.copy_button.setEnabled(True)
        mean = rows[-1][1]
        text = f"mean Dice {'n/a' if math.isnan(mean) else f'{mean:.3f}'} over {len(labels)} classes"
        if scored.note:
            from napari.utils.notifications import show_warning

            show_warning(scored.note)
            text = f"{scored.note}; {text}"
        self.status.setText(text)

    def table_tsv(self, selected_only: bool = True) -> str:
        """The header and the selected rows (all rows when none is selected), tab-separated, one per line."""
        cells = table_text(self.table)
        if len(cells) <= 1 or not self.table.columnCount():
            return ""
        chosen = sorted({i.row() for i in self.table.selectedIndexes()}) if selected_only else []
        body = [cells[1 + r] for r in chosen] if chosen else cells[1:]
        return "\n".join("\t".join(row) for row in [cells[0], *body]) + "\n"

    def copy_table(self) -> str:
        """Put :meth:`table_tsv` on the clipboard (spreadsheets paste it as cells) and return it."""
        text = self.table_tsv()
        if text:
            QApplication.clipboard().setText(text)
        return text

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
            self.chart.setVisible(True)
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
