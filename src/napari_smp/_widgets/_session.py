"""Models fine-tuned in this napari session, shared by the Fine-tune, Segment and Clusters widgets, and
the picker that chooses among them, a new model of a preset, or a checkpoint file.

A fine-tuned model is kept in memory (so Segment can use it at once) together with the checkpoint it
was saved to (so a later fine-tune can start from it). The registry is process-wide: every widget
of every viewer sees the same models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psygnal import Signal
from qtpy.QtWidgets import QComboBox, QFileDialog, QLineEdit, QPushButton, QVBoxLayout, QWidget

from ._controls import field_row

__all__ = ["SessionModel", "SessionModels", "SESSION", "ModelChoice", "ModelPicker"]

FILE_TEXT = "checkpoint file..."


@dataclass
class SessionModel:
    """One fine-tuned model: ``model`` is a ``SimMPNet`` on the CPU, ``config`` its ``ModelConfig``."""

    name: str
    path: Path
    model: Any = field(repr=False)
    config: Any = field(repr=False)


class SessionModels:
    """An ordered list of ``SessionModel`` with a ``changed`` signal for the widgets' pickers."""

    changed = Signal()

    def __init__(self) -> None:
        self._items: list[SessionModel] = []

    def add(self, path: str | Path, model: Any, config: Any) -> SessionModel:
        """Register a model saved at ``path``; it is named after the file (``name (2)`` if taken)."""
        base = Path(path).stem
        names = {m.name for m in self._items}
        name, n = base, 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        item = SessionModel(name, Path(path), model, config)
        self._items.append(item)
        self.changed.emit()
        return item

    def get(self, name: str) -> SessionModel | None:
        return next((m for m in self._items if m.name == name), None)

    def names(self) -> list[str]:
        return [m.name for m in self._items]

    def latest(self) -> SessionModel | None:
        return self._items[-1] if self._items else None

    def clear(self) -> None:
        self._items.clear()
        self.changed.emit()

    def __len__(self) -> int:
        return len(self._items)


#: the registry every widget uses
SESSION = SessionModels()


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

    def predictor(self, device: str, batch_size: int) -> Any:
        """A ``Predictor`` of the chosen model, on the threads that leave the viewer a core.

        Call it in a worker: it imports torch and may read a checkpoint file.
        """
        from .._cpu import viewer_threads
        from ..config import InferConfig
        from ..engine.inference import Predictor

        infer = InferConfig(device=device, batch_size=batch_size, threads=viewer_threads())
        if self.kind == "session" and self.session is not None:
            return Predictor(self.session.model, self.session.config, infer)
        return Predictor.from_checkpoint(self.path, infer)


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
        self._path_row = field_row(self.path_edit, browse)
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
