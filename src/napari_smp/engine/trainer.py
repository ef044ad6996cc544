"""Training: one short loop (``fit``) shared by the few-shot fine-tune and full-dataset training.

The loop is batch -> augment -> forward -> deep-supervision loss -> backward -> step -> W-LD memory
step -> report. Progress and cancellation go through plain callables; nothing here knows Qt.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..config import ModelConfig, TrainConfig
from .answer import choose_answer, describe_answer
from .augment import augment_batch
from .data import (
    annotated_slices,
    check_image,
    check_labels,
    normalize_volume,
    resize_labels,
    resize_slices,
    resize_soft_labels,
    slice_stack,
)
from .device import autocast, autocast_dtype, configure_threads, resolve_device
from .errors import EngineError
from .losses import deep_supervision_loss

__all__ = [
    "StepReport",
    "TrainResult",
    "SliceSet",
    "fit",
    "finetune",
    "default_supervision",
    "short_run_warmup",
    "scheduled_lr",
]


@dataclass
class StepReport:
    """What the loop tells its callbacks after every optimiser step (the widget plots these)."""

    step: int
    loss: float
    k: int | None  # the W-LD update range; None for a model built without its memory bank
    lr: float
    elapsed: float
    warming_up: bool

    def summary(self) -> str:
        """``loss 0.123, K 43`` (K left out when there is no memory bank)."""
        return f"loss {self.loss:.3f}" + ("" if self.k is None else f", K {self.k}")


@dataclass
class TrainResult:
    """A trained model and how the run went.

    Attributes:
        stopped: ``steps`` (all steps done), ``time`` (budget used) or ``cancelled``.
        slices: the annotated slice indices that were trained on.
        notes: things the user should know (e.g. classes of the checkpoint absent from the annotation).
        answers: lite: the Dice of each answer on the painted slices, by ``lite_prediction`` value;
            ``config`` keeps the better one (``engine/answer.choose_answer``).
    """

    model: torch.nn.Module
    config: ModelConfig
    reports: list[StepReport]
    stopped: str
    slices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    notes: list[str] = field(default_factory=list)
    answers: dict[str, float] = field(default_factory=dict)

    def answer(self) -> str:
        """Which answer the model kept and why (``engine/answer.describe_answer``); '' if none was chosen."""
        return describe_answer(self.config, self.answers)


def _fractions_u8(fractions: torch.Tensor) -> torch.Tensor:
    """(N, K, S, S) class fractions in [0, 1] -> uint8 in steps of 1/255 (``SliceSet.sample`` undoes it)."""
    return fractions.mul(255).round_().to(torch.uint8)


class SliceSet:
    """Annotated slices, normalised and resized once, sampled into batches.

    Args:
        images: (N, C, S, S) float32 in [0, 1].
        labels: (N, S, S) long class indices, or (N, K, S, S) class fractions (``resize_soft_labels``),
            kept in steps of 1/255 as uint8: an eighth of float32, and less than int64 indices for up
            to 8 classes, which matters when ``train`` holds a whole dataset's slices.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if len(images) == 0:
            raise EngineError("no annotated slice: paint at least one axial slice")
        self.images = images
        self.labels = _fractions_u8(labels) if labels.is_floating_point() else labels

    @classmethod
    def from_volume(
        cls, image: np.ndarray, labels: np.ndarray, index: np.ndarray, config: ModelConfig, soft: bool = False
    ) -> SliceSet:
        """The slices ``index`` of a volume; ``soft``: targets as class fractions (``TrainConfig.soft_labels``)."""
        x = slice_stack(normalize_volume(image, config.norm), index, config.slice_context, config.in_channels)
        x = resize_slices(x, config.img_size).contiguous()
        y = torch.from_numpy(np.ascontiguousarray(labels[index]))
        if not soft:
            return cls(x, resize_labels(y, config.img_size))
        # a few slices at a time: the one-hot map at the source size is K float32 images per slice
        step = 16
        parts = [
            _fractions_u8(resize_soft_labels(y[i : i + step], config.num_classes, config.img_size))
            for i in range(0, len(y), step)
        ]
        return cls(x, torch.cat(parts))

    @classmethod
    def concat(cls, parts: list[SliceSet]) -> SliceSet:
        return cls(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, S, S) images and their (B, S, S) labels or (B, K, S, S) float32 class fractions."""
        pick = torch.randint(0, len(self), (batch,), generator=generator)
        y = self.labels[pick]
        if y.dim() == 4:  # undo the 1/255 rounding's drift so that every pixel sums to 1 again
            y = y.float()
            y = y / y.sum(1, keepdim=True).clamp_(min=1.0)
        return self.images[pick], y


def scheduled_lr(train: TrainConfig, step: int, elapsed: float) -> float:
    """Learning rate for optimiser step ``step`` (1-based) started ``elapsed`` seconds into the run.

    ``poly`` decays ``train.lr`` by ``(1 - progress)^0.9`` where progress is the larger of the share of
    steps done and the share of the time budget used, so a run stopped by either ends on small steps.
    """
    if train.lr_schedule == "constant":
        return train.lr
    if train.lr_schedule != "poly":
        raise EngineError(f"unknown lr_schedule {train.lr_schedule!r}; choose 'poly' or 'constant'")
    progress = (step - 1) / train.step_cap
    if train.time_budget:
        progress = max(progress, elapsed / train.time_budget)
    return train.lr * (1.0 - min(progress, 1.0)) ** 0.9


def fit(
    model: torch.nn.Module,
    data: SliceSet,
    train: TrainConfig,
    callback: Callable[[StepReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    reduce_loss: Callable[[float], float] | None = None,
    memory_owner: torch.nn.Module | None = None,
    clock: Callable[[], float] | None = None,
) -> tuple[list[StepReport], str]:
    """Train ``model`` on ``data`` for ``train.steps`` steps or ``train.time_budget`` seconds.

    ``reduce_loss`` averages the loss across processes under DDP so every rank moves K alike;
    ``memory_owner`` is the unwrapped model when ``model`` is a DDP wrapper; ``clock`` gives the
    seconds elapsed that the budget and the learning-rate schedule read (default: this process's
    wall time; under DDP one value agreed by all ranks, so they stop at the same step with the same
    learning rate). A cancel between two steps leaves the model as the last completed step made it.
    """
    device = next(model.parameters()).device
    if device.type == "cpu":
        configure_threads(train.threads)
    core = memory_owner or model
    supervision = train.deep_supervision or default_supervision(getattr(core, "config", None))
    dtype = autocast_dtype(device, train.amp)
    gen = torch.Generator().manual_seed(train.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    model.train()
    reports: list[StepReport] = []
    start, stopped = time.perf_counter(), "steps"
    clock = clock or (lambda: time.perf_counter() - start)
    for step in range(1, train.step_cap + 1):
        if cancel is not None and cancel():
            stopped = "cancelled"
            break
        elapsed = clock()
        if train.time_budget is not None and elapsed >= train.time_budget:
            stopped = "time"
            break
        lr = scheduled_lr(train, step, elapsed)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = data.sample(train.batch_size, gen)
        x, y = x.to(device), y.to(device)
        if train.augment:
            x, y = augment_batch(x, y, gen, rot_flip=train.rot_flip)
        # a class-seeded bank fills its warm-up blocks from these labels (SimMPNet.labelled); nothing
        # else reads them, and the argmax of a batch of fractions costs 13 ms of a 390 ms step
        labelled: contextlib.AbstractContextManager = contextlib.nullcontext()
        if getattr(core, "reads_labels", False):
            labelled = core.labelled(y.argmax(1) if y.is_floating_point() else y)
        with autocast(device, dtype), labelled:
            heads = model(x)
        loss = deep_supervision_loss(heads, y, train.ce_weight, train.dice_weight, mode=supervision)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item() if reduce_loss is None else reduce_loss(loss.item())
        mem = core.memory_step(value)
        reports.append(
            StepReport(
                step,
                value,
                None if mem["k"] is None else int(mem["k"]),
                lr,
                time.perf_counter() - start,
                bool(mem["warming_up"]),
            )
        )
        if callback is not None:
            callback(reports[-1])
    model.eval()
    return reports, stopped


def default_supervision(config: ModelConfig | None) -> str:
    """The deep-supervision mode that matches what a network predicts (``TrainConfig.deep_supervision``).

    The paper's subsets for the paper preset; for lite, the weighted auxiliaries when it predicts from
    its finest head (the sum is then never the answer), else each head and their sum.
    """
    if config is None:  # a network without a ModelConfig (the benchmarks' U-Net): one head, one term
        return "heads"
    if config.preset == "paper":
        return "subsets"
    return "auxiliary" if config.lite_prediction == "finest" else "heads"


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
        labels: (Z, Y, X) label map; only annotated slices are used (module docstring).
        config: model settings when starting from scratch (``num_classes`` is raised to fit the labels).
        init: a checkpoint to start from (its config wins over ``config``), or a pre-trained encoder
            from ``pretrain`` (its architecture, with this run's classes and normalisation).
        train: steps, time budget, batch size, learning rate, device.
        slices: extra slice indices to count as annotated background.
    """
    train = train or TrainConfig()
    check_image(image)
    labels = check_labels(labels, image.shape)
    index = annotated_slices(labels, slices)
    if len(index) == 0:
        raise EngineError(
            "no annotated slice: paint at least one axial slice (or list empty ones with --slices)"
        )
    torch.manual_seed(train.seed)
    from .pretrain_init import init_from_pretrained, is_pretrained_checkpoint

    if init is not None and not is_pretrained_checkpoint(init):
        from .checkpoint import load_checkpoint

        model, config = load_checkpoint(init)
    else:
        # from scratch, or from a pre-trained encoder: the task (classes, bank schedule) is this run's
        config = config or ModelConfig()
        n_cls = max(config.num_classes, int(labels[index].max()) + 1)
        if n_cls != config.num_classes:
            config = replace(config, num_classes=n_cls, class_names=None)
        config = short_run_warmup(config, train.step_cap)
        if init is not None:
            model = init_from_pretrained(config, init)
            config = model.config
        else:
            from ..model import build_model

            model = build_model(config)
    notes = _check_classes(labels, index, config)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    model.to(resolve_device(train.device))
    data = SliceSet.from_volume(image, labels, index, config, soft=train.soft_labels)
    reports, stopped = fit(model, data, train, callback, cancel)
    scores: dict[str, float] = {}
    if train.choose_answer and reports and stopped != "cancelled":  # short runs keep the sum (engine/answer.py)
        config, scores = choose_answer(model, data)
    return TrainResult(model.cpu(), config, reports, stopped, index, notes, scores)
