"""A horizontal bar chart rendered to an RGBA array, off the viewer's thread.

A Qt canvas draws on the main thread: with 34 classes (TotalSegmentator's abdomen) the Metrics chart
took hundreds of milliseconds there and its rotated tick labels ran into each other. This module
draws the chart with matplotlib's Agg backend (no Qt), one row per class, class names on the left and
the value at the end of each bar, with a height that grows with the number of classes; the widget
shows the image in a scroll area. A worker thread may call it: each call makes its own ``Figure``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["hbar_image", "ROW_PX"]

#: pixels per bar (at 80 dpi): names in 8 pt stay legible and apart
ROW_PX = 18
_DPI = 80
_MARGIN_PX = 46  # the axis title and ticks under the bars


def hbar_image(names: Sequence[str], values: Sequence[float], xlabel: str, width_px: int = 360,
               xlim: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Draw one horizontal bar per name (first name on top) and return the picture.

    Args:
        names: the bars' labels (class names).
        values: one value per name; NaN draws no bar and writes ``n/a``.
        xlabel: the value axis's title.
        width_px: picture width in pixels.
        xlim: the value axis's range.

    Returns:
        ``(H, W, 4)`` uint8 RGBA image, ``H = ROW_PX * len(names) + margins``, ``W = width_px``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(names)
    height_px = ROW_PX * max(n, 1) + _MARGIN_PX
    fig = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor("white")  # opaque: black text stays legible on napari's dark theme
    longest = max((len(s) for s in names), default=4)
    left = min(0.45, 0.04 + 5.5 * longest / width_px)  # room for the names, at most 45 % of the width
    fig.subplots_adjust(left=left, right=0.9, top=1 - 6 / height_px, bottom=(_MARGIN_PX - 8) / height_px)
    ax = fig.add_subplot(111)
    ys = np.arange(n)
    clean = [0.0 if math.isnan(v) else float(v) for v in values]
    ax.barh(ys, clean, height=0.7, color="#4c72b0")
    for y, v in zip(ys, values, strict=True):
        ax.text((0.0 if math.isnan(v) else v) + 0.01 * (xlim[1] - xlim[0]), y, "n/a" if math.isnan(v) else f"{v:.2f}",
                va="center", ha="left", fontsize=7)
    ax.set_yticks(ys, [str(s) for s in names], fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)  # the first class on top, as in the table
    ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.canvas.draw()
    return np.array(fig.canvas.buffer_rgba(), dtype=np.uint8, copy=True)
