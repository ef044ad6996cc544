"""The painted-labels picker's default: the Labels layer of the image's grid painted on the fewest slices.

A ground truth (or a filled result) is labelled on nearly every slice, a painting on a few: the first
Labels layer in the list is often the former (issue 27: Fine-tune picked the ground truth and would have
trained on it). The default follows layers as they come and go, until the user picks a layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import QObject, QTimer

from ..engine.annotation import painted_slice_count, sparsest_painting

__all__ = ["SparsePaintingDefault"]


class SparsePaintingDefault(QObject):
    """Keep ``labels_combo`` on the sparsest painted Labels layer of ``image_combo``'s grid.

    Args:
        viewer: the napari viewer.
        image_combo, labels_combo: the widget's ``LayerCombo`` pickers (Image and Labels); this object
            is the labels combo's child and dies with it.
    """

    def __init__(self, viewer: Any, image_combo: Any, labels_combo: Any) -> None:
        super().__init__(labels_combo)
        self._viewer, self._image_combo, self._labels_combo = viewer, image_combo, labels_combo
        self.chosen: str | None = None  # the layer this default last chose
        self._counts: dict[int, tuple[int, int]] = {}  # id(layer) -> (id(data), painted slices): scan once
        # the pick runs once control returns to the event loop: after LayerCombo has listed a new layer
        # (napari calls the newest connection first), and once for a burst of layers
        timer = self._timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(0)
        timer.timeout.connect(self.pick)
        hooks = [viewer.layers.events.inserted, viewer.layers.events.removed]

        def schedule(*_: Any) -> None:  # a closure, not a bound method: it must outlive this object's wrapper
            timer.start()

        for ev in hooks:
            ev.connect(schedule)
        # napari does not know when this Qt object dies: disconnect without touching it
        self.destroyed.connect(lambda *_: [ev.disconnect(schedule) for ev in hooks])
        image_combo.currentIndexChanged.connect(lambda *_: timer.start())
        self.pick()

    def pick(self) -> None:
        """Choose the sparsest painted layer on the image's grid (the first on it when none is painted),
        unless the user chose another layer since the last pick."""
        current = self._labels_combo.currentText()
        if self.chosen is not None and current != self.chosen and self.chosen in self._viewer.layers:
            return  # the user picked another layer: theirs stands
        image = self._image_combo.layer()
        if image is None:
            return
        shape = tuple(image.data.shape) if image.ndim == 3 else (1, *image.data.shape[-2:])
        on_grid, counts = [], []
        for i in range(self._labels_combo.count()):
            layer = self._viewer.layers[self._labels_combo.itemText(i)]
            data = layer.data[0] if layer.multiscale else layer.data
            if (data.shape if data.ndim == 3 else (1, *data.shape)) != shape or not isinstance(data, np.ndarray):
                continue  # another grid, or a lazy array we would have to read whole
            on_grid.append(layer.name)
            seen = self._counts.get(id(layer))
            if seen is None or seen[0] != id(data):  # a new layer or new data; strokes rarely change the choice
                seen = self._counts[id(layer)] = (id(data), painted_slice_count(data if data.ndim == 3 else data[None]))
            counts.append(seen[1])
        if not on_grid:
            return
        best = sparsest_painting(counts)
        self.chosen = on_grid[best if best is not None else 0]
        self._labels_combo.set_layer(self.chosen)
