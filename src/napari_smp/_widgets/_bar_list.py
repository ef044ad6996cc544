"""A horizontal bar chart painted by Qt: one row per class, its name, its bar and its value.

The Metrics chart used to be a matplotlib figure: with 34 classes (TotalSegmentator's abdomen) its
rotated tick labels ran into each other, and laying out 68 texts took about 400 ms of Python holding
the interpreter lock, in whichever thread drew it, so the viewer stalled either way. Painting a few
dozen rectangles and strings with ``QPainter`` takes a few milliseconds on the main thread, stays sharp
at any dock width (it repaints at its own size) and grows one row per class inside a scroll area.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from qtpy.QtCore import QRectF, QSize, Qt
from qtpy.QtGui import QColor, QPainter, QPaintEvent
from qtpy.QtWidgets import QSizePolicy, QWidget

__all__ = ["BarList", "ROW_PX"]

#: pixels per class row
ROW_PX = 18
_BAR = QColor("#4c72b0")
_PAD = 6


class BarList(QWidget):
    """Values in [``lo``, ``hi``] as horizontal bars, first row on top; NaN shows ``n/a`` and no bar."""

    def __init__(self, lo: float = 0.0, hi: float = 1.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lo, self.hi = lo, hi
        self.names: list[str] = []
        self.values: list[float] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_bars(self, names: Sequence[str], values: Sequence[float]) -> None:
        """Show one bar per name; the widget's height becomes ``ROW_PX`` per row plus padding."""
        self.names, self.values = [str(n) for n in names], [float(v) for v in values]
        self.setFixedHeight(self.sizeHint().height())
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(260, ROW_PX * max(len(self.names), 1) + 2 * _PAD)

    def bar_rect(self, row: int) -> QRectF:
        """The rectangle of row ``row``'s bar, in widget pixels (empty for NaN)."""
        left, right = self._columns()
        v = self.values[row]
        share = 0.0 if math.isnan(v) else min(max((v - self.lo) / (self.hi - self.lo), 0.0), 1.0)
        top = _PAD + row * ROW_PX + 3
        return QRectF(left, top, (right - left) * share, ROW_PX - 6)

    def _columns(self) -> tuple[float, float]:
        """x of the bars' origin and of a full bar: names take what they need, at most 45 % of the width."""
        metrics = self.fontMetrics()
        name_w = max((metrics.horizontalAdvance(n) for n in self.names), default=0)
        left = min(name_w + 2 * _PAD, 0.45 * self.width())
        right = self.width() - metrics.horizontalAdvance("0.00") - 2 * _PAD
        return left, max(right, left + 10)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        text = self.palette().color(self.foregroundRole())
        left, right = self._columns()
        painter.setPen(text)
        painter.drawLine(int(left), _PAD, int(left), self.height() - _PAD)
        for row, (name, v) in enumerate(zip(self.names, self.values, strict=True)):
            top = _PAD + row * ROW_PX
            label = QRectF(0, top, left - _PAD, ROW_PX)
            painter.setPen(text)
            painter.drawText(label, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle, int(label.width())))
            bar = self.bar_rect(row)
            painter.fillRect(bar, _BAR)
            value = QRectF(bar.right() + 3, top, self.width() - bar.right(), ROW_PX)
            painter.drawText(value, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             "n/a" if math.isnan(v) else f"{v:.2f}")
        painter.end()
