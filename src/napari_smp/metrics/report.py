"""Evaluate a predicted label map against ground truth: per-class rows, a mean row, JSON/CSV/table.

Array level only: the CLI (``napari-smp evaluate``) and the widgets read the files and call
:func:`evaluate_labels`. Values come from :mod:`napari_smp.metrics` (medpy convention by default).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ._inputs import ShapeMismatchError
from .per_class import class_metrics, dice_from_counts
from .result import ClassMetrics
from .surface import Convention

__all__ = ["ClassRow", "EvaluationReport", "MeanRow", "evaluate_labels", "per_slice_dice"]

_METRICS = ("dice", "hd95_mm", "hd_mm", "assd_mm")
_COLUMNS = ("label", "name", *_METRICS, "pred_voxels", "gt_voxels", "pred_ml", "gt_ml", "note")


@dataclass(frozen=True)
class ClassRow:
    """Scores of one class. Distances in mm, volumes in mL; ``note`` holds the empty-mask reason, if any."""

    label: int
    name: str
    dice: float
    hd95_mm: float
    hd_mm: float
    assd_mm: float
    pred_voxels: int
    gt_voxels: int
    note: str = ""
    pred_ml: float = math.nan  # the class's volume in the prediction, voxels x voxel volume
    gt_ml: float = math.nan


@dataclass(frozen=True)
class MeanRow:
    """NaN-aware mean over classes; ``counts[metric]`` says how many classes had a defined value."""

    dice: float
    hd95_mm: float
    hd_mm: float
    assd_mm: float
    counts: dict[str, int] = field(default_factory=dict)
    n_classes: int = 0

    @property
    def note(self) -> str:
        """Short account of the classes behind each mean, e.g. ``"dice 3/3, distances 2/3"``."""
        dist = {self.counts.get(m, 0) for m in _METRICS[1:]}
        dist_txt = f"{dist.pop()}/{self.n_classes}" if len(dist) == 1 else "varies"
        return f"dice {self.counts.get('dice', 0)}/{self.n_classes}, distances {dist_txt}"


def _nan_to_none(value: object) -> object:
    return None if isinstance(value, float) and math.isnan(value) else value


def _fmt(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


@dataclass(frozen=True)
class EvaluationReport:
    """Per-class rows plus their mean, with the geometry and the HD95 convention used."""

    rows: tuple[ClassRow, ...]
    mean: MeanRow
    spacing: tuple[float, ...]
    convention: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON structure; NaN becomes ``None``."""
        mean = {k: _nan_to_none(v) for k, v in asdict(self.mean).items()}
        return {
            "convention": self.convention,
            "spacing_mm": list(self.spacing),
            "shape": list(self.shape),
            "classes": [{k: _nan_to_none(v) for k, v in asdict(row).items()} for row in self.rows],
            "mean": mean,
        }

    def to_json(self, indent: int = 2) -> str:
        """JSON text (strict: undefined values are ``null``, never ``NaN``)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_csv(self) -> str:
        """CSV with one row per class and a last row ``mean`` (undefined values written ``nan``)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(_COLUMNS)
        for row in self.rows:
            writer.writerow(
                [getattr(row, c) if c not in _METRICS else repr(getattr(row, c)) for c in _COLUMNS]
            )
        m = self.mean
        writer.writerow(["mean", "mean", *(repr(getattr(m, c)) for c in _METRICS), "", "", "", "", m.note])
        return buf.getvalue()

    def format_table(self) -> str:
        """Aligned plain-text table for the terminal (Dice to 4 decimals, distances to 2, in mm)."""
        header = ["label", "name", "dice", "hd95 mm", "hd mm", "assd mm", "pred vox", "gt vox", "pred mL", "gt mL",
                  "note"]  # fmt: skip
        lines = [
            [str(r.label), r.name, _fmt(r.dice, 4), _fmt(r.hd95_mm, 2), _fmt(r.hd_mm, 2), _fmt(r.assd_mm, 2),
             str(r.pred_voxels), str(r.gt_voxels), _fmt(r.pred_ml, 2), _fmt(r.gt_ml, 2), r.note]
            for r in self.rows
        ]  # fmt: skip
        m = self.mean
        lines.append(
            [
                "",
                "mean",
                _fmt(m.dice, 4),
                _fmt(m.hd95_mm, 2),
                _fmt(m.hd_mm, 2),
                _fmt(m.assd_mm, 2),
                "",
                "",
                "",
                "",
                m.note,
            ]
        )
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        left = {1, 10}  # text columns; numbers align right

        def render(cells: Sequence[str]) -> str:
            parts = [
                c.ljust(w) if i in left else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ]
            return "  ".join(parts).rstrip()

        rule = "  ".join("-" * w for w in widths)
        title = (
            f"HD95 convention: {self.convention}; spacing (mm): {', '.join(f'{s:g}' for s in self.spacing)}"
        )
        return "\n".join(
            [title, render(header), rule, *(render(c) for c in lines[:-1]), rule, render(lines[-1])]
        )


def _row(m: ClassMetrics, name: str, voxel_ml: float) -> ClassRow:
    return ClassRow(
        m.label, name, m.dice, m.hd95, m.hd, m.assd, m.pred_voxels, m.gt_voxels, m.reason or "",
        m.pred_voxels * voxel_ml, m.gt_voxels * voxel_ml,
    )  # fmt: skip


def _mean(rows: Sequence[ClassRow]) -> MeanRow:
    means: dict[str, float] = {}
    counts: dict[str, int] = {}
    for metric in _METRICS:
        defined = [getattr(r, metric) for r in rows if not math.isnan(getattr(r, metric))]
        counts[metric] = len(defined)
        means[metric] = float(np.mean(defined)) if defined else math.nan
    return MeanRow(**means, counts=counts, n_classes=len(rows))


def evaluate_labels(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: float | Sequence[float] | None,
    convention: Convention = "medpy",
    class_names: Mapping[int, str] | None = None,
    labels: int | Iterable[int] | None = None,
) -> EvaluationReport:
    """Score a predicted label map against the ground truth, class by class.

    Args:
        pred: ``(Z, Y, X)`` (or ``(Y, X)``) integer label map.
        gt: ground truth of the same shape.
        spacing: voxel size in mm in array order ``(Z, Y, X)``; ``None`` means 1 (distances in voxels).
        convention: HD95 convention, ``"medpy"`` (pooled, the paper's) or ``"monai"`` (max of directions).
        class_names: label -> display name; missing labels are shown as ``"class <label>"``.
        labels: classes to score; ``None`` means every non-zero label present in either map.

    Returns:
        The report: one :class:`ClassRow` per class in label order (scores, voxel counts and volumes in
        mL) and a NaN-aware :class:`MeanRow`.

    Raises:
        ShapeMismatchError: the maps differ in shape.
        MetricInputError: bad dtype, spacing, labels or convention.
    """
    names = dict(class_names or {})
    per_class = class_metrics(pred, gt, spacing, labels, convention)
    # class_metrics has validated the spacing; this only spells it out per axis
    sp = tuple(
        np.broadcast_to(np.asarray(1.0 if spacing is None else spacing, float), (np.ndim(pred),)).tolist()
    )
    voxel_ml = float(np.prod(sp)) / 1000.0  # mm^3 -> mL (a 2D map: mm^2 per pixel, read as 1 mm thick)
    rows = tuple(_row(m, names.get(label, f"class {label}"), voxel_ml) for label, m in per_class.items())
    return EvaluationReport(rows, _mean(rows), sp, convention, tuple(np.shape(pred)))


def per_slice_dice(pred: np.ndarray, gt: np.ndarray, label: int) -> np.ndarray:
    """Dice of one class on every axial slice, for plots along the volume.

    Args:
        pred: ``(Z, Y, X)`` integer label map.
        gt: ``(Z, Y, X)`` ground truth.
        label: the class to score.

    Returns:
        ``(Z,)`` float64 array; NaN on slices where the class is absent from both maps.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ShapeMismatchError(
            f"pred {pred.shape} and gt {gt.shape} must be (Z, Y, X) volumes of one shape."
        )
    p, g = pred == label, gt == label
    overlap = np.count_nonzero(p & g, axis=(1, 2))
    return dice_from_counts(overlap, np.count_nonzero(p, axis=(1, 2)), np.count_nonzero(g, axis=(1, 2)))
