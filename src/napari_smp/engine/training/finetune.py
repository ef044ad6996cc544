"""Fine-tuning on the painted slices of one volume, and the one path from a painting to a saved model.

:func:`finetune` trains; :func:`finetune_to_checkpoint` trains and writes the checkpoint with the same
metadata whoever calls it (the command line, the Fine-tune widget, the demo). The model starts from
scratch, from a checkpoint, or from a pre-trained encoder (``engine.checkpoint.start_model``).
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
from ..checkpoint import save_checkpoint, start_model
from ..device import resolve_device
from ..errors import Cancelled, EngineError
from ..volumes import annotated_slices, check_image, check_labels, num_classes_for
from .answer import choose_answer, describe_answer
from .loop import StepReport, fit
from .slice_set import SliceSet

__all__ = ["TrainResult", "finetune", "finetune_to_checkpoint", "short_run_warmup"]


@dataclass
class TrainResult:
    """A trained model and how the run went.

    Attributes:
        stopped: ``steps`` (all steps done), ``time`` (budget used) or ``cancelled``.
        slices: the annotated slice indices that were trained on.
        notes: things the user should know (e.g. classes of the checkpoint absent from the annotation).
        answers: lite: the Dice of each answer on the painted slices, by ``lite_prediction`` value;
            ``config`` keeps the better one (``training.answer.choose_answer``).
        path: where :func:`finetune_to_checkpoint` saved the model (None before saving).
    """

    model: torch.nn.Module
    config: ModelConfig
    reports: list[StepReport]
    stopped: str
    slices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    notes: list[str] = field(default_factory=list)
    answers: dict[str, float] = field(default_factory=dict)
    path: Path | None = None

    def answer(self) -> str:
        """Which answer the model kept and why (``training.answer.describe_answer``); '' if none was chosen."""
        return describe_answer(self.config, self.answers)

    def summary(self) -> str:
        """``150 steps on 4 annotated slices (stopped: steps); final loss 0.123, K 43``."""
        last = self.reports[-1] if self.reports else None
        text = f"{len(self.reports)} steps on {len(self.slices)} annotated slices (stopped: {self.stopped})"
        return text + (f"; final {last.summary()}" if last else "")


def short_run_warmup(config: ModelConfig, steps: int, cap: int = 30) -> ModelConfig:
    """Shorten the bank's warm-up so a short run from scratch still builds a bank.

    The paper warms up for 2000 of ~33,000 iterations; a few-hundred-step fine-tune would never
    leave warm-up, so we give it a tenth of the planned steps, at least 5 and at most ``cap`` (a
    time budget may stop the run long before ``steps``).
    """
    warm = min(config.memory.warmup_steps, max(5, min(steps // 10, cap)))
    return replace(config, memory=replace(config.memory, warmup_steps=warm))


def _check_classes(labels: np.ndarray, index: np.ndarray, config: ModelConfig) -> list[str]:
    used = np.unique(labels[index])
    if used.max() >= config.num_classes:
        raise EngineError(
            f"the annotation uses label {int(used.max())} but the model knows {config.num_classes} classes "
            f"(0..{config.num_classes - 1}); start from scratch or from a checkpoint with more classes"
        )
    missing = sorted(set(range(1, config.num_classes)) - set(used.tolist()))
    if not missing:
        return []
    names = ", ".join(config.names[i] for i in missing)
    return [f"classes absent from the annotation keep what the model knew: {names}"]


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
    callback: Callable[[StepReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> TrainResult:
    """Fine-tune on the painted slices of one volume.

    Args:
        image: (Z, Y, X) intensities.
        labels: (Z, Y, X) label map; only annotated slices are used (``engine.volumes``).
        config: model settings when starting from scratch (``num_classes`` is raised to fit the labels).
        init: a checkpoint to start from (its config wins over ``config``), or a pre-trained encoder
            from ``pretrain`` (its architecture, with this run's classes and normalisation).
        train: steps, time budget, batch size, learning rate, device.
        slices: extra slice indices to count as annotated background.
    """
    started = time.perf_counter()  # the time budget includes the set-up
    train = train or TrainConfig()
    check_image(image)
    labels = check_labels(labels, image.shape)
    index = annotated_slices(labels, slices)
    if len(index) == 0:
        raise EngineError(
            "no annotated slice: paint at least one axial slice (or list empty ones with --slices)"
        )
    torch.manual_seed(train.seed)
    # from scratch or from a pre-trained encoder, the task (classes, bank schedule) is this run's
    task = config or ModelConfig()
    n_cls = num_classes_for(labels[index], at_least=task.num_classes)
    if n_cls != task.num_classes:
        task = replace(task, num_classes=n_cls, class_names=None)
    model, config = start_model(short_run_warmup(task, train.step_cap), init)
    notes = _check_classes(labels, index, config)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    model.to(resolve_device(train.device))
    data = SliceSet.from_volume(image, labels, index, config, soft=train.soft_labels)
    reports, stopped = fit(
        model, data, train, callback, cancel, clock=lambda: time.perf_counter() - started, first_step_free=True
    )
    notes += _slow_step_notes(reports, train.time_budget)
    scores: dict[str, float] = {}
    if train.choose_answer and reports and stopped != "cancelled":  # short runs keep the sum (training/answer.py)
        config, scores = choose_answer(model, data)
    return TrainResult(model.cpu(), config, reports, stopped, index, notes, scores)


def finetune_to_checkpoint(
    image: np.ndarray,
    labels: np.ndarray,
    out: str | os.PathLike[str],
    *,
    config: ModelConfig | None = None,
    init: str | Path | None = None,
    train: TrainConfig | None = None,
    slices: list[int] | None = None,
    class_names: dict[int, str] | None = None,
    callback: Callable[[StepReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> TrainResult:
    """Fine-tune (:func:`finetune`) and save the model to ``out`` atomically; ``result.path`` says where.

    Args:
        class_names: label -> name of the painting (a file's header or sidecar, a layer's names); they
            name the classes of a model whose config has none.

    Raises:
        Cancelled: the run was cancelled; nothing is written.
    """
    result = finetune(
        image, labels, config=config, init=init, train=train, slices=slices, callback=callback, cancel=cancel
    )
    if result.stopped == "cancelled":
        raise Cancelled("fine-tune cancelled")
    if class_names and result.config.class_names is None:
        n = result.config.num_classes
        names = [class_names.get(i, "background" if i == 0 else f"class {i}") for i in range(n)]
        result.config = replace(result.config, class_names=names)
    last = result.reports[-1] if result.reports else None
    result.path = save_checkpoint(
        out,
        result.model,
        result.config,
        slices=[int(s) for s in result.slices],
        steps=len(result.reports),
        stopped=result.stopped,
        final_loss=last.loss if last else None,
        answers=result.answers,
    )
    return result
