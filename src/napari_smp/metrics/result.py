"""Result types: per-class values that say why a value is undefined instead of hiding it.

Every metric returns a :class:`PerClass` (label -> float, NaN where undefined, with a reason for each
NaN); :func:`~napari_smp.metrics.class_metrics` returns one :class:`ClassMetrics` per class.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["BOTH_EMPTY", "GT_EMPTY", "PRED_EMPTY", "ClassMetrics", "PerClass", "empty_reason"]

#: machine-readable reasons for a NaN value
PRED_EMPTY: Final = "pred empty"
GT_EMPTY: Final = "gt empty"
BOTH_EMPTY: Final = "both empty"


def empty_reason(pred_voxels: int, gt_voxels: int) -> str | None:
    """Which side of a class is empty, or ``None`` when both hold voxels."""
    if pred_voxels == 0 and gt_voxels == 0:
        return BOTH_EMPTY
    if pred_voxels == 0:
        return PRED_EMPTY
    if gt_voxels == 0:
        return GT_EMPTY
    return None


class PerClass(Mapping[int, float]):
    """Read-only mapping label -> value, NaN where undefined, with the reason for every NaN.

    Example:
        >>> res = hd95(pred, gt, spacing=(2.5, 0.8, 0.8))
        >>> res[1], res.reason(1)       # (3.2, None) or (nan, "pred empty")
        >>> res.value()                 # the single value of a binary comparison
    """

    __slots__ = ("_reasons", "_values")

    def __init__(self, values: Mapping[int, float], reasons: Mapping[int, str] | None = None) -> None:
        self._values = {int(k): float(v) for k, v in values.items()}
        self._reasons = {int(k): str(v) for k, v in (reasons or {}).items() if k in self._values}

    def __getitem__(self, label: int) -> float:
        return self._values[label]

    def __iter__(self) -> Iterator[int]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        body = ", ".join(
            f"{k}: {v:.6g}" + (f" ({self._reasons[k]})" if k in self._reasons else "")
            for k, v in self._values.items()
        )
        return f"PerClass({{{body}}})"

    @property
    def reasons(self) -> dict[int, str]:
        """label -> reason (``"pred empty"``, ``"gt empty"``, ``"both empty"``) for undefined values."""
        return dict(self._reasons)

    def reason(self, label: int) -> str | None:
        """Why the value of ``label`` is NaN, or ``None`` when it is defined."""
        if label not in self._values:
            raise KeyError(label)
        return self._reasons.get(label)

    def value(self) -> float:
        """The only value, for a binary comparison; raises when several classes were scored."""
        if len(self._values) != 1:
            raise ValueError(f"{len(self._values)} classes were scored; index the result by label instead.")
        return next(iter(self._values.values()))

    def nanmean(self) -> float:
        """Mean over the classes with a defined value (NaN when there is none)."""
        defined = [v for v in self._values.values() if not math.isnan(v)]
        return sum(defined) / len(defined) if defined else math.nan


@dataclass(frozen=True)
class ClassMetrics:
    """Every metric of one class, computed from one pair of crops and one EDT per direction.

    Distances are in mm. ``reason`` is set when a side is empty: distances are then NaN, and Dice is
    NaN only when both sides are empty (one empty side gives a well-defined Dice of 0).
    """

    label: int
    dice: float
    hd95: float
    hd: float
    assd: float
    asd: float
    pred_voxels: int
    gt_voxels: int
    reason: str | None = None
