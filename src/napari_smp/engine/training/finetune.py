"""Fine-tuning on the painted slices of one volume, and the one path from a painting to a saved model.

:func:`finetune` trains and, given ``out``, writes the checkpoint with the same metadata whoever calls
it (the command line, the Fine-tune widget, the demo, ``complete``). The model starts from
scratch, from a checkpoint, or from a pre-trained encoder (``engine.checkpoint.start_model``).

A painting is whole slices (an axial slice with any label is annotated, 0 on it is background) or, with
``background_label``, scribbles: 0 = not annotated, that label = background, and only the marked
pixels enter the loss (``engine.annotation.scribble_targets``). A stroke in a coronal or sagittal
plane marks pixels of many axial slices: each axial slice with any marked pixel trains on those pixels.
A run from a trained checkpoint (a correction) is a warm start: the model goes on from its weights.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ...config import ModelConfig, TrainConfig
from ..annotation import scribble_targets
from ..checkpoint import is_pretrained_checkpoint, read_checkpoint_info, save_checkpoint, start_model
from ..classes import ClassTable
from ..device import resolve_device
from ..errors import Cancelled, EngineError
from ..k_history import k_history
from ..volumes import annotated_slices, check_image, check_labels
from .answer import choose_answer, describe_answer
from .loop import StepReport, fit
from .slice_set import SliceSet

__all__ = ["TrainResult", "finetune", "short_run_warmup", "check_init_classes"]


@dataclass
class TrainResult:
    """A trained model and how the run went.

    Attributes:
        stopped: ``steps`` (all steps done), ``time`` (budget used) or ``cancelled``.
        slices: the annotated slice indices that were trained on.
        notes: things the user should know (e.g. classes of the checkpoint absent from the annotation).
        answers: lite: the Dice of each answer on the painted slices, by ``lite_prediction`` value;
            ``config`` keeps the better one (``training.answer.choose_answer``).
        path: where :func:`finetune` saved the model (None without ``out``).
        pixels: scribbles: the annotated pixels trained on (None for whole slices).
        warm: the run went on from a trained checkpoint's weights (a correction).
    """

    model: torch.nn.Module
    config: ModelConfig
    reports: list[StepReport]
    stopped: str
    slices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    notes: list[str] = field(default_factory=list)
    answers: dict[str, float] = field(default_factory=dict)
    path: Path | None = None
    pixels: int | None = None
    warm: bool = False

    def answer(self) -> str:
        """Which answer the model kept and why (``training.answer.describe_answer``); '' if none was chosen."""
        return describe_answer(self.config, self.answers)

    def summary(self) -> str:
        """``150 steps on 4 annotated slices (stopped: steps); final loss 0.123, K 43``."""
        last = self.reports[-1] if self.reports else None
        where = f"{len(self.slices)} annotated slices"
        if self.pixels is not None:
            where = f"{self.pixels:,} scribbled pixels of {len(self.slices)} slices"
        text = f"{len(self.reports)} steps on {where} (stopped: {self.stopped})"
        return text + (f"; final {last.summary()}" if last else "")


def short_run_warmup(config: ModelConfig, steps: int, cap: int = 30) -> ModelConfig:
    """Shorten the bank's warm-up so a short run from scratch still builds a bank.

    The paper warms up for 2000 of ~33,000 iterations; a few-hundred-step fine-tune would never
    leave warm-up, so we give it a tenth of the planned steps, at least 5 and at most ``cap`` (a
    time budget may stop the run long before ``steps``).
    """
    warm = min(config.memory.warmup_steps, max(5, min(steps // 10, cap)))
    return replace(config, memory=replace(config.memory, warmup_steps=warm))


def _task_classes(task: ModelConfig, painted: np.ndarray, names: dict[int, str] | None) -> ClassTable:
    """The classes of a new model: the painted values and the named ones, plus any class the config names.

    A config that names classes (``class_values``, or ``class_names`` by index) keeps them all, so a
    class absent from this painting is still part of the model; ``num_classes`` alone does not add
    classes (a painting of the values 5 and 52 is a three-class model).
    """
    given: dict[int, str] = dict(names or {})
    if task.class_values is not None or task.class_names is not None:
        given = {**ClassTable.from_config(task).by_value, **given}
    return ClassTable.from_painting(painted, given)


def _check_classes(painted: np.ndarray, table: ClassTable) -> list[str]:
    """Refuse values the model does not know; say which of its classes the painting does not show."""
    table.check(painted)
    used = set(np.unique(painted).tolist())
    missing = [name for value, name in table.by_value.items() if value and value not in used]
    if not missing:
        return []
    return [f"classes absent from the annotation keep what the model knew: {', '.join(missing)}"]


def check_init_classes(init: str | os.PathLike[str] | None, painted: np.ndarray) -> None:
    """Refuse, before any work, a painting with a class that the trained checkpoint ``init`` lacks.

    Args:
        init: a checkpoint to start from (None, or a pre-trained encoder: nothing to check).
        painted: the painting's labels in the user's values (scribbles: background already 0).
    Raises:
        EngineError: one sentence naming the first value the model does not know.
    """
    if init is None or is_pretrained_checkpoint(init):
        return
    info = read_checkpoint_info(init)
    table = ClassTable.from_config(ModelConfig.from_dict(info["config"]))
    unknown = table.unknown(painted)
    if unknown:
        raise EngineError(
            f"the painting uses label value {unknown[0]}, which the model does not know ({Path(init).name} knows "
            f"{', '.join(str(v) for v in table.values)}); start from scratch or paint with its classes"
        )


def _slow_step_notes(reports: list[StepReport], budget: float | None) -> list[str]:
    """A sentence when one step took longer than the whole time budget (at least one step is taken)."""
    if not budget or not reports:
        return []
    ends = [0.0] + [r.elapsed for r in reports]
    longest = max(b - a for a, b in zip(ends[:-1], ends[1:], strict=True))
    if longest <= budget:
        return []
    return [
        f"one training step took {longest:.0f} s, longer than the {budget:g} s time budget, so the run took "
        f"{len(reports)} step(s); a busy CPU or a larger input size makes steps slower"
    ]


def finetune(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    config: ModelConfig | None = None,
    init: str | Path | None = None,
    train: TrainConfig | None = None,
    slices: list[int] | None = None,
    class_names: dict[int, str] | None = None,
    out: str | os.PathLike[str] | None = None,
    callback: Callable[[StepReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    background_label: int | None = None,
) -> TrainResult:
    """Fine-tune on the painted slices of one volume, and save the model to ``out`` when given.

    The one path from a painting to a saved model: the command line, the Fine-tune widget, the demo and
    ``complete`` all call it, so every checkpoint carries the same facts (slices, steps, answers ...).

    Args:
        image: (Z, Y, X) intensities.
        labels: (Z, Y, X) label map; only annotated slices are used (``engine.volumes``), or scribbles.
        config: model settings when starting from scratch; its classes are the painted label values (and
            any it names), kept as the user's values (``engine.classes.ClassTable``).
        init: a checkpoint to start from (its config wins over ``config``), or a pre-trained encoder
            from ``pretrain`` (its architecture, with this run's classes and normalisation).
        train: steps, time budget, batch size, learning rate, device.
        slices: extra slice indices to count as annotated background.
        class_names: label value -> name (a file's header or sidecar, a layer's names).
        out: a ``.safetensors`` path: the model is written there atomically (``result.path``).
        background_label: scribble mode: 0 = not annotated, this label = background (written as 0);
            ``slices`` then lists slices that are background wherever nothing is marked.

    Raises:
        Cancelled: with ``out``, a cancelled run (nothing is written); without, ``stopped`` says it.
    """
    started = time.perf_counter()  # the time budget includes the set-up
    train = train or TrainConfig()
    check_image(image)
    labels = check_labels(labels, image.shape)
    known = None
    if background_label is not None:
        labels, known = scribble_targets(labels, background_label)
        if slices:  # listed slices are known everywhere: background where nothing is marked
            annotated_slices(labels, slices)  # checks the indices
            known[list(slices)] = True
        index = np.flatnonzero(known.reshape(len(known), -1).any(axis=1))
        # the background label is 0 from here on: it must not become a class of its own
        class_names = {v: n for v, n in (class_names or {}).items() if v != background_label}
    else:
        index = annotated_slices(labels, slices)
    if len(index) == 0:
        raise EngineError(
            "no annotated slice: paint at least one axial slice (or list empty ones with --slices)"
        )
    check_init_classes(init, labels[index])
    torch.manual_seed(train.seed)
    # from scratch or from a pre-trained encoder, the task (classes, bank schedule) is this run's
    task = config or ModelConfig()
    task = _task_classes(task, labels[index], class_names).configure(task)
    model, config = start_model(short_run_warmup(task, train.step_cap), init)
    table = ClassTable.from_config(config)  # a trained checkpoint keeps the classes it knows
    notes = _check_classes(labels[index], table)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    model.to(resolve_device(train.device))
    data = SliceSet.from_volume(
        image, labels, index, config, soft=train.soft_labels, to_index=table.to_index, known=known
    )
    reports, stopped = fit(
        model, data, train, callback, cancel, clock=lambda: time.perf_counter() - started, first_step_free=True
    )
    notes += _slow_step_notes(reports, train.time_budget)
    scores: dict[str, float] = {}
    if train.choose_answer and reports and stopped != "cancelled":  # short runs keep the sum (training/answer.py)
        config, scores = choose_answer(model, data)
    pixels = None if known is None else int(np.count_nonzero(known))
    warm = init is not None and not is_pretrained_checkpoint(init)
    result = TrainResult(model.cpu(), config, reports, stopped, index, notes, scores, pixels=pixels, warm=warm)
    if out is not None:
        result.path = _save(out, result)
    return result


def _save(out: str | os.PathLike[str], result: TrainResult) -> Path:
    """Write a fine-tuned model with the facts of its run; a cancelled run writes nothing."""
    if result.stopped == "cancelled":
        raise Cancelled("fine-tune cancelled")
    last = result.reports[-1] if result.reports else None
    return save_checkpoint(
        out,
        result.model,
        result.config,
        slices=[int(s) for s in result.slices],
        steps=len(result.reports),
        stopped=result.stopped,
        final_loss=last.loss if last else None,
        answers=result.answers,
        **({} if result.pixels is None else {"scribbled_pixels": result.pixels}),
        k_history=k_history(result.reports),  # K over training, for `napari-smp clusters` (issue 30)
    )
