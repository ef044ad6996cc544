"""What one DMW-LA module's clusters claim on some slices, and how pure they are: the Clusters widget's
and ``napari-smp clusters``' one computation.

Steps: the module's query features (:func:`~.cluster_maps.module_features`), their similarity to the
bank's prototypes brought to the image grid, the argmax there, the body (air excluded), each cluster's
box around its main connected region inside the body, and with a label map the cluster x class table
and purity (``cluster_purity``) on all slices, the painted ones and the never-painted ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..classes import ClassTable
from .cluster_maps import module_features, similarity_on_grid
from .cluster_purity import PurityTable, body_mask, cluster_purity, grid_assignment, otsu_threshold, top_purity
from .cluster_summary import Box, main_region_boxes
from .predictor import CancelFn, Predictor, ProgressFn

__all__ = ["ClusterReport", "cluster_report", "default_module", "SPLITS"]

#: the slice sets purity is reported on
SPLITS = ("all", "painted", "never painted")


@dataclass
class ClusterReport:
    """The clusters of one module on a stack of slices.

    Attributes:
        module: the module's name.
        slices: (S,) slice indices in the volume.
        similarity: (K, S, Y, X) float16 cosine similarity to each prototype, on the image grid.
        assignment: (S, Y, X) int16 cluster of every pixel (argmax on the image grid).
        body: (S, Y, X) bool, the pixels that are not air.
        boxes: one box per (slice, cluster) around its main region inside the body.
        stride: model-input pixels per feature cell of the module.
        warming_up: the bank was never initialised (its clusters mean nothing).
        tied: a class-seeded bank (cluster c was started from class c of the model).
        model_classes: the model's classes (cluster c <-> class c when tied).
        classes: the columns of the class table (the labels' values, the model's included); None
            without labels.
        purity: split name (``SPLITS``) -> purity table, for the splits that have slices.
        top: split name -> (K,) top purity (R-precision).
        present: split name -> (C,) bool, classes with body pixels on those slices.
        space: the feature space compared with the prototypes (``"phi"`` or ``"theta"``).
    """

    module: str
    slices: np.ndarray
    similarity: np.ndarray
    assignment: np.ndarray
    body: np.ndarray
    boxes: list[Box]
    stride: float
    warming_up: bool
    tied: bool
    model_classes: ClassTable
    classes: ClassTable | None = None
    purity: dict[str, PurityTable] = field(default_factory=dict)
    top: dict[str, np.ndarray] = field(default_factory=dict)
    present: dict[str, np.ndarray] = field(default_factory=dict)
    space: str = "phi"

    @property
    def k(self) -> int:
        """Number of clusters."""
        return int(self.similarity.shape[0])

    def counts(self) -> np.ndarray:
        """(K,) body pixels each cluster claims."""
        a = self.assignment[self.body].astype(np.int64)
        return np.bincount(a, minlength=self.k)[: self.k]

    def class_name(self, c: int, split: str = "all") -> str:
        """The class cluster ``c`` stands for: tied (the model's class c) or its majority class."""
        if self.tied or self.classes is None or split not in self.purity:
            return self.model_classes.names[c] if c < len(self.model_classes) else "-"
        idx = int(self.purity[split].classes[c])
        return self.classes.names[idx] if idx >= 0 else "-"

    def mean_purity(self, split: str = "all") -> float:
        """Mean purity over the clusters that claim body pixels and whose class is present."""
        return self.purity[split].mean(self.present[split]) if split in self.purity else float("nan")

    def rows(self) -> tuple[list[str], list[list[object]]]:
        """The ``clusters.csv`` table: cluster, class, purity, share in each class, then pixels,
        purity on painted and never-painted slices and top purity (R-precision)."""
        names = list(self.classes.names) if self.classes is not None else []
        header = ["cluster", "class", "purity", *[f"share {n}" for n in names], "pixels",
                  "purity painted", "purity never painted", "top purity"]
        counts = self.counts()
        rows: list[list[object]] = []
        for c in range(self.k):
            row: list[object] = [c, self.class_name(c)]
            row.append(_num(self.purity["all"].purity[c]) if "all" in self.purity else "")
            shares = self.purity["all"].shares[c] if "all" in self.purity else []
            row += [_num(v) for v in shares]
            row.append(int(counts[c]))
            for split in ("painted", "never painted"):
                row.append(_num(self.purity[split].purity[c]) if split in self.purity else "")
            row.append(_num(self.top["all"][c]) if "all" in self.top else "")
            rows.append(row)
        return header, rows


def default_module(names: Sequence[str]) -> str:
    """The module shown when none is chosen: the finest decoder bank (its cells are the smallest and
    it has seen the skips), else the last module.

    Raises:
        ValueError: no module (a model without its memory bank).
    """
    if not names:
        raise ValueError(
            "this model was trained without its memory bank: it has no clusters to show; fine-tune one "
            "with it (Fine-tune's 'memory bank' box, or finetune --memory)"
        )
    decoders = sorted((n for n in names if n.startswith("decoder.stage")), key=lambda n: n[-1])
    return decoders[0] if decoders else names[-1]


def _num(v: float) -> object:
    return "" if not np.isfinite(v) else round(float(v), 4)


def cluster_report(
    predictor: Predictor,
    volume: np.ndarray,
    module: str,
    slices: Sequence[int] | None = None,
    labels: np.ndarray | None = None,
    painted: Sequence[int] | None = None,
    class_names: dict[int, str] | None = None,
    body_threshold: float | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    space: str = "phi",
) -> ClusterReport:
    """Clusters of one DMW-LA module on some slices, on the image grid, with purity when labelled.

    Args:
        predictor: the model.
        volume: (Z, Y, X) intensities.
        module: one of ``predictor.memory_modules()``.
        slices: slice indices (default: all).
        labels: (S, Y, X) label map of those slices in the user's values, or None.
        painted: volume slice indices the model was trained on (the checkpoint's ``slices``); the
            others count as never painted.
        class_names: label value -> name, for values the model does not name.
        body_threshold: intensity cut between air and body (None: Otsu's threshold of the volume).
        space: the features compared with the prototypes: ``"phi"``, the bank's own space (what its
            slots are written from), or ``"theta"``, the memory read's queries (``cluster_maps``).

    Raises:
        ValueError: no memory bank, no such module, or labels of another shape (one sentence).
    """
    feats = module_features(predictor, volume, module, slices, progress, cancel, space)
    index = feats.slices
    if labels is not None and labels.shape != (len(index), *volume.shape[1:]):
        raise ValueError(
            f"labels of shape {labels.shape} do not match the {len(index)} slices of {volume.shape[1:]} shown"
        )
    sim = similarity_on_grid(feats.theta, feats.prototypes, volume.shape[1:])
    assignment = grid_assignment(sim)
    # Otsu's cut from the whole volume (one slice may be all body), the mask only where it is needed
    cut = otsu_threshold(volume[:: max(1, volume.shape[0] // 32)]) if body_threshold is None else body_threshold
    body = body_mask(volume[index], cut)
    boxes = main_region_boxes(assignment, index, feats.prototypes.shape[0], body)
    bank = dict(predictor.model.memory_modules())[module]
    tied = bool(getattr(bank, "seed_from_labels", False))
    table = ClassTable.from_config(predictor.config)
    report = ClusterReport(module, index, sim, assignment, body, boxes, feats.stride, feats.warming_up,
                           tied, table, space=feats.space)
    if labels is not None:
        _add_purity(report, labels, painted, class_names)
    return report


def _add_purity(report: ClusterReport, labels: np.ndarray, painted: Sequence[int] | None,
                class_names: dict[int, str] | None) -> None:
    model = report.model_classes
    names = {**model.by_value, **dict(class_names or {})}
    columns = ClassTable.from_painting(np.concatenate([labels.ravel(), np.asarray(model.values)]), names)
    report.classes = columns
    index = columns.to_index(labels)
    k = report.k
    col = {v: i for i, v in enumerate(columns.values)}
    # a tied cluster stands for the model's class c, wherever that value sits among the label columns
    tied: bool | np.ndarray = (np.array([col.get(model.values[c], -1) if c < len(model) else -1
                                         for c in range(k)]) if report.tied else False)
    in_painted = np.isin(report.slices, np.asarray([] if painted is None else list(painted), dtype=np.int64))
    splits = {"all": np.ones(len(report.slices), bool)}
    if painted is not None:
        splits["painted"], splits["never painted"] = in_painted, ~in_painted
    for name, sel in splits.items():
        if not sel.any():
            continue
        a, lab, body = report.assignment[sel], index[sel], report.body[sel]
        table = cluster_purity(a, lab, k, len(columns), body, tied)
        report.purity[name] = table
        report.present[name] = np.bincount(lab[body].ravel(), minlength=len(columns))[: len(columns)] > 0
        report.top[name] = top_purity(report.similarity[:, sel], lab, table.classes, body)
