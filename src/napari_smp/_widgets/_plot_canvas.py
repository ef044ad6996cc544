"""The matplotlib canvases behind ``_display.TrainingPlot`` and ``_display.BarPlot``.

Importing matplotlib's Qt backend takes 0.3 s on an idle 2-core CPU and over 2 s on a busy one, so
this module is never imported on the viewer's thread the first time: ``_display`` imports it in a
worker and builds the canvases when it is loaded. Everything here runs on the main thread after that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["ChartCanvas", "Curves", "TrainingCanvas"]


class Curves(Protocol):
    """What a training canvas draws: the reports so far (``_display.TrainingPlot`` holds them)."""

    steps: list[int]
    losses: list[float]
    ks: list[int]
    warmup_end: int | None
    loss_only: bool
    k_hidden: bool

    def relative_losses(self) -> list[float]: ...


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


class TrainingCanvas(FigureCanvasQTAgg):
    """Loss (left axis) and the W-LD memory size K (right axis) against the optimiser step.

    A full figure draw costs 50-80 ms on an idle 2-core CPU and three times that while training
    competes for the cores, too much for a viewer that must never stall 200 ms. So the axes are drawn
    once, when the run starts, with limits known in advance: x up to the step budget, K up to the
    bank's M slots, and the loss relative to its first value (the latest absolute loss is written in
    the corner). During the run only the curves and that text are blitted onto the cached background
    (a few ms). Should a curve leave its axes, the limit doubles and the axes are redrawn once.

    Args:
        curves: the data to draw (read at every flush).
        loss_label: the loss axis's title when ``curves.loss_only``.
    """

    def __init__(self, curves: Curves, loss_label: str = "loss") -> None:
        super().__init__(_figure(2.4, constrained=False))
        self.curves = curves
        self.draws = 0  # full redraws
        self.blits = 0  # cheap curve updates
        self._background: Any = None
        loss_only = curves.loss_only
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
        self._limits()

    def _limits(self, x: float = 16, loss: float = 1.25, k: float = 8) -> None:
        self._ax.set_xlim(0, x)
        self._ax.set_ylim(0, loss)
        self._kax.set_ylim(0, k)

    def _loss_curve(self) -> list[float]:
        return list(self.curves.losses) if self.curves.loss_only else self.curves.relative_losses()

    def reset(self, max_steps: int, slots: int) -> None:
        """Empty curves and axes for a run of ``max_steps`` steps and ``slots`` memory slots."""
        self._warm_line.set_visible(False)
        self._note.set_text("")
        self._limits(x=max(2, max_steps), k=max(2, slots))
        self._loss_line.set_data([], [])
        self._k_line.set_data([], [])
        self._k_line.set_visible(not self.curves.loss_only)
        self._full_draw()

    def flush(self) -> None:
        """Show the curves as they are now."""
        c = self.curves
        if c.k_hidden:  # a model without a memory bank: no K curve
            self._k_line.set_visible(False)
        self._loss_line.set_data(c.steps, self._loss_curve())
        if c.ks:
            self._k_line.set_data(c.steps[: len(c.ks)], c.ks)
        if c.steps:
            k = f", K {c.ks[-1]}" if c.ks else ""
            self._note.set_text(f"step {c.steps[-1]}: loss {c.losses[-1]:.3g}{k}")
        if c.warmup_end is not None and not self._warm_line.get_visible():
            self._warm_line.set_xdata([c.warmup_end, c.warmup_end])
            self._warm_line.set_visible(True)
        if self._outgrown() or self._background is None:
            self._full_draw()
        else:
            self._blit()

    def _outgrown(self) -> bool:
        c = self.curves
        x1, l1, k1 = self._ax.get_xlim()[1], self._ax.get_ylim()[1], self._kax.get_ylim()[1]
        finite = [v for v in self._loss_curve() if math.isfinite(v)]
        new = (_grow(x1, c.steps[-1] if c.steps else 0), _grow(l1, max(finite, default=0.0) * 1.02),
               _grow(k1, max(c.ks, default=0)))
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
        if not self.curves.loss_only:
            self._kax.draw_artist(self._k_line)
        self._ax.draw_artist(self._note)


class ChartCanvas(FigureCanvasQTAgg):
    """One bar chart (a value per class) or one line (a value per slice), redrawn on demand."""

    def __init__(self) -> None:
        super().__init__(_figure(2.2))
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
