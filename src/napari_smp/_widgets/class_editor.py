"""The class editor: value, name and colour of every class of a Labels layer, in the View panel.

Names typed here go where every part of the plugin reads them (:func:`~._layers.set_class_names`:
the layer's features, its metadata and its ``VolumeMeta``), so the Metrics table, the painted-slices
line, the models fine-tuned on the layer and every file written from it (NRRD segment names, DICOM SEG
segment labels) use them. Names a file brought along (a sidecar JSON, a dataset.json, NRRD segments,
a DICOM SEG) are shown as they were read. The label values present in the layer are found in a thread
(a bincount over the volume: a second for a large CT), so choosing a layer never stalls the viewer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ._layers import class_names_of, set_class_names

__all__ = ["ClassEditor", "present_values"]

VALUE, NAME, COLOUR = 0, 1, 2


def present_values(data: Any) -> list[int]:
    """The non-zero label values of a Labels layer's array (any shape), ascending.

    A bincount for small unsigned types (one pass, no sort), ``np.unique`` otherwise.
    """
    arr = np.asarray(data[0] if isinstance(data, list) else data)
    if arr.dtype.kind == "u" and arr.dtype.itemsize <= 2:
        counts = np.bincount(arr.ravel(), minlength=1)
        return [int(v) for v in np.flatnonzero(counts) if v]
    return [int(v) for v in np.unique(arr) if v > 0]


class ClassEditor(QWidget):
    """A table (value, name, colour) for the chosen Labels layer; edits apply to the layer at once.

    Type a name in the name column; double-click a colour to pick another; add a value not painted yet
    with the spin box and **Add class**.

    Args:
        napari_viewer: the viewer.
        layer_combo: the picker of the viewer's Labels layers (a ``_controls.LayerCombo``; handed in
            by the View panel, which owns the pickers, so that this module does not import it back).
    """

    def __init__(self, napari_viewer: Any, layer_combo: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._viewer = napari_viewer
        self.layer_combo = layer_combo
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["value", "name", "colour"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setMinimumHeight(110)
        self.table.setToolTip("type a class name; double-click a colour to change it")
        self.value_spin = QSpinBox()
        self.value_spin.setRange(1, 65535)
        self.value_spin.setToolTip("a label value to name before painting it")
        self.add_button = QPushButton("Add class")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("classes of"))
        top.addWidget(self.layer_combo, 1)
        add = QHBoxLayout()
        add.addWidget(self.value_spin)
        add.addWidget(self.add_button)
        add.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.table)
        lay.addLayout(add)
        lay.addWidget(self.status)
        self._filling = False
        self._scan_token = 0
        self.scanning = False
        self.layer_combo.currentIndexChanged.connect(lambda *_: self.load())
        self.table.itemChanged.connect(self._on_item)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.add_button.clicked.connect(lambda: self.add_value(self.value_spin.value()))
        self.load()

    # reading ------------------------------------------------------------------------------------------

    def layer(self) -> Any | None:
        return self.layer_combo.layer()

    def names(self) -> dict[int, str]:
        """value -> name as the table shows them (unnamed values left out)."""
        out = {}
        for r in range(self.table.rowCount()):
            name = self.table.item(r, NAME).text().strip()
            if name:
                out[int(self.table.item(r, VALUE).text())] = name
        return out

    def values(self) -> list[int]:
        return [int(self.table.item(r, VALUE).text()) for r in range(self.table.rowCount())]

    def load(self) -> None:
        """Show the chosen layer's named classes now, and the values painted in it once a thread found them."""
        layer = self.layer()
        self._scan_token += 1
        named = {v: n for v, n in (class_names_of(layer) or {}).items() if v > 0} if layer is not None else {}
        self._fill(named, sorted(named))
        if layer is None:
            self.status.setText("add a Labels layer to name its classes")
            self.scanning = False
            return
        self.status.setText("looking for the label values painted in this layer...")
        self.scanning = True
        token, data = self._scan_token, layer.data
        from napari.qt.threading import create_worker

        worker = create_worker(present_values, data, _start_thread=False)
        worker.returned.connect(lambda values: self._on_scanned(token, values))
        worker.errored.connect(lambda err: self._on_scanned(token, []))
        self._worker = worker
        worker.start()

    def _on_scanned(self, token: int, values: list[int]) -> None:
        if token != self._scan_token:  # another layer was chosen meanwhile
            return
        self.scanning = False
        try:
            known = set(self.values())
        except RuntimeError:  # the editor was closed while the thread ran
            return
        missing = [v for v in values if v not in known]
        if missing:
            self._fill(self.names(), sorted(known | set(missing)))
        named = len(self.names())
        self.status.setText(f"{len(values)} values painted, {named} named" if values or named else
                            "nothing painted or named yet: add a value to name it")

    def _fill(self, names: dict[int, str], values: list[int]) -> None:
        layer = self.layer()
        self._filling = True
        try:
            self.table.setRowCount(len(values))
            for r, v in enumerate(values):
                value = QTableWidgetItem(str(v))
                value.setFlags(value.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(r, VALUE, value)
                self.table.setItem(r, NAME, QTableWidgetItem(names.get(v, "")))
                self.table.setItem(r, COLOUR, self._colour_item(layer, v))
        finally:
            self._filling = False

    @staticmethod
    def _colour_item(layer: Any, value: int) -> QTableWidgetItem:
        rgba = np.asarray(layer.get_color(value) if layer is not None else (0, 0, 0, 0), dtype=float)
        colour = QColor.fromRgbF(*(float(c) for c in np.clip(rgba[:4], 0, 1)))
        item = QTableWidgetItem(colour.name())
        item.setBackground(colour)
        item.setForeground(QColor("black" if colour.lightnessF() > 0.5 else "white"))
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        return item

    def _row_of(self, value: int) -> int:
        return self.values().index(int(value)) if int(value) in self.values() else -1

    # editing ------------------------------------------------------------------------------------------

    def _on_item(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != NAME:
            return
        self._apply()

    def _apply(self) -> None:
        layer = self.layer()
        if layer is not None:
            set_class_names(layer, self.names())

    def set_name(self, value: int, name: str) -> None:
        """Name ``value`` (adding its row when needed) and store the names on the layer."""
        if self._row_of(value) < 0:
            self.add_value(value)
        self.table.item(self._row_of(value), NAME).setText(name)  # itemChanged applies it

    def add_value(self, value: int) -> None:
        """A row for a value not painted yet, ready to be named."""
        value = int(value)
        if self.layer() is None or self._row_of(value) >= 0:
            return
        self._fill(self.names(), sorted({*self.values(), value}))

    def set_color(self, value: int, rgba: tuple[float, ...]) -> None:
        """Give ``value`` a colour of its own; the other listed values keep the colours they show now."""
        from napari.utils.colormaps import DirectLabelColormap

        layer = self.layer()
        if layer is None:
            return
        colours: dict[int | None, Any] = {None: (0.6, 0.6, 0.6, 1.0), 0: (0.0, 0.0, 0.0, 0.0)}
        for v in self.values():
            colours[v] = tuple(float(c) for c in layer.get_color(v))
        colours[int(value)] = tuple(float(c) for c in rgba)
        layer.colormap = DirectLabelColormap(color_dict=colours)
        self._fill(self.names(), self.values())

    def _on_double_click(self, row: int, column: int) -> None:
        if column != COLOUR:
            return
        value = int(self.table.item(row, VALUE).text())
        picked = QColorDialog.getColor(self.table.item(row, COLOUR).background().color(), self,
                                       f"colour of label {value}")
        if picked.isValid():
            self.set_color(value, picked.getRgbF())
