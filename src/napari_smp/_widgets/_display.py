"""What the widgets show besides layers: training curves and charts (matplotlib) and tables.

Drawing a figure costs tens of milliseconds, so the training plot collects reports as they arrive
and redraws at most every ``interval_ms`` from a timer: the viewer stays responsive however fast
the optimiser steps. Matplotlib itself is loaded off the viewer's thread: importing its Qt backend
took 2.1 s of the Fine-tune widget's 2.3 s import on a busy 2-core CPU, all of it a freeze of the
viewer when the widget was opened from the Plugins menu. So the plots are placeholders that hold
their data from the start and put the real canvas (``_plot_canvas``) in when a worker has imported
it; reports and charts that arrive before then are drawn at that moment. Tables are read-only
``QTableWidget`` objects filled from rows of text and numbers.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QFont
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

__all__ = ["TrainingPlot", "BarPlot", "make_table", "fill_table", "table_text", "format_cell"]

_CANVAS_MODULE = "napari_smp._widgets._plot_canvas"


def _import_canvas_module() -> ModuleType:
    return importlib.import_module(_CANVAS_MODULE)


class _LazyCanvas(QWidget):
    """A widget that becomes a matplotlib canvas as soon as ``_plot_canvas`` is imported.

    Already imported (a second widget, or a test that loaded it): the canvas is built at once.
    Otherwise a worker imports it and the canvas is built on the main thread when it returns. Attribute
    lookups this class cannot answer go to the canvas once it exists (``plot._k_line`` ...).
    Subclasses set their own state, then call :meth:`_load`.
    """

    def __init__(self, min_height: int) -> None:
        super().__init__()
        self.setMinimumHeight(min_height)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.canvas: Any = None
        self._loader: Any = None

    def _load(self) -> None:
        module = sys.modules.get(_CANVAS_MODULE)
        if module is not None:
            self._on_loaded(module)
        else:
            from napari.qt.threading import create_worker

            self._loader = create_worker(_import_canvas_module, _start_thread=False)
            self._loader.returned.connect(self._on_loaded)
            self._loader.start()

    def _on_loaded(self, module: ModuleType) -> None:
        try:
            self.canvas = self._make_canvas(module)
            self.layout().addWidget(self.canvas)
        except RuntimeError:  # the widget was closed before matplotlib was loaded
            return
        self._canvas_ready()

    def _make_canvas(self, module: ModuleType) -> Any:
        raise NotImplementedError

    def _canvas_ready(self) -> None:
        """Draw what arrived before the canvas existed."""

    def __getattr__(self, name: str) -> Any:
        canvas = self.__dict__.get("canvas")
        if canvas is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(canvas, name)


class TrainingPlot(_LazyCanvas):
    """Loss (left axis) and the W-LD memory size K (right axis) against the optimiser step.

    Reports queue up here and a timer shows them every ``interval_ms``; the drawing itself (axes drawn
    once per run, curves blitted) is ``_plot_canvas.TrainingCanvas``.

    Args:
        interval_ms: how often queued reports are shown.
        loss_only: pre-training's plot: the absolute loss under ``loss_label``, with no K axis and no
            warm-up mark (its network trains without the memory bank).
        loss_label: the loss axis's title when ``loss_only``.
    """

    def __init__(self, interval_ms: int = 400, loss_only: bool = False, loss_label: str = "loss") -> None:
        super().__init__(190)
        self.loss_only = loss_only
        self.loss_label = loss_label
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.ks: list[int] = []
        self.warmup_end: int | None = None
        self.k_hidden = False  # a report without K came: the model has no memory bank
        self._run: tuple[int, int] | None = None  # (max_steps, slots) of the run being shown
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self._load()

    def _make_canvas(self, module: ModuleType) -> Any:
        return module.TrainingCanvas(self, self.loss_label)

    def _canvas_ready(self) -> None:
        if self._run is not None:
            self.canvas.reset(*self._run)
            self._dirty = bool(self.steps)
            self.flush()

    @property
    def draws(self) -> int:
        """Full figure draws so far (0 before the canvas exists)."""
        return self.canvas.draws if self.canvas is not None else 0

    @property
    def blits(self) -> int:
        """Cheap curve updates so far."""
        return self.canvas.blits if self.canvas is not None else 0

    def relative_losses(self) -> list[float]:
        first = self.losses[0] if self.losses and self.losses[0] > 0 else 1.0
        return [v / first for v in self.losses]

    def reset(self, max_steps: int | None = 16, slots: int = 8) -> None:
        """Clear the curves and draw the axes for a run of ``max_steps`` steps and ``slots`` memory slots.

        ``max_steps`` None (no step cap: a time budget ends the run) starts the axis at 100 steps; it
        grows as the steps come."""
        self.steps.clear()
        self.losses.clear()
        self.ks.clear()
        self.warmup_end = None
        self.k_hidden = False
        self._dirty = False
        self._run = (100 if max_steps is None else max_steps, slots)
        if self.canvas is not None:
            self.canvas.reset(*self._run)
        self._timer.start()

    def add(self, report: Any) -> None:
        """Queue one ``StepReport``; the timer shows it."""
        self.steps.append(int(report.step))
        self.losses.append(float(report.loss))
        if report.k is None:
            self.k_hidden = True
        else:
            self.ks.append(int(report.k))
        if not self.loss_only and not report.warming_up and self.warmup_end is None:
            self.warmup_end = int(report.step)
        self._dirty = True

    def finish(self) -> None:
        self._timer.stop()
        self.flush()

    def flush(self) -> None:
        """Show the reports that arrived since the last call (kept for the canvas if it is not built yet)."""
        if not self._dirty or self.canvas is None:
            return
        self._dirty = False
        self.canvas.flush()


class BarPlot(_LazyCanvas):
    """One bar chart (Dice per class) or one line (Dice per slice), redrawn on demand."""

    def __init__(self) -> None:
        super().__init__(170)
        self._pending: tuple[str, tuple[Any, ...]] | None = None
        self._load()

    def _make_canvas(self, module: ModuleType) -> Any:
        return module.ChartCanvas()

    def _canvas_ready(self) -> None:
        if self._pending is not None:
            method, args = self._pending
            self._pending = None
            getattr(self.canvas, method)(*args)

    def _show(self, method: str, *args: Any) -> None:
        if self.canvas is None:
            self._pending = (method, args)
        else:
            getattr(self.canvas, method)(*args)

    def bars(self, names: Sequence[str], values: Sequence[float], ylabel: str) -> None:
        self._show("bars", list(names), list(values), ylabel)

    def line(self, xs: Sequence[int], values: Sequence[float], xlabel: str, ylabel: str, title: str) -> None:
        self._show("line", list(xs), list(values), xlabel, ylabel, title)


def make_table(min_height: int = 120) -> QTableWidget:
    table = QTableWidget()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.setMinimumHeight(min_height)
    return table


def format_cell(value: object, digits: int = 3, percent: bool = False) -> str:
    """Numbers to text: NaN becomes ``n/a``; ``percent`` shows a share in [0, 1] as ``12.5 %``."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{100 * value:.1f} %" if percent else f"{value:.{digits}f}"
    return str(value)


def fill_table(table: QTableWidget, header: Sequence[str], rows: Sequence[Sequence[object]],
               percent: bool = False, bold_last: bool = False,
               tooltips: dict[tuple[int, int], str] | None = None) -> None:
    """Replace the table's content; numbers right-aligned, ``bold_last`` for a mean row."""
    table.clear()
    table.setColumnCount(len(header))
    table.setRowCount(len(rows))
    table.setHorizontalHeaderLabels(list(header))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem(format_cell(value, percent=percent))
            if isinstance(value, (int, float)):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if tooltips and (r, c) in tooltips:
                item.setToolTip(tooltips[(r, c)])
            if bold_last and r == len(rows) - 1:
                font = QFont()
                font.setBold(True)
                item.setFont(font)
            table.setItem(r, c, item)


def table_text(table: QTableWidget) -> list[list[str]]:
    """The table's cells as text, header first (what tests and CSV export read)."""
    header = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    body = [[table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
            for r in range(table.rowCount())]
    return [header, *body]
