"""Matplotlib figures docked in the widgets: training curves and metric charts.

Drawing a figure costs tens of milliseconds, so the training plot collects reports as they arrive
and redraws at most every ``interval_ms`` from a timer: the viewer stays responsive however fast
the optimiser steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QTimer

__all__ = ["TrainingPlot", "BarPlot"]


def _figure(height: float) -> Figure:
    fig = Figure(figsize=(4.0, height), dpi=90, layout="constrained")
    fig.patch.set_alpha(0.0)
    return fig


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


class TrainingPlot(FigureCanvasQTAgg):
    """Loss (left axis) and the W-LD memory size K (right axis) against the optimiser step."""

    def __init__(self, interval_ms: int = 400) -> None:
        super().__init__(_figure(2.4))
        self.setMinimumHeight(190)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.ks: list[int] = []
        self.warmup_end: int | None = None
        self.draws = 0
        self._dirty = False
        self._ax = self.figure.add_subplot(111)
        self._kax = self._ax.twinx()
        (self._loss_line,) = self._ax.plot([], [], color="#1f77b4", lw=1.2, label="loss")
        (self._k_line,) = self._kax.plot([], [], color="#d62728", lw=1.2, drawstyle="steps-post", label="K")
        self._ax.set_xlabel("step", fontsize=8)
        self._ax.set_ylabel("loss", fontsize=8, color="#1f77b4")
        self._kax.set_ylabel("K (memory slots used)", fontsize=8, color="#d62728")
        _style(self._ax)
        self._kax.tick_params(labelsize=8)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)

    def reset(self) -> None:
        self.steps.clear()
        self.losses.clear()
        self.ks.clear()
        self.warmup_end = None
        self._dirty = True
        self.flush()
        self._timer.start()

    def add(self, report: Any) -> None:
        """Queue one ``StepReport``; the figure is redrawn by the timer."""
        self.steps.append(int(report.step))
        self.losses.append(float(report.loss))
        self.ks.append(int(report.k))
        if not report.warming_up and self.warmup_end is None:
            self.warmup_end = int(report.step)
        self._dirty = True

    def finish(self) -> None:
        self._timer.stop()
        self.flush()

    def flush(self) -> None:
        """Redraw when new reports arrived since the last draw."""
        if not self._dirty:
            return
        self._dirty = False
        self._loss_line.set_data(self.steps, self.losses)
        self._k_line.set_data(self.steps, self.ks)
        for line in list(self._ax.lines[1:]):
            line.remove()
        if self.warmup_end is not None:
            self._ax.axvline(self.warmup_end, color="0.6", lw=0.8, ls="--")
        if self.steps:
            self._ax.set_xlim(0, max(self.steps[-1], 2))
            finite = [v for v in self.losses if math.isfinite(v)]
            if finite:
                lo, hi = min(finite), max(finite)
                pad = 0.05 * (hi - lo or 1.0)
                self._ax.set_ylim(max(0.0, lo - pad), hi + pad)
            self._kax.set_ylim(0, max(self.ks) * 1.15 + 1)
        self.draws += 1
        self.draw_idle()


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
