"""What the widgets show besides layers: matplotlib figures (training curves, metric charts) and tables.

Drawing a figure costs tens of milliseconds, so the training plot collects reports as they arrive
and redraws at most every ``interval_ms`` from a timer: the viewer stays responsive however fast
the optimiser steps. Tables are read-only ``QTableWidget``s filled from rows of text and numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QFont
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

__all__ = ["TrainingPlot", "BarPlot", "make_table", "fill_table", "table_text", "format_cell"]


def _figure(height: float, constrained: bool = True) -> Figure:
    fig = Figure(figsize=(4.0, height), dpi=80, layout="constrained" if constrained else None)
    fig.patch.set_alpha(0.0)
    return fig


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    # every tick label is a text object to lay out: four per axis make a full draw ~30 % cheaper
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_locator(MaxNLocator(4))


def _grow(limit: float, needed: float) -> float:
    """The next limit: doubled until it holds ``needed``, so full redraws are O(log steps)."""
    while limit < needed:
        limit *= 2
    return limit


class TrainingPlot(FigureCanvasQTAgg):
    """Loss (left axis) and the W-LD memory size K (right axis) against the optimiser step.

    Reports queue up and a timer shows them every ``interval_ms``. A full figure draw costs
    50-80 ms on an idle 2-core CPU and three times that while training competes for the cores, too
    much for a viewer that must never stall 200 ms. So the axes are drawn once, when the run starts,
    with limits known in advance: x up to the step budget, K up to the bank's M slots, and the loss
    relative to its first value (the latest absolute loss is written in the corner). During the run
    only the curves and that text are blitted onto the cached background (a few ms). Should a curve
    leave its axes, the limit doubles and the axes are redrawn once.

    Args:
        interval_ms: how often queued reports are shown.
        loss_only: pre-training's plot: the absolute loss under ``loss_label``, with no K axis and no
            warm-up mark (its network trains without the memory bank).
        loss_label: the loss axis's title when ``loss_only``.
    """

    def __init__(self, interval_ms: int = 400, loss_only: bool = False, loss_label: str = "loss") -> None:
        super().__init__(_figure(2.4, constrained=False))
        self.setMinimumHeight(190)
        self.loss_only = loss_only
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.ks: list[int] = []
        self.warmup_end: int | None = None
        self.draws = 0  # full redraws
        self.blits = 0  # cheap curve updates
        self._dirty = False
        self._background: Any = None
        fig = self.figure
        fig.subplots_adjust(left=0.15, right=0.95 if loss_only else 0.84, bottom=0.2, top=0.95)
        self._ax = fig.add_subplot(111)
        self._kax = self._ax.twinx()
        (self._loss_line,) = self._ax.plot([], [], color="#1f77b4", lw=1.2, animated=True)
        (self._k_line,) = self._kax.plot([], [], color="#d62728", lw=1.2, drawstyle="steps-post", animated=True)
        self._warm_line = self._ax.axvline(0, color="0.6", lw=0.8, ls="--", visible=False, animated=True)
        self._note = self._ax.text(0.98, 0.96, "", transform=self._ax.transAxes, ha="right", va="top",
                                   fontsize=7, animated=True)
        self._ax.set_xlabel("step", fontsize=8)
        self._ax.set_ylabel(loss_label if loss_only else "loss / first loss", fontsize=8, color="#1f77b4")
        self._kax.set_ylabel("K (memory slots used)", fontsize=8, color="#d62728")
        _style(self._ax)
        self._kax.tick_params(labelsize=8)
        self._kax.yaxis.set_major_locator(MaxNLocator(4, integer=True))
        self._kax.set_visible(not loss_only)
        self.mpl_connect("draw_event", self._on_draw)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self._limits()

    def _limits(self, x: float = 16, loss: float = 1.25, k: float = 8) -> None:
        self._ax.set_xlim(0, x)
        self._ax.set_ylim(0, loss)
        self._kax.set_ylim(0, k)

    def relative_losses(self) -> list[float]:
        first = self.losses[0] if self.losses and self.losses[0] > 0 else 1.0
        return [v / first for v in self.losses]

    def _loss_curve(self) -> list[float]:
        return list(self.losses) if self.loss_only else self.relative_losses()

    def reset(self, max_steps: int | None = 16, slots: int = 8) -> None:
        """Clear the curves and draw the axes for a run of ``max_steps`` steps and ``slots`` memory slots.

        ``max_steps`` None (no step cap: a time budget ends the run) starts the axis at 100 steps; it
        grows as the steps come."""
        max_steps = 100 if max_steps is None else max_steps
        self.steps.clear()
        self.losses.clear()
        self.ks.clear()
        self.warmup_end = None
        self._warm_line.set_visible(False)
        self._note.set_text("")
        self._limits(x=max(2, max_steps), k=max(2, slots))
        self._loss_line.set_data([], [])
        self._k_line.set_data([], [])
        self._k_line.set_visible(not self.loss_only)
        self._full_draw()
        self._timer.start()

    def add(self, report: Any) -> None:
        """Queue one ``StepReport``; the timer shows it."""
        self.steps.append(int(report.step))
        self.losses.append(float(report.loss))
        if report.k is None:  # a model without a memory bank: no K curve
            self._k_line.set_visible(False)
        else:
            self.ks.append(int(report.k))
        if not self.loss_only and not report.warming_up and self.warmup_end is None:
            self.warmup_end = int(report.step)
        self._dirty = True

    def finish(self) -> None:
        self._timer.stop()
        self.flush()

    def flush(self) -> None:
        """Show the reports that arrived since the last call."""
        if not self._dirty:
            return
        self._dirty = False
        self._loss_line.set_data(self.steps, self._loss_curve())
        if self.ks:
            self._k_line.set_data(self.steps, self.ks)
        if self.steps:
            k = f", K {self.ks[-1]}" if self.ks else ""
            self._note.set_text(f"step {self.steps[-1]}: loss {self.losses[-1]:.3g}{k}")
        if self.warmup_end is not None and not self._warm_line.get_visible():
            self._warm_line.set_xdata([self.warmup_end, self.warmup_end])
            self._warm_line.set_visible(True)
        if self._outgrown() or self._background is None:
            self._full_draw()
        else:
            self._blit()

    def _outgrown(self) -> bool:
        x1, l1, k1 = self._ax.get_xlim()[1], self._ax.get_ylim()[1], self._kax.get_ylim()[1]
        finite = [v for v in self._loss_curve() if math.isfinite(v)]
        new = (_grow(x1, self.steps[-1] if self.steps else 0), _grow(l1, max(finite, default=0.0) * 1.02),
               _grow(k1, max(self.ks, default=0)))
        if new == (x1, l1, k1):
            return False
        self._limits(*new)
        return True

    def _full_draw(self) -> None:
        self.draws += 1
        self.draw()  # the draw_event handler caches the background and blits the curves

    def _on_draw(self, event: Any) -> None:
        self._background = self.copy_from_bbox(self.figure.bbox)
        self._draw_curves()

    def _blit(self) -> None:
        self.blits += 1
        self.restore_region(self._background)
        self._draw_curves()
        self.blit(self.figure.bbox)

    def _draw_curves(self) -> None:
        if self._warm_line.get_visible():
            self._ax.draw_artist(self._warm_line)
        self._ax.draw_artist(self._loss_line)
        if not self.loss_only:
            self._kax.draw_artist(self._k_line)
        self._ax.draw_artist(self._note)


class BarPlot(FigureCanvasQTAgg):
    """One bar chart (Dice per class) or one line (Dice per slice), redrawn on demand."""

    def __init__(self) -> None:
        super().__init__(_figure(2.2))
        self.setMinimumHeight(170)
        self._ax = self.figure.add_subplot(111)
        _style(self._ax)

    def bars(self, names: Sequence[str], values: Sequence[float], ylabel: str) -> None:
        ax = self._ax
        ax.clear()
        _style(ax)
        xs = range(len(values))
        clean = [0.0 if math.isnan(v) else v for v in values]
        ax.bar(xs, clean, color="#4c72b0")
        for x, v in zip(xs, values, strict=True):
            ax.text(x, (0 if math.isnan(v) else v) + 0.01, "n/a" if math.isnan(v) else f"{v:.2f}",
                    ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(xs), list(names), rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel(ylabel, fontsize=8)
        self.draw_idle()

    def line(self, xs: Sequence[int], values: Sequence[float], xlabel: str, ylabel: str, title: str) -> None:
        ax = self._ax
        ax.clear()
        _style(ax)
        ax.plot(list(xs), list(values), marker=".", ms=3, lw=1, color="#4c72b0")
        ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(title, fontsize=8)
        self.draw_idle()


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
