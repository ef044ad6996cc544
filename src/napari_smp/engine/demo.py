"""The built-in end-to-end example behind ``make demo`` and ``napari-smp demo``.

A procedural abdominal phantom is made, four of its axial slices are "painted" (copied from the
full labels), the ``lite`` network is fine-tuned on those slices only, the whole volume is
segmented, and the result is scored against the full labels, on all slices and on the slices that
were never painted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import ModelConfig, NormConfig, TrainConfig
from ..io import make_phantom, write_labels, write_volume
from ..io.atomic import atomic_write_text
from ..metrics import evaluate_labels
from .inference import Predictor
from .training import finetune

__all__ = ["DemoResult", "sparse_annotation", "run_demo"]


@dataclass
class DemoResult:
    out: Path
    painted: list[int]
    steps: int
    mean_dice: float
    mean_dice_unpainted: float
    seconds: float


def sparse_annotation(labels: np.ndarray, n_slices: int = 4) -> tuple[np.ndarray, list[int]]:
    """Keep ``n_slices`` evenly spread axial slices of ``labels`` (Z, Y, X); zero the rest.

    Picks lie strictly inside the labelled slab, as a user painting a few slices would place them. A
    slab too thin for ``n_slices`` distinct picks gives fewer (the returned list says how many).
    """
    occupied = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    if occupied.size == 0 or n_slices < 1:
        raise ValueError("sparse_annotation needs a label map with a labelled slice and n_slices >= 1")
    picks = np.unique(np.linspace(occupied[0], occupied[-1], n_slices + 2)[1:-1].round().astype(int))
    sparse = np.zeros_like(labels)
    sparse[picks] = labels[picks]
    return sparse, picks.tolist()


def run_demo(
    out: str | Path,
    steps: int = 150,
    time_budget: float = 120.0,
    device: str = "auto",
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Make the phantom, fine-tune on four painted slices, segment, score; write everything to ``out``."""
    if steps < 1:
        raise ValueError(f"the demo needs at least one training step, got --steps {steps}")
    train = TrainConfig(steps=steps, time_budget=time_budget, device=device)  # refuses bad settings first
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ph = make_phantom(seed=0)
    sparse, painted = sparse_annotation(ph.labels)
    write_volume(out / "phantom_image.nii.gz", ph.image, ph.meta)
    write_labels(out / "phantom_labels.nii.gz", ph.labels, ph.meta)
    write_labels(out / "sparse_annotation.nii.gz", sparse, ph.meta)
    log(
        f"phantom {ph.image.shape} (Z, Y, X) at {ph.meta.spacing} mm, {len(ph.class_names) - 1} organs; "
        f"painted slices {painted}"
    )

    config = ModelConfig(
        preset="lite",
        num_classes=len(ph.class_names),
        class_names=list(ph.class_names),
        norm=NormConfig(mode="ct"),
        # the bank on, unlike lite's default: the demo docks Clusters with this model, and on this
        # phantom the bank scored level with the network without it (docs/method.md)
        use_memory=True,
    )
    # a step count, not a time budget, sets the run: the learning rate decays over the steps, so two
    # runs give the same model; the budget only caps a slow machine (150 steps take about 65 s on two
    # cores). A network that answers from its finest head needs them, and the fine-tune keeps
    # whichever answer scores better on the painted slices (training/answer.py; docs/method.md)
    result = finetune(ph.image, sparse, config=config, train=train, out=out / "model.safetensors")
    last = result.reports[-1]
    log(f"fine-tuned {len(result.reports)} steps in {last.elapsed:.0f} s: {last.summary()}")
    log(f"the model {result.answer()}")

    pred = Predictor.from_checkpoint(result.path).predict(ph.image, ph.meta.spacing).labels
    write_labels(out / "prediction.nii.gz", pred, ph.meta)
    names = dict(enumerate(ph.class_names))
    report = evaluate_labels(pred, ph.labels, ph.meta.spacing, class_names=names)
    unpainted = np.setdiff1d(np.arange(ph.labels.shape[0]), painted)
    report_u = evaluate_labels(pred[unpainted], ph.labels[unpainted], ph.meta.spacing, class_names=names)
    atomic_write_text(out / "metrics.csv", report.to_csv())
    atomic_write_text(out / "metrics.json", report.to_json())
    log(report.format_table())
    mean, mean_u = report.mean.dice, report_u.mean.dice
    log(f"mean Dice {mean:.3f} on all slices, {mean_u:.3f} on the {len(unpainted)} slices never painted")
    log(
        f"files in {out}/: phantom_image, phantom_labels, sparse_annotation, prediction (.nii.gz), "
        "model.safetensors, metrics.csv/json"
    )
    return DemoResult(out, painted, len(result.reports), mean, mean_u, time.perf_counter() - t0)
