"""Small Qt controls shared by the widgets: layer pickers, the model picker, the device picker, the
line saying which slices of a Labels layer are painted, and the View controls (orientation convention,
CT window presets, and the class editor)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ..engine.annotation import AnnotationSummary
from ..io.display import CONVENTIONS, RADIOLOGICAL, WINDOW_PRESETS
from ._layers import (
    active_image,
    apply_radiological_view,
    apply_window,
    class_names_of,
    follow_medical_volumes,
    view_convention,
)

__all__ = ["LayerCombo", "DeviceCombo", "PaintedSlicesLabel", "touched_slices", "field_row", "spin_box",
           "tell_if_renamed", "ViewControls", "NONE_TEXT"]

NONE_TEXT = "(none)"


def field_row(*widgets: QWidget, stretch_first: bool = False) -> QWidget:
    """The widgets side by side, as one form field (``stretch_first``: the first takes the spare width)."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for i, w in enumerate(widgets):
        layout.addWidget(w, 1 if stretch_first and i == 0 else 0)
    return row


def spin_box(box: Any, lo: float, hi: float, value: float, step: float | None = None, suffix: str = "") -> Any:
    """``box`` (a ``QSpinBox`` or ``QDoubleSpinBox``) set to ``value`` in [lo, hi]."""
    box.setRange(lo, hi)
    box.setValue(value)
    if step is not None:
        box.setSingleStep(step)
    if suffix:
        box.setSuffix(suffix)
    return box


def tell_if_renamed(requested: Path, saved: Path) -> None:
    """Tell the user when a model went to the next free name because the file asked for exists."""
    from napari.utils.notifications import show_info

    wanted = requested if requested.suffix == ".safetensors" else requested.with_name(requested.name + ".safetensors")
    if saved.name != wanted.name:
        show_info(f"{wanted.name} already exists; the model was saved as {saved.name} instead")


class LayerCombo(QComboBox):
    """The viewer's layers of one type, kept in sync as layers are added, removed or renamed.

    Args:
        viewer: the napari viewer.
        layer_type: e.g. ``napari.layers.Image``.
        allow_none: offer ``(none)`` first (an optional input).
    """

    def __init__(self, viewer: Any, layer_type: type, allow_none: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self._viewer, self._type, self._allow_none = viewer, layer_type, allow_none
        events = viewer.layers.events
        hooks = [events.inserted, events.removed, events.moved, events.reordered]
        for ev in hooks:
            ev.connect(self._on_layers)
        refresh = self._on_layers
        # napari does not know when this Qt object dies: disconnect without touching it
        self.destroyed.connect(lambda *_: [ev.disconnect(refresh) for ev in hooks])
        self._watched: list[Any] = []
        self._on_layers()
        follow_medical_volumes(viewer)  # every widget with a layer picker shows volumes radiologically

    def layer(self) -> Any | None:
        """The chosen layer, or None."""
        name = self.currentText()
        return self._viewer.layers[name] if name in self._viewer.layers else None

    def set_layer(self, layer: Any) -> None:
        idx = self.findText(layer if isinstance(layer, str) else layer.name)
        if idx >= 0:
            self.setCurrentIndex(idx)

    def _on_layers(self, event: Any = None) -> None:
        for layer in self._watched:
            layer.events.name.disconnect(self._on_layers)
        self._watched = [ly for ly in self._viewer.layers if isinstance(ly, self._type)]
        for layer in self._watched:
            layer.events.name.connect(self._on_layers)
        current = self.currentText()
        names = ([NONE_TEXT] if self._allow_none else []) + [ly.name for ly in self._watched]
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        self.blockSignals(False)
        if current in names:
            self.setCurrentIndex(names.index(current))
        elif names:
            self.setCurrentIndex(0)
        self.currentIndexChanged.emit(self.currentIndex())


class ViewControls(QWidget):
    """Two combos: the display convention (radiological / neurological) and a window preset for the
    active image layer (auto, abdomen, lung, bone, brain). Choosing an entry applies it at once;
    choosing the same preset again re-applies it (to another layer, say). Below them, the class editor
    (:class:`~.class_editor.ClassEditor`): value, name and colour of each class of a Labels layer."""

    WINDOW_HINT = "window..."

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._viewer = viewer = napari_viewer  # the name napari injects when a manifest lists the widget
        self.convention_combo = QComboBox()
        self.convention_combo.addItems(list(CONVENTIONS))
        self.convention_combo.setCurrentText(view_convention(viewer) or RADIOLOGICAL)
        self.convention_combo.setToolTip("radiological: the patient's right on the screen's left (Slicer, "
                                         "ITK-SNAP, OHIF); neurological: on the right. The data are not changed.")
        self.convention_combo.currentTextChanged.connect(self.set_convention)
        self.window_combo = QComboBox()
        self.window_combo.addItem(self.WINDOW_HINT)
        self.window_combo.addItem("auto")
        for name, (width, level) in WINDOW_PRESETS.items():
            self.window_combo.addItem(f"{name}  W{width:g} L{level:g}", name)
        self.window_combo.setItemData(1, "auto")
        self.window_combo.setToolTip("contrast limits of the selected image layer (CT presets in HU; "
                                     "auto: soft tissue for a CT, 0.5-99.5 percentiles otherwise)")
        self.window_combo.activated.connect(self._on_window)
        import napari

        from .class_editor import ClassEditor

        row = QHBoxLayout()
        row.addWidget(QLabel("view"))
        row.addWidget(self.convention_combo, 1)
        row.addWidget(self.window_combo, 1)
        # value, name and colour of each class of a Labels layer
        self.class_editor = ClassEditor(viewer, LayerCombo(viewer, napari.layers.Labels))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.class_editor)

    def set_convention(self, convention: str) -> None:
        apply_radiological_view(self._viewer, convention)
        self.convention_combo.setCurrentText(convention)

    def set_window(self, preset: str) -> tuple[float, float] | None:
        """Apply ``preset`` (a key of ``WINDOW_PRESETS`` or ``auto``) to the active image; None without one."""
        layer = active_image(self._viewer)
        if layer is None:
            from napari.utils.notifications import show_info

            show_info("add or select an image layer to window")
            return None
        return apply_window(layer, preset)

    def _on_window(self, index: int) -> None:
        preset = self.window_combo.itemData(index)
        if preset:
            self.set_window(preset)


class DeviceCombo(QComboBox):
    """``auto`` plus the devices present here (CUDA, MPS, CPU), found without blocking the viewer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.addItem("auto")
        if "torch" in sys.modules:  # already paid for: ask at once
            self._fill(_devices())
        else:  # importing torch takes ~1.5 s: do it in a thread
            from napari.qt.threading import create_worker

            self._worker = create_worker(_devices, _start_thread=False)
            self._worker.returned.connect(self._fill)
            self._worker.start()

    def _fill(self, devices: list[str]) -> None:
        try:
            for d in devices:
                if self.findText(d) < 0:
                    self.addItem(d)
        except RuntimeError:  # the combo was closed before torch finished importing
            pass

    def device(self) -> str:
        return self.currentText()


def _devices() -> list[str]:
    from ._jobs import import_torch

    import_torch()  # a job started meanwhile must not import torch at the same time
    from ..engine.device import available_devices

    return available_devices()


class PaintedSlicesLabel(QLabel):
    """``4 slices annotated (12, 19, 27, 34): liver, spleen`` for the watched Labels layer.

    A brush stroke emits napari's ``paint`` event with the history atoms it wrote; only the slices
    they touch are recounted, after a short pause that coalesces the events of one stroke. A new
    ``data`` array (or an atom we cannot read) triggers a full recount, which is cheap anyway: one
    ``any`` over the volume plus a ``unique`` per painted slice.

    Undo and redo (Ctrl+Z, Shift+Ctrl+Z) emit no ``paint`` event, only the ``set_data`` of the
    refresh that follows, which moving through the volume also emits, and napari has no public undo
    history. So after a ``set_data`` (debounced) the summary compares each slice's fingerprint
    (a checksum of its bytes) with the last count and recounts the changed slices only: one pass over
    the volume (4 ms for 300 x 512 x 512), whatever caused the refresh.
    """

    counted = Signal()  # the summary was recounted (a stroke, an undo, another layer)

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
            self.counted.emit()
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
        self.counted.emit()


def _disconnect(layer: Any, on_change: Any, on_refresh: Any) -> None:
    if layer is not None:
        layer.events.paint.disconnect(on_change)
        layer.events.data.disconnect(on_change)
        layer.events.set_data.disconnect(on_refresh)


def touched_slices(atoms: Iterable[object]) -> set[int] | None:
    """Axial slices touched by the history atoms of a napari ``Labels.events.paint`` event.

    Returns None when an atom has a form we do not recognise, so the caller recounts everything.
    """
    found: set[int] = set()
    for atom in atoms:
        key = getattr(atom, "slice_key", None)
        if key is not None:  # a masked paint atom: its bounding box as slices
            z = key[0]
            found.update(range(z.start or 0, z.stop) if isinstance(z, slice) else [int(z)])
            continue
        if isinstance(atom, tuple) and atom and isinstance(atom[0], tuple) and len(atom[0]) > 0:
            found.update(np.unique(np.asarray(atom[0][0])).astype(int).tolist())
            continue
        return None
    return found
