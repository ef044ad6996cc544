"""The built-in end-to-end example behind ``make demo`` and ``napari-smp demo``.

A procedural abdominal phantom is made, four of its axial slices are "painted" (copied from the
full labels), the ``lite`` network is fine-tuned on those slices only, the whole volume is
segmented, and the result is scored against the full labels, on all slices and on the slices that
were never painted.

A step count sets the run, a time budget only caps it. On a slow or busy machine the budget can end
the fine-tune long before its steps are done; the demo then says so plainly, before and beside the
Dice it prints (:func:`cut_short_note`), since that Dice is of an under-trained model, not of the
method.
"""

from __future__ import annotations

import math
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

__all__ = ["DemoResult", "cut_short_note", "sparse_annotation", "run_demo"]


@dataclass
class DemoResult:
    """What the demo did: its folder, the painted slices, steps done of planned, the Dice it printed.

    ``cut_short`` is True when the time budget ended the fine-tune before ``planned_steps``; the Dice
    values are then of an under-trained model (``note`` says so in words).
    """

    out: Path
    painted: list[int]
    steps: int
    mean_dice: float
    mean_dice_unpainted: float
    seconds: float
    planned_steps: int = 0
    cut_short: bool = False
    note: str = ""


def cut_short_note(done: int, planned: int, budget: float | None, elapsed: float) -> str:
    """One plain sentence when a time budget stopped training before its planned steps; '' otherwise.

    Args:
        done: optimiser steps taken.
        planned: steps the run was set for.
        budget: the time budget in seconds (None: no budget, so nothing can have cut the run short).
        elapsed: seconds the fine-tune took, set-up included (the pace estimate uses it).

    Returns:
        e.g. ``cut short by the 120 s time budget after 21 of 150 steps (this CPU was busy or slow): the
        Dice below is of an under-trained model, not of the method; at this pace 150 steps need about
        860 s: run with --time-budget 1080 to train fully``.
    """
    if budget is None or done >= planned:
        return ""
    need = elapsed / max(done, 1) * planned
    # a quarter more than the pace says, in whole minutes: the pace of a busy machine wanders
    suggest = 60 * math.ceil(1.25 * need / 60)
    return (
        f"cut short by the {budget:g} s time budget after {done} of {planned} steps (this CPU was busy or "
        f"slow): the Dice below is of an under-trained model, not of the method; at this pace {planned} steps "
        f"need about {need:.0f} s: run with --time-budget {suggest} to train fully"
    )


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
    # a step count, not a time budget, sets the run: the learning rate decays over the steps; the budget
    # only caps a slow machine (150 steps take about 65 s on two cores). A network that answers from its
    # finest head needs them, and the fine-tune keeps whichever answer scores better on the painted
    # slices (training/answer.py; docs/method.md). Two runs are not bit-identical: torch's thread count
    # follows the load (device.ThreadGovernor), the schedule also counts the budget's seconds used
    # (loop.scheduled_lr: the first step's rate, even under a budget of 100000 s), and that alone moves
    # this model's Dice by a few hundredths (seed 0, no budget: 0.854 on 1 fixed thread, 0.826 on 2;
    # 0.887 and 0.863 in two runs on 1 thread under 100000 s). Compare code with NAPARI_SMP_THREADS set
    # and no budget (run_demo(time_budget=None)): then two runs give the same model bit for bit.
    result = finetune(ph.image, sparse, config=config, train=train, out=out / "model.safetensors")
    last = result.reports[-1]
    done = len(result.reports)
    note = cut_short_note(done, steps, time_budget, last.elapsed) if result.stopped == "time" else ""
    log(f"fine-tuned {done} of {steps} steps in {last.elapsed:.0f} s: {last.summary()}")
    if note:
        log(f"NOTE: {note}")
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
    caveat = f" (under-trained: {done} of {steps} steps, see the note above)" if note else ""
    log(f"mean Dice {mean:.3f} on all slices, {mean_u:.3f} on the {len(unpainted)} slices never painted{caveat}")
    log(
        f"files in {out}/: phantom_image, phantom_labels, sparse_annotation, prediction (.nii.gz), "
        "model.safetensors, metrics.csv/json"
    )
    return DemoResult(out, painted, done, mean, mean_u, time.perf_counter() - t0, planned_steps=steps,
                      cut_short=bool(note), note=note)
