"""Small Qt controls shared by the widgets: layer pickers, the model picker and the device picker."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ._session import SESSION, SessionModel, SessionModels

__all__ = ["LayerCombo", "ModelChoice", "ModelPicker", "DeviceCombo", "NONE_TEXT"]

NONE_TEXT = "(none)"
FILE_TEXT = "checkpoint file..."


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


@dataclass
class ModelChoice:
    """What the user picked: a new model of a preset, a checkpoint file, or a model of this session."""

    kind: str  # "preset" | "file" | "session"
    preset: str = ""
    path: Path | None = None
    session: SessionModel | None = None

    def describe(self) -> str:
        if self.kind == "preset":
            return f"new {self.preset} model"
        if self.kind == "session":
            return self.session.name if self.session else "?"
        return self.path.name if self.path else "no file"


class ModelPicker(QWidget):
    """A combo of model sources plus a checkpoint path row shown when ``checkpoint file...`` is chosen.

    Args:
        presets: presets offered as "new <preset> model" entries (the fine-tune widget only).
        session: the registry of models fine-tuned in this session; the newest is selected on arrival.
    """

    def __init__(self, presets: tuple[str, ...] = (), session: SessionModels = SESSION,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._presets, self._session = presets, session
        self.combo = QComboBox()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("path/to/model.safetensors")
        browse = QPushButton("...")
        browse.setFixedWidth(32)
        browse.clicked.connect(self._browse)
        self._path_row = QWidget()
        row = QHBoxLayout(self._path_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path_edit)
        row.addWidget(browse)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.combo)
        lay.addWidget(self._path_row)
        self.combo.currentIndexChanged.connect(self._on_choice)
        session.changed.connect(self._on_session)
        hook = self._on_session
        self.destroyed.connect(lambda *_: session.changed.disconnect(hook))
        self._fill()

    def _items(self) -> list[str]:
        return [f"new {p} model" for p in self._presets] + [FILE_TEXT] + self._session.names()

    def _fill(self, select: str | None = None) -> None:
        before = self.combo.currentText()
        current = select or before
        items = self._items()
        self.combo.blockSignals(True)  # no signals for the clear-and-refill in between
        self.combo.clear()
        self.combo.addItems(items)
        self.combo.setCurrentIndex(items.index(current) if current in items else 0)
        self.combo.blockSignals(False)
        self._on_choice()
        if self.combo.currentText() != before:  # listeners (the fine-tune widget's greying) must hear it
            self.combo.currentIndexChanged.emit(self.combo.currentIndex())

    def _on_session(self) -> None:
        latest = self._session.latest()
        self._fill(select=latest.name if latest else None)

    def _on_choice(self, *_: Any) -> None:
        self._path_row.setVisible(self.combo.currentText() == FILE_TEXT)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a checkpoint", self.path_edit.text(),
                                              "Checkpoints (*.safetensors)")
        if path:
            self.path_edit.setText(path)

    def set_path(self, path: str | Path) -> None:
        """Choose ``checkpoint file...`` with ``path``."""
        self.path_edit.setText(str(path))
        self.combo.setCurrentText(FILE_TEXT)

    def select(self, text: str) -> None:
        self.combo.setCurrentText(text)

    def choice(self) -> ModelChoice:
        """The current choice; raises ``ValueError`` with a sentence when a file is chosen but not given."""
        text = self.combo.currentText()
        for p in self._presets:
            if text == f"new {p} model":
                return ModelChoice("preset", preset=p)
        if text == FILE_TEXT:
            raw = self.path_edit.text().strip()
            if not raw:
                raise ValueError("choose a checkpoint file (.safetensors) or a model of this session")
            path = Path(raw).expanduser()
            if not path.is_file():
                raise ValueError(f"checkpoint {path} does not exist")
            return ModelChoice("file", path=path)
        return ModelChoice("session", session=self._session.get(text))


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
    from ._torch import import_torch

    import_torch()  # a job started meanwhile must not import torch at the same time
    from ..engine.device import available_devices

    return available_devices()
