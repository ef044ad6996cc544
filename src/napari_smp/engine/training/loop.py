"""The one training loop, shared by fine-tuning, full-dataset training and pre-training.

:func:`run_steps` is nanoGPT's loop with hooks: before every step it polls the cancel flag and the
time budget, sets the learning rate, takes one optimiser step on the loss the caller's ``loss_fn``
gives, lets the caller advance its own state (``after_step``: the W-LD memory step) and reports. What
a step computes belongs to the caller: :func:`fit` (segmentation: batch -> augment -> forward ->
deep-supervision loss) here, ``pretraining.run.pretrain`` (contrastive objectives). Progress and
cancellation go through plain callables; nothing here knows Qt.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ...config import ModelConfig, TrainConfig
from ..device import ThreadGovernor, autocast, autocast_dtype
from ..errors import EngineError
from .augment import augment_batch
from .losses import deep_supervision_loss
from .slice_set import SliceSet

__all__ = [
    "StepReport",
    "run_steps",
    "fit",
    "default_supervision",
    "scheduled_lr",
    "cosine_lr",
]


@dataclass
class StepReport:
    """What the loop tells its callbacks after every optimiser step (the widgets plot these).

    Attributes:
        k: the W-LD update range; None for a model without a memory bank (and in pre-training).
        parts: the loss's named terms, when the objective has several (pre-training).
    """

    step: int
    loss: float
    lr: float
    elapsed: float
    k: int | None = None
    warming_up: bool = False
    parts: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """``loss 0.123, K 43`` (K left out when there is no memory bank)."""
        return f"loss {self.loss:.3f}" + ("" if self.k is None else f", K {self.k}")


def run_steps(
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[], tuple[torch.Tensor, dict[str, float]]],
    lr_at: Callable[[int, float], float],
    steps: int,
    time_budget: float | None = None,
    *,
    after_step: Callable[[float], dict[str, Any]] | None = None,
    reduce_loss: Callable[[float], float] | None = None,
    callback: Callable[[StepReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    clock: Callable[[], float] | None = None,
    first_step_free: bool = False,
    threads: ThreadGovernor | None = None,
) -> tuple[list[StepReport], str]:
    """Take optimiser steps until ``steps`` are done, ``time_budget`` seconds have passed, or a cancel.

    Args:
        loss_fn: computes one step's loss (a scalar with a graph) and its named parts.
        lr_at: learning rate of step ``step`` (1-based) started ``elapsed`` seconds into the run.
        after_step: called with the step's (reduced) loss after the optimiser step; its ``k`` and
            ``warming_up`` go into the report.
        reduce_loss: averages the loss across processes under DDP, so every rank sees one value.
        clock: seconds elapsed, read by the budget and the schedule (default: this process's wall
            time; under DDP one value agreed by all ranks, so they stop at the same step).
        first_step_free: the budget is not checked before the first step (at least one step is taken).
            Later steps are not begun when the previous step's duration would carry the run past it.
        threads: CPU runs: the thread count follows the load between steps (``device.ThreadGovernor``).

    Returns:
        The reports and why the run stopped: ``steps``, ``time`` or ``cancelled``. A cancel between two
        steps leaves the model as the last completed step made it.

    Raises:
        EngineError: the loss is not finite (the run diverged); nothing of that step is applied.
    """
    reports: list[StepReport] = []
    start, stopped = time.perf_counter(), "steps"
    clock = clock or (lambda: time.perf_counter() - start)
    last_step = 0.0  # seconds the previous step took: the next one is expected to take as long
    for step in range(1, steps + 1):
        if cancel is not None and cancel():
            stopped = "cancelled"
            break
        elapsed = clock()
        budget_checked = not (first_step_free and step == 1)
        # stop before a step that would end past the budget, not after it: the budget is a budget
        if time_budget is not None and budget_checked and elapsed + last_step >= time_budget:
            stopped = "time"
            break
        if threads is not None:
            threads.tick()
        began = time.perf_counter()
        lr = lr_at(step, elapsed)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss, parts = loss_fn()
        if not torch.isfinite(loss.detach()):
            raise EngineError(f"training diverged at step {step} (loss {float(loss)}); lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item() if reduce_loss is None else reduce_loss(loss.item())
        state = after_step(value) if after_step is not None else {}
        last_step = time.perf_counter() - began
        k = state.get("k")
        reports.append(
            StepReport(
                step,
                value,
                lr,
                time.perf_counter() - start,
                None if k is None else int(k),
                bool(state.get("warming_up", False)),
                parts,
            )
        )
        if callback is not None:
            callback(reports[-1])
    return reports, stopped


def scheduled_lr(train: TrainConfig, step: int, elapsed: float) -> float:
    """Learning rate for optimiser step ``step`` (1-based) started ``elapsed`` seconds into the run.

    ``poly`` decays ``train.lr`` by ``(1 - progress)^0.9`` where progress is the larger of the share of
    steps done and the share of the time budget used, so a run stopped by either ends on small steps
    (nnU-Net's rule); ``constant`` is the official code's choice.
    """
    if train.lr_schedule == "constant":
        return train.lr
    if train.lr_schedule != "poly":
        raise EngineError(f"unknown lr_schedule {train.lr_schedule!r}; choose 'poly' or 'constant'")
    progress = (step - 1) / train.step_cap
    if train.time_budget:
        progress = max(progress, elapsed / train.time_budget)
    return train.lr * (1.0 - min(progress, 1.0)) ** 0.9


def cosine_lr(lr: float, steps: int, time_budget: float | None, step: int, elapsed: float) -> float:
    """Cosine decay to zero over whichever limit binds first, so a time-boxed run still ends at 0.

    The first step always gets the full rate (pre-training's schedule, research/pretraining.md §4.3).
    """
    progress = (step - 1) / steps
    if time_budget and step > 1:
        progress = max(progress, elapsed / time_budget)
    return 0.5 * lr * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def fit(
    model: torch.nn.Module,
    data: SliceSet,
    train: TrainConfig,
    callback: Callable[[StepReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    reduce_loss: Callable[[float], float] | None = None,
    memory_owner: torch.nn.Module | None = None,
    clock: Callable[[], float] | None = None,
    first_step_free: bool = False,
) -> tuple[list[StepReport], str]:
    """Train a segmentation network on ``data`` for ``train.steps`` steps or ``train.time_budget`` seconds.

    One step: sample a batch -> augment -> forward (autocast where it pays) -> deep-supervision loss;
    after the optimiser step the memory banks advance (W-LD, ``SimMPNet.memory_step``).

    Args:
        reduce_loss: see :func:`run_steps` (DDP).
        memory_owner: the unwrapped model when ``model`` is a DDP wrapper.
        clock: see :func:`run_steps` (DDP; a fine-tune's budget counts from its set-up).
        first_step_free: see :func:`run_steps`.
    """
    device = next(model.parameters()).device
    threads = ThreadGovernor(train.threads) if device.type == "cpu" else None
    core = memory_owner or model
    supervision = train.deep_supervision or default_supervision(getattr(core, "config", None))
    dtype = autocast_dtype(device, train.amp)
    gen = torch.Generator().manual_seed(train.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    model.train()

    def loss_fn() -> tuple[torch.Tensor, dict[str, float]]:
        x, y = data.sample(train.batch_size, gen)
        x, y = x.to(device), y.to(device)
        if train.augment:
            x, y = augment_batch(x, y, gen, rot_flip=train.rot_flip)
        # a class-seeded bank fills its warm-up blocks from these labels (SimMPNet.labelled); nothing
        # else reads them, and the argmax of a batch of fractions costs 13 ms of a 390 ms step; an
        # unknown pixel (scribbles) reads as background there, a first-pass approximation
        labelled: contextlib.AbstractContextManager = contextlib.nullcontext()
        if getattr(core, "reads_labels", False):
            labelled = core.labelled(y.argmax(1) if y.is_floating_point() else y.clamp(min=0))
        with autocast(device, dtype), labelled:
            heads = model(x)
        loss = deep_supervision_loss(heads, y, train.ce_weight, train.dice_weight, mode=supervision)
        # a class-seeded bank's cluster loss (memory.prototype_loss), when it has one this step
        cluster = core.memory_loss() if hasattr(core, "memory_loss") else None
        if cluster is None:
            return loss, {}
        return loss + cluster, {"cluster_loss": float(cluster.detach())}

    after_step = getattr(core, "memory_step", None)
    reports, stopped = run_steps(
        opt,
        loss_fn,
        lambda step, elapsed: scheduled_lr(train, step, elapsed),
        train.step_cap,
        train.time_budget,
        after_step=after_step,
        reduce_loss=reduce_loss,
        callback=callback,
        cancel=cancel,
        clock=clock,
        first_step_free=first_step_free,
        threads=threads,
    )
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
