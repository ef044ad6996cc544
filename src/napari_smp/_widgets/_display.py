"""What the widgets show besides layers: training curves and charts (matplotlib) and tables.

Matplotlib never runs on the viewer's thread. Importing its backends took 2.1 s on a busy 2-core CPU
(the Fine-tune widget froze the viewer that long when opened from the Plugins menu) and a full figure
draw 150-260 ms there (Pre-train's Start, Dice per slice). So the plots are ``QLabel`` objects showing
a picture: one plot thread (all plots share it: matplotlib is not thread-safe) imports matplotlib and
draws with Agg (``_plot_canvas``), and the picture is handed to the main thread, which only sets it.
The training plot collects reports as they arrive and asks for a picture at most every
``interval_ms`` and never while one is being drawn, so the plot thread never falls behind however
fast the optimiser steps. Tables are read-only ``QTableWidget`` objects filled from rows of text and
numbers.
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qtpy.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal
from qtpy.QtGui import QFont, QImage, QPixmap
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QSizePolicy, QTableWidget, QTableWidgetItem

__all__ = ["TrainingPlot", "BarPlot", "CurveState", "make_table", "fill_table", "fit_rows", "table_text", "format_cell",
           "plot_thread"]

_EXECUTOR: ThreadPoolExecutor | None = None


class _Relay(QObject):
    """Carries pictures from the plot thread to the main thread, to whichever plot is still open.

    The plot thread never emits on a plot's own signal: a plot closed while its picture was being drawn
    is a deleted C++ object, and emitting on it from another thread crashed the process (a segfault in
    the next test). The relay lives as long as the application; its slot runs on the main thread and
    hands the picture over only to a plot that is still there (its weak reference alive, its Qt object not
    deleted: a deleted one raises RuntimeError and is dropped).
    """

    delivered = Signal(int, object)  # (plot key, RGBA array or exception)

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, weakref.ref] = {}
        self.delivered.connect(self._deliver)

    def _deliver(self, key: int, picture: object) -> None:  # main thread
        ref = self.live.get(key)
        target = ref() if ref is not None else None
        if target is None:
            self.live.pop(key, None)
            return
        try:
            target._show(picture)
        except RuntimeError:  # its Qt object is deleted (the Python wrapper outlived it)
            self.live.pop(key, None)

    def forget_gone(self) -> None:
        """Drop the plots whose Python object is gone (main thread; a plot registering calls it)."""
        for key in [k for k, ref in self.live.items() if ref() is None]:
            del self.live[key]


_RELAY: _Relay | None = None
_KEYS = itertools.count()


def _relay() -> _Relay:
    """The one relay, made on the main thread on first use."""
    global _RELAY
    if _RELAY is None:
        _RELAY = _Relay()
        app = QCoreApplication.instance()
        if app is not None:
            _RELAY.moveToThread(app.thread())
    return _RELAY


@dataclass
class CurveState:
    """A snapshot of a training plot's data, taken on the main thread and drawn in the plot thread."""

    run: int  # a new run (``reset``) redraws the axes
    max_steps: int
    slots: int
    width: int  # px
    height: int
    loss_only: bool
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    ks: list[int] = field(default_factory=list)
    warmup_end: int | None = None
    k_hidden: bool = False

    def loss_curve(self) -> list[float]:
        """Pre-training: the absolute loss; fine-tuning: the loss relative to the first one."""
        if self.loss_only:
            return list(self.losses)
        first = self.losses[0] if self.losses and self.losses[0] > 0 else 1.0
        return [v / first for v in self.losses]


def plot_thread() -> ThreadPoolExecutor:
    """The one thread all plots draw in (made on first use; it imports matplotlib the first time)."""
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="napari-smp-plots")
    return _EXECUTOR


class _Picture(QLabel):
    """A label showing pictures drawn in the plot thread, one drawing at a time.

    ``_draw(make)`` sends ``make()`` (run in the plot thread; returns RGBA) unless a drawing is under
    way, in which case the newest request waits and is sent when the picture arrives. ``pictures``
    counts the pictures shown.
    """

    def __init__(self, min_height: int) -> None:
        super().__init__()
        self.setMinimumHeight(min_height)
        # the picture follows the label's size, never the other way round (a loop of ever larger pictures)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.pictures = 0
        self._busy = False
        self._waiting: Callable[[], np.ndarray] | None = None
        relay, key = _relay(), next(_KEYS)
        self._key = key
        # no slot on our own ``destroyed``: a Python slot run while Qt destroys the object crashed the
        # process once (CI, test_pretrain_widget); the relay drops plots that are gone when it meets them
        relay.forget_gone()
        relay.live[key] = weakref.ref(self)
        self._resized = QTimer(self)  # a drag of the dock's edge redraws once, when it rests
        self._resized.setSingleShot(True)
        self._resized.setInterval(150)
        self._resized.timeout.connect(self._redraw)

    def _px(self) -> tuple[int, int]:
        return max(self.width(), 200), max(self.height(), self.minimumHeight())

    def _draw(self, make: Callable[[], np.ndarray]) -> None:
        if self._busy:
            self._waiting = make
            return
        self._busy = True
        future = plot_thread().submit(make)
        relay, key = _relay(), self._key

        def done(f: Future) -> None:  # in the plot thread: the relay outlives every plot
            relay.delivered.emit(key, f.exception() or f.result())

        future.add_done_callback(done)

    def _show(self, picture: object) -> None:
        self._busy = False
        if isinstance(picture, BaseException):  # a bug: say it where bugs are said, keep the viewer going
            import warnings

            warnings.warn(f"a plot could not be drawn: {picture!r}", RuntimeWarning, stacklevel=1)
        else:
            rgba = np.ascontiguousarray(picture)
            h, w = rgba.shape[:2]
            image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
            self.setPixmap(QPixmap.fromImage(image))  # fromImage copies: the array may go
            self.pictures += 1
        if self._waiting is not None:
            make, self._waiting = self._waiting, None
            self._draw(make)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._resized.start()

    def _redraw(self) -> None:
        """Draw again at the current size (subclasses)."""


class _FigureHolder:
    """The plot thread's figure of one plot; touched only in the plot thread."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self.figure: Any = None

    def get(self) -> Any:
        if self.figure is None:
            self.figure = self._make()
        return self.figure


class TrainingPlot(_Picture):
    """Loss (left axis) and the W-LD memory size K (right axis) against the optimiser step.

    Reports queue up here; a timer sends a snapshot to the plot thread every ``interval_ms``
    (``_plot_canvas.TrainingFigure`` draws the axes once per run and the curves on them after that).

    Args:
        interval_ms: how often queued reports are shown.
        loss_only: pre-training's plot: the absolute loss under ``loss_label``, with no K axis and no
            warm-up mark (its network trains without the memory bank).
        loss_label: the loss axis's title when ``loss_only``.
    """

    _runs = itertools.count(1)

    def __init__(self, interval_ms: int = 400, loss_only: bool = False, loss_label: str = "loss") -> None:
        super().__init__(190)
        self.loss_only = loss_only
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.ks: list[int] = []
        self.warmup_end: int | None = None
        self.k_hidden = False  # a report without K came: the model has no memory bank
        self._run = (0, 16, 8)  # (run number, max steps, slots)
        self._dirty = False

        def make() -> Any:
            from ._plot_canvas import TrainingFigure

            return TrainingFigure(loss_only, loss_label)

        self._figure = _FigureHolder(make)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)

    @property
    def draws(self) -> int:
        """Full figure draws so far (axes and curves)."""
        figure = self._figure.figure
        return figure.draws if figure is not None else 0

    @property
    def blits(self) -> int:
        """Curve updates on the cached axes so far."""
        figure = self._figure.figure
        return figure.blits if figure is not None else 0

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
        self._run = (next(self._runs), 100 if max_steps is None else max_steps, slots)
        self._dirty = True
        self.flush()
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
        """Send the reports that arrived since the last call to the plot thread."""
        if not self._dirty:
            return
        self._dirty = False
        self._send()

    def _redraw(self) -> None:
        if self._run[0]:  # a run was shown: draw it at the new size
            self._send()

    def _send(self) -> None:
        run, max_steps, slots = self._run
        width, height = self._px()
        state = CurveState(run, max_steps, slots, width, height, self.loss_only, list(self.steps),
                           list(self.losses), list(self.ks), self.warmup_end, self.k_hidden)
        holder = self._figure
        self._draw(lambda: holder.get().render(state))


class BarPlot(_Picture):
    """One bar chart (Dice per class) or one line (Dice per slice), drawn in the plot thread on demand."""

    def __init__(self) -> None:
        super().__init__(170)
        self._last: tuple[str, tuple[Any, ...]] | None = None

        def make() -> Any:
            from ._plot_canvas import ChartFigure

            return ChartFigure()

        self._figure = _FigureHolder(make)

    def _ask(self, method: str, *args: Any) -> None:
        self._last = (method, args)
        width, height = self._px()
        holder = self._figure
        self._draw(lambda: getattr(holder.get(), method)(width, height, *args))

    def _redraw(self) -> None:
        if self._last is not None:
            self._ask(self._last[0], *self._last[1])

    def bars(self, names: Sequence[str], values: Sequence[float], ylabel: str) -> None:
        self._ask("bars", list(names), list(values), ylabel)

    def line(self, xs: Sequence[int], values: Sequence[float], xlabel: str, ylabel: str, title: str) -> None:
        self._ask("line", list(xs), list(values), xlabel, ylabel, title)


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
    fit_rows(table)


#: a table shows at most this many rows before it scrolls, so that what follows it stays in view
TABLE_MAX_ROWS = 12


def fit_rows(table: QTableWidget, max_rows: int = TABLE_MAX_ROWS) -> None:
    """Cap the table's height at its rows (up to ``max_rows``): a short table leaves the charts below it in
    view instead of stretching over the dock's free space and pushing them out of sight."""
    table.resizeRowsToContents()
    shown = min(table.rowCount(), max_rows)
    height = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
    height += sum(table.rowHeight(r) for r in range(shown))
    height += table.horizontalScrollBar().sizeHint().height()  # room for it, shown or not: no jumping
    table.setMaximumHeight(max(height, table.minimumHeight()))


def table_text(table: QTableWidget) -> list[list[str]]:
    """The table's cells as text, header first (what tests and CSV export read)."""
    header = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    body = [[table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
            for r in range(table.rowCount())]
    return [header, *body]
