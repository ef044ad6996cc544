"""The pictures behind ``_display.TrainingPlot`` and ``_display.BarPlot``, drawn with matplotlib's Agg.

No Qt here: ``_display`` calls these from its one plot thread and shows the RGBA arrays they return.
Importing matplotlib took 2.1 s on a busy 2-core CPU and a figure draw 150-260 ms there, both stalls of
the viewer when they ran on its thread; in the plot thread they cost the viewer nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["ChartFigure", "TrainingFigure", "DPI"]

DPI = 80


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


def _picture(canvas: FigureCanvasAgg) -> np.ndarray:
    return np.array(canvas.buffer_rgba(), dtype=np.uint8, copy=True)


class TrainingFigure:
    """Loss (left axis) and the W-LD memory size K (right axis) against the optimiser step.

    The axes are drawn once per run with limits known in advance (x up to the step budget, K up to
    the bank's M slots, the loss relative to its first value) and cached; each update restores that
    background and draws the curves and the corner note on it (a few ms). Should a curve leave its
    axes, the limit doubles and the axes are redrawn once, so full draws are O(log steps).

    Args:
        loss_only: pre-training's plot: the absolute loss under ``loss_label``, no K axis, no warm-up mark.
        loss_label: the loss axis's title when ``loss_only``.
    """

    def __init__(self, loss_only: bool = False, loss_label: str = "loss") -> None:
        self.fig = Figure(figsize=(4.0, 2.4), dpi=DPI)
        self.fig.patch.set_alpha(0.0)
        self.canvas = FigureCanvasAgg(self.fig)
        self.loss_only = loss_only
        self.draws = 0  # full redraws
        self.blits = 0  # curve updates on the cached axes
        self._run: int | None = None
        self._size: tuple[int, int] | None = None
        self._background: Any = None
        self.fig.subplots_adjust(left=0.15, right=0.95 if loss_only else 0.84, bottom=0.2, top=0.95)
        self._ax = self.fig.add_subplot(111)
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

    def _limits(self, x: float, loss: float, k: float) -> None:
        self._ax.set_xlim(0, x)
        self._ax.set_ylim(0, loss)
        self._kax.set_ylim(0, k)

    def render(self, s: Any) -> np.ndarray:
        """The picture of ``s`` (a ``_display.CurveState``: not imported, ``_display`` imports this module):
        ``(height, width, 4)`` uint8 RGBA."""
        full = self._background is None
        if (s.width, s.height) != self._size:
            self._size = (s.width, s.height)
            self.fig.set_size_inches(max(s.width, 80) / DPI, max(s.height, 60) / DPI)
            full = True
        if s.run != self._run:  # a new run: empty curves on the axes of its budget
            self._run = s.run
            self._warm_line.set_visible(False)
            self._limits(max(2, s.max_steps), 1.25, max(2, s.slots))
            self._k_line.set_visible(not s.loss_only)
            full = True
        curve = s.loss_curve()
        self._loss_line.set_data(s.steps, curve)
        if s.k_hidden:  # a model without a memory bank: no K curve
            self._k_line.set_visible(False)
        self._k_line.set_data(s.steps[: len(s.ks)], s.ks)
        k = f", K {s.ks[-1]}" if s.ks else ""
        self._note.set_text(f"step {s.steps[-1]}: loss {s.losses[-1]:.3g}{k}" if s.steps else "")
        if s.warmup_end is not None:
            self._warm_line.set_xdata([s.warmup_end, s.warmup_end])
            self._warm_line.set_visible(True)
        full = self._outgrown(s, curve) or full
        if full:
            self.draws += 1
            self.canvas.draw()  # the animated curves are left out: this is the background
            self._background = self.canvas.copy_from_bbox(self.fig.bbox)
        else:
            self.blits += 1
            self.canvas.restore_region(self._background)
        for artist, ax in ((self._warm_line, self._ax), (self._loss_line, self._ax), (self._k_line, self._kax),
                           (self._note, self._ax)):
            if artist.get_visible():
                ax.draw_artist(artist)
        return _picture(self.canvas)

    def _outgrown(self, s: Any, curve: list[float]) -> bool:
        x1, l1, k1 = self._ax.get_xlim()[1], self._ax.get_ylim()[1], self._kax.get_ylim()[1]
        finite = [v for v in curve if math.isfinite(v)]
        new = (_grow(x1, s.steps[-1] if s.steps else 0), _grow(l1, max(finite, default=0.0) * 1.02),
               _grow(k1, max(s.ks, default=0)))
        if new == (x1, l1, k1):
            return False
        self._limits(*new)
        return True


class ChartFigure:
    """One bar chart (a value per class) or one line (a value per slice), drawn whole at each call."""

    def __init__(self) -> None:
        self.fig = Figure(figsize=(4.0, 2.2), dpi=DPI, layout="constrained")
        self.fig.patch.set_alpha(0.0)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_subplot(111)

    def _begin(self, width: int, height: int) -> Any:
        self.fig.set_size_inches(max(width, 80) / DPI, max(height, 60) / DPI)
        ax = self.ax
        ax.clear()
        _style(ax)
        return ax

    def bars(self, width: int, height: int, names: Sequence[str], values: Sequence[float], ylabel: str) -> np.ndarray:
        ax = self._begin(width, height)
        xs = range(len(values))
        clean = [0.0 if math.isnan(v) else v for v in values]
        ax.bar(xs, clean, color="#4c72b0")
        for x, v in zip(xs, values, strict=True):
            ax.text(x, (0 if math.isnan(v) else v) + 0.01, "n/a" if math.isnan(v) else f"{v:.2f}",
                    ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(xs), list(names), rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel(ylabel, fontsize=8)
        self.canvas.draw()
        return _picture(self.canvas)

    def line(self, width: int, height: int, xs: Sequence[int], values: Sequence[float], xlabel: str, ylabel: str,
             title: str) -> np.ndarray:
        ax = self._begin(width, height)
        ax.plot(list(xs), list(values), marker=".", ms=3, lw=1, color="#4c72b0")
        ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(title, fontsize=8)
        self.canvas.draw()
        return _picture(self.canvas)
