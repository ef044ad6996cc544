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
    refresh that follows, which moving through the volume also emits, and napari has no public undo
    history. So after a ``set_data`` (debounced) the summary compares each slice's fingerprint
    (non-zero count, label sum) with the last count and recounts the classes of changed slices only:
    two passes over the volume (a few ms for 512 x 512 x 100), whatever caused the refresh.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.summary: AnnotationSummary | None = None
        self._layer: Any = None
        self._pending: set[int] | None = None  # slices to recount; None: all of them
        self._scan = False  # a refresh happened: look for slices changed behind our back
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
        self._timer.start()

    def _on_refresh(self, event: Any = None) -> None:
        self._scan = True  # an undo, a redo, or only a new slice on screen: the fingerprints tell
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
            if self._scan:
                self.summary.recount_changed()
            self.summary.recount(self._pending)
        self._pending, self._scan = set(), False
        self.setText(self.summary.describe(class_names_of(layer)))


def _disconnect(layer: Any, on_change: Any, on_refresh: Any) -> None:
    if layer is not None:
        layer.events.paint.disconnect(on_change)
        layer.events.data.disconnect(on_change)
        layer.events.set_data.disconnect(on_refresh)
