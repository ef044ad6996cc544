"""The class table: which label values a model knows, their names, and the compact index inside it.

A user's label values are theirs end to end: a painting with TotalSegmentator's values (5 liver, 21 ...,
52 aorta) trains a model of four classes plus background, not of 53, and every output carries 5, 21,
52 with their names. Inside the network the classes are a compact index ``0..n-1`` (0 always
background, value 0); ``ModelConfig.class_values`` maps index -> value and is stored in every
checkpoint (a checkpoint without it maps each index to itself). numpy only, so the widgets use it on the
viewer's thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from ..config import ModelConfig
from .errors import EngineError

__all__ = ["ClassTable"]


@dataclass(frozen=True)
class ClassTable:
    """Label values (index -> value, ascending, ``values[0] == 0``) and their names.

    Attributes:
        values: the user's label value of every class index; background first.
        names: the name of every class index.
    """

    values: tuple[int, ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.values or self.values[0] != 0 or list(self.values) != sorted(set(self.values)):
            raise EngineError(f"class values must start at 0 (background) and increase, got {list(self.values)}")
        if len(self.names) != len(self.values):
            raise EngineError(f"{len(self.names)} class names for {len(self.values)} classes")

    @classmethod
    def build(
        cls, values: Iterable[int], names: Mapping[int, str] | None = None, at_least: int = 2
    ) -> ClassTable:
        """The table of ``values`` (background added), named from ``names`` (value -> name).

        ``at_least``: a table with fewer classes gets the next free values (a painting of one class plus
        background is the smallest model: two classes).
        """
        names = dict(names or {})
        found = sorted({0, *(int(v) for v in values), *(int(v) for v in names)})
        if any(v < 0 for v in found):
            raise EngineError(f"label values must be 0 or more, got {min(found)}")
        spare = (v for v in range(1, found[-1] + at_least + 1) if v not in found)
        while len(found) < at_least:
            found.append(next(spare))
        found.sort()
        return cls(tuple(found), tuple(_name(v, names) for v in found))

    @classmethod
    def from_painting(cls, labels: np.ndarray, names: Mapping[int, str] | None = None) -> ClassTable:
        """The values a label map holds (any shape), plus every named value."""
        return cls.build(np.unique(labels).tolist(), names)

    @classmethod
    def from_config(cls, config: ModelConfig) -> ClassTable:
        """The table a model was built with (identity values for checkpoints written before the field)."""
        values = config.class_values or list(range(config.num_classes))
        return cls(tuple(int(v) for v in values), tuple(config.names))

    def configure(self, config: ModelConfig) -> ModelConfig:
        """``config`` for this table: its class count, values and names."""
        identity = list(self.values) == list(range(len(self.values)))
        return replace(
            config,
            num_classes=len(self.values),
            class_values=None if identity else list(self.values),
            class_names=list(self.names),
        )

    def __len__(self) -> int:
        return len(self.values)

    @property
    def by_value(self) -> dict[int, str]:
        """value -> name, background included."""
        return dict(zip(self.values, self.names, strict=True))

    def unknown(self, labels: np.ndarray) -> list[int]:
        """Values of ``labels`` that this table does not know."""
        return sorted(set(np.unique(labels).tolist()) - set(self.values))

    def check(self, labels: np.ndarray) -> None:
        """Raise :class:`EngineError` when ``labels`` holds a value this table does not know."""
        unknown = self.unknown(labels)
        if unknown:
            raise EngineError(
                f"the annotation uses label value {unknown[0]}, which the model does not know (it knows "
                f"{_few(self.values)}); start from scratch or from a checkpoint with those classes"
            )

    def to_index(self, labels: np.ndarray) -> np.ndarray:
        """User values -> compact class indices (int64), same shape.

        Raises:
            EngineError: ``labels`` holds a value the table does not know.
        """
        self.check(labels)
        if self.is_identity:
            return labels.astype(np.int64, copy=False)
        lookup = np.zeros(self.values[-1] + 1, np.int64)
        lookup[list(self.values)] = np.arange(len(self.values))
        return lookup[labels]

    def to_values(self, index: np.ndarray) -> np.ndarray:
        """Compact class indices -> user values, as uint8 (uint16 past 255)."""
        dtype = np.uint8 if self.values[-1] <= 255 else np.uint16
        if self.is_identity:
            return index.astype(dtype, copy=False)
        return np.asarray(self.values, dtype=dtype)[index]

    @property
    def is_identity(self) -> bool:
        """Index and value coincide (0, 1, ..., n-1)."""
        return self.values[-1] == len(self.values) - 1


def _name(value: int, names: Mapping[int, str]) -> str:
    if value in names:
        return str(names[value])
    return "background" if value == 0 else f"class {value}"


def _few(values: tuple[int, ...], n: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")
