"""Models fine-tuned in this napari session, shared by the Fine-tune, Segment and Clusters widgets.

A fine-tuned model is kept in memory (so Segment can use it at once) together with the checkpoint it
was saved to (so a later fine-tune can start from it). The registry is process-wide: every widget
of every viewer sees the same models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psygnal import Signal

__all__ = ["SessionModel", "SessionModels", "SESSION"]


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
