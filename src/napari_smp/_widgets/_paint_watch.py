"""A label that says which slices of a Labels layer are painted, kept current while the user paints."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QWidget

from ._geometry import class_names_of
from ._summaries import AnnotationSummary, touched_slices

__all__ = ["PaintedSlicesLabel"]


class PaintedSlicesLabel(QLabel):
    """``4 slices annotated (12, 19, 27, 34): liver, spleen`` for the watched Labels layer.

    A brush stroke emits napari's ``paint`` event with the history atoms it wrote; only the slices
    they touch are recounted, after a short pause that coalesces the events of one stroke. A new
    ``data`` array (or an atom we cannot read) triggers a full recount, which is cheap anyway: one
    ``any`` over the volume plus a ``unique`` per painted slice.

    Undo and redo (Ctrl+Z, Shift+Ctrl+Z) emit no ``paint`` event, only the ``set_data`` of the
    refresh that follows, which slicing and scrolling also emit. We recount on ``set_data`` only when
    the lengths of the layer's undo/redo histories changed since the last count, so moving through
    the volume costs nothing (napari keeps no public undo counter; without the private lists every
    ``set_data`` recounts, debounced).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.summary: AnnotationSummary | None = None
        self._layer: Any = None
        self._pending: set[int] | None = None
        self._history: tuple[int, int] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self.recount)
        hooks, box = (self._on_change, self._on_refresh), {"layer": None}
        self._box = box
        # napari does not know when this Qt object dies: disconnect without touching it
        self.destroyed.connect(lambda *_: _disconnect(box["layer"], *hooks))

    def watch(self, layer: Any) -> None:
        """Follow ``layer`` (a napari Labels layer, or None)."""
        _disconnect(self._layer, self._on_change, self._on_refresh)
        self._layer = self._box["layer"] = layer
        if layer is not None:
            layer.events.paint.connect(self._on_change)
            layer.events.data.connect(self._on_change)
            layer.events.set_data.connect(self._on_refresh)
        self._pending = None
        self.recount()

    def _on_change(self, event: Any = None) -> None:
        touched = touched_slices(event.value) if event is not None and event.type == "paint" else None
        self._pending = None if touched is None or self._pending is None else self._pending | touched
        self._history = _history_key(self._layer)  # this edit is accounted for by ``touched``
        self._timer.start()

    def _on_refresh(self, event: Any = None) -> None:
        key = _history_key(self._layer)
        if key is None or key != self._history:  # an undo or redo happened (or we cannot tell)
            self._history = key
            self._pending = None
            self._timer.start()

    def recount(self) -> None:
        layer = self._layer
        if layer is None:
            self.summary = None
            self.setText("choose the Labels layer you paint on")
            return
        data = layer.data[0] if layer.multiscale else layer.data
        data = data[None] if data.ndim == 2 else data
        if self.summary is None or self._pending is None or self.summary.labels is not data:
            self.summary = AnnotationSummary(data)
        else:
            self.summary.recount(self._pending)
        self._pending = set()
        self._history = _history_key(layer)
        self.setText(self.summary.describe(class_names_of(layer)))


def _history_key(layer: Any) -> tuple[int, int] | None:
    """(undo steps, redo steps) of a napari Labels layer, None where napari does not expose them."""
    try:
        return len(layer._undo_history), len(layer._redo_history)
    except (AttributeError, TypeError):
        return None


def _disconnect(layer: Any, on_change: Any, on_refresh: Any) -> None:
    if layer is not None:
        layer.events.paint.disconnect(on_change)
        layer.events.data.disconnect(on_change)
        layer.events.set_data.disconnect(on_refresh)
