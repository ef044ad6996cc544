"""Self-supervised pre-training of the lite network's encoder on unlabelled volumes: SuperCL or MACL.

The loop: sample slices from all volumes -> four views -> objective -> SGD step, with a cosine learning
rate that reaches zero when either the step count or the time budget runs out (research/pretraining.md
§4.3: SGD, momentum 0.9, weight decay 1e-5, lr 0.01). Superpixels are computed once, before the loop.
Progress and cancellation go through plain callables; nothing here knows Qt. The result is saved with
:func:`save_pretrained_result` and a fine-tune starts from it with
:func:`~napari_smp.engine.pretrain_init.init_from_pretrained`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..config import ModelConfig
from .device import autocast, autocast_dtype, configure_threads, resolve_device
from .errors import EngineError
from .pretrain_data import SliceBank
from .pretrain_heads import set_memory_frozen
from .pretrain_init import init_from_pretrained, is_pretrained_checkpoint, save_pretrained
from .pretrain_macl import MACLObjective, macl_decoder_prefixes
from .pretrain_supercl import SuperCLObjective

__all__ = [
    "METHODS",
    "PretrainReport",
    "PretrainResult",
    "pretrain",
    "check_settings",
    "save_pretrained_result",
    "init_from_pretrained",
    "is_pretrained_checkpoint",
]

METHODS = ("supercl", "macl")
Method = Literal["supercl", "macl"]


@dataclass
class PretrainReport:
    """What the loop reports after every step (the widget plots ``loss``)."""

    step: int
    loss: float
    parts: dict[str, float]
    lr: float
    elapsed: float


@dataclass
class PretrainResult:
    """A pre-trained network and how the run went.

    Attributes:
        model: the whole lite network; only the parts named by ``prefixes`` were trained.
        prefixes: state-dict prefixes that pre-training trained (what a fine-tune loads).
        stopped: ``steps``, ``time`` or ``cancelled``.
        slices: number of slices trained on; ``volumes``: number of volumes they came from.
    """

    model: torch.nn.Module
    config: ModelConfig
    method: str
    reports: list[PretrainReport]
    stopped: str
    prefixes: list[str]
    slices: int = 0
    volumes: int = 0
    notes: list[str] = field(default_factory=list)


def check_settings(
    config: ModelConfig, method: str, steps: int, batch_size: int, time_budget: float | None = None
) -> None:
    """Refuse settings that cannot run, before any data is read (raises :class:`EngineError`)."""
    if method not in METHODS:
        raise EngineError(f"unknown pre-training method {method!r}; choose supercl or macl")
    if config.preset != "lite":
        raise EngineError("pre-training is implemented for the lite preset only; use --preset lite")
    if method == "macl" and config.img_size % 128:
        raise EngineError(
            f"MACL needs an input size divisible by 128 (its 1/4-size branch), got {config.img_size}"
        )
    if steps < 1:
        raise EngineError(f"steps must be at least 1, got {steps}")
    if batch_size < 2:
        raise EngineError(f"the batch must hold at least 2 slices to contrast them, got {batch_size}")
    if time_budget is not None and time_budget <= 0:
        raise EngineError(f"the time budget must be positive, got {time_budget} s")


def pretrain(
    volumes: Sequence[np.ndarray],
    config: ModelConfig | None = None,
    method: Method = "supercl",
    *,
    steps: int = 500,
    time_budget: float | None = None,
    batch_size: int = 8,
    lr: float = 0.01,
    seed: int = 0,
    device: str = "auto",
    position_threshold: float | None = 0.1,
    n_segments: int | None = None,
    amp: bool = True,
    threads: int | None = None,
    callback: Callable[[PretrainReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PretrainResult:
    """Pre-train the lite encoder (and for MACL the first decoder stages) on unlabelled volumes.

    Args:
        volumes: (Z, Y, X) intensity volumes; every non-empty axial slice is used.
        config: network and normalisation (lite preset); default ``ModelConfig()``.
        method: ``supercl`` (encoder) or ``macl`` (encoder + first decoder stages; img_size % 128 == 0).
        steps: optimiser steps; ``time_budget`` (seconds) may stop earlier.
        batch_size: slices per step, drawn from all volumes.
        lr: initial SGD learning rate (the released scripts' 0.01), cosine-decayed to 0.
        position_threshold: slices closer than this in relative position are positives (None: the same
            slice only, for volumes that do not cover the same anatomy).
        n_segments: SLIC superpixels per slice (default: the papers' density for the input size).
        threads: CPU threads (default: every core, or ``$NAPARI_SMP_THREADS``; the widget leaves one free).
        callback: called with a :class:`PretrainReport` after every step.
        cancel: polled before every step; True ends the run, keeping the last completed step.
    """
    config = config or ModelConfig()
    check_settings(config, method, steps, batch_size, time_budget)
    from ..model import build_model

    bank = SliceBank.from_volumes(volumes, config, n_segments, superpixels=method == "supercl")
    torch.manual_seed(seed)
    dev = resolve_device(device)
    if dev.type == "cpu":
        configure_threads(threads)
    model = build_model(config).to(dev)
    channels = tuple(config.lite_width * 2**i for i in range(4))
    objective: torch.nn.Module
    if method == "supercl":
        objective, prefixes = SuperCLObjective(channels, position_threshold), ["encoder."]
    else:
        objective, prefixes = (
            MACLObjective(channels, position_threshold),
            ["encoder.", *macl_decoder_prefixes()],
        )
    objective.to(dev)
    params = [*model.parameters(), *objective.parameters()]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-5)
    dtype = autocast_dtype(dev, amp)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    objective.train()
    set_memory_frozen(model)
    reports: list[PretrainReport] = []
    start, stopped = time.perf_counter(), "steps"
    for step in range(1, steps + 1):
        if cancel is not None and cancel():
            stopped = "cancelled"
            break
        elapsed = time.perf_counter() - start
        if time_budget is not None and step > 1 and elapsed >= time_budget:  # at least one step
            stopped = "time"
            break
        # cosine over whichever limit binds first, so a time-boxed run still ends at lr 0
        progress = (step - 1) / steps
        if time_budget and step > 1:
            progress = max(progress, elapsed / time_budget)
        step_lr = 0.5 * lr * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        for group in opt.param_groups:
            group["lr"] = step_lr
        batch = bank.sample(batch_size, gen, dev)
        with autocast(dev, dtype):
            losses = objective(model, batch, gen)
        total = losses["total"]
        if not torch.isfinite(total):
            raise EngineError(
                f"pre-training diverged at step {step} (loss {float(total)}); lower the learning rate"
            )
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        parts = {k: float(v.detach()) for k, v in losses.items() if k != "total"}
        reports.append(
            PretrainReport(step, float(total.detach()), parts, step_lr, time.perf_counter() - start)
        )
        if callback is not None:
            callback(reports[-1])
    model.eval()
    return PretrainResult(model.cpu(), config, method, reports, stopped, prefixes, len(bank), bank.volumes)


def save_pretrained_result(path: str | os.PathLike[str], result: PretrainResult) -> Path:
    """Write ``result`` as a pre-trained checkpoint that ``finetune --init`` accepts."""
    last = result.reports[-1] if result.reports else None
    return save_pretrained(
        path,
        result.model,
        result.config,
        result.method,
        result.prefixes,
        steps=len(result.reports),
        stopped=result.stopped,
        slices=result.slices,
        volumes=result.volumes,
        final_loss=last.loss if last else None,
        first_loss=result.reports[0].loss if result.reports else None,
    )
