"""Self-supervised pre-training of the lite network's encoder on unlabelled volumes: SuperCL or MACL.

One step: sample slices from all volumes -> four views -> objective -> SGD step, driven by the one
training loop (``training.loop.run_steps``) with a cosine learning rate that reaches zero when either
the step count or the time budget runs out (research/pretraining.md §4.3: SGD, momentum 0.9, weight
decay 1e-5, lr 0.01). Superpixels are computed once, before the loop. The result is saved with
:func:`save_pretrained_result`; a fine-tune starts from it through ``engine.checkpoint.start_model``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...config import PRETRAIN_METHODS, ModelConfig, PretrainConfig
from ...model import build_model
from ..checkpoint import save_pretrained
from ..device import ThreadGovernor, autocast, autocast_dtype, resolve_device
from ..errors import EngineError
from ..training.loop import StepReport, cosine_lr, run_steps
from .data import SliceBank
from .heads import set_memory_frozen
from .macl import MACLObjective, macl_decoder_prefixes
from .supercl import SuperCLObjective

__all__ = ["PretrainResult", "pretrain", "check_settings", "save_pretrained_result"]


@dataclass
class PretrainResult:
    """A pre-trained network and how the run went.

    Attributes:
        model: the whole lite network; only the parts named by ``prefixes`` were trained.
        prefixes: state-dict prefixes that pre-training trained (what a fine-tune loads).
        reports: one per step; ``parts`` holds the objective's named terms.
        stopped: ``steps``, ``time`` or ``cancelled``.
        slices: number of slices trained on; ``volumes``: number of volumes they came from.
    """

    model: torch.nn.Module
    config: ModelConfig
    method: str
    reports: list[StepReport]
    stopped: str
    prefixes: list[str]
    slices: int = 0
    volumes: int = 0
    notes: list[str] = field(default_factory=list)


def check_settings(config: ModelConfig, settings: PretrainConfig) -> None:
    """Refuse settings that cannot run, before any data is read (raises :class:`EngineError`)."""
    if settings.method not in PRETRAIN_METHODS:
        raise EngineError(f"unknown pre-training method {settings.method!r}; choose supercl or macl")
    if config.preset != "lite":
        raise EngineError("pre-training is implemented for the lite preset only; use --preset lite")
    if settings.method == "macl" and config.img_size % 128:
        raise EngineError(
            f"MACL needs an input size divisible by 128 (its 1/4-size branch), got {config.img_size}"
        )
    if settings.steps < 1:
        raise EngineError(f"steps must be at least 1, got {settings.steps}")
    if settings.batch_size < 2:
        raise EngineError(f"the batch must hold at least 2 slices to contrast them, got {settings.batch_size}")
    if settings.time_budget is not None and settings.time_budget <= 0:
        raise EngineError(f"the time budget must be positive, got {settings.time_budget} s")


def pretrain(
    volumes: Sequence[np.ndarray],
    config: ModelConfig | None = None,
    settings: PretrainConfig | None = None,
    *,
    callback: Callable[[StepReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PretrainResult:
    """Pre-train the lite encoder (and for MACL the first decoder stages) on unlabelled volumes.

    Args:
        volumes: (Z, Y, X) intensity volumes; every non-empty axial slice is used.
        config: network and normalisation (lite preset); default ``ModelConfig()``.
        settings: method, steps, time budget, batch, learning rate, positives rule, device.
        callback: called with a ``StepReport`` after every step.
        cancel: polled before every step; True ends the run, keeping the last completed step.
    """
    config = config or ModelConfig()
    settings = settings or PretrainConfig()
    check_settings(config, settings)
    bank = SliceBank.from_volumes(volumes, config, settings.n_segments, superpixels=settings.method == "supercl")
    torch.manual_seed(settings.seed)
    dev = resolve_device(settings.device)
    threads = ThreadGovernor(settings.threads) if dev.type == "cpu" else None
    model = build_model(config).to(dev)
    channels = tuple(config.lite_width * 2**i for i in range(4))
    objective: torch.nn.Module
    if settings.method == "supercl":
        objective, prefixes = SuperCLObjective(channels, settings.position_threshold), ["encoder."]
    else:
        objective = MACLObjective(channels, settings.position_threshold)
        prefixes = ["encoder.", *macl_decoder_prefixes()]
    objective.to(dev)
    params = [*model.parameters(), *objective.parameters()]
    opt = torch.optim.SGD(params, lr=settings.lr, momentum=0.9, weight_decay=1e-5)
    dtype = autocast_dtype(dev, settings.amp)
    gen = torch.Generator().manual_seed(settings.seed)
    model.train()
    objective.train()
    set_memory_frozen(model)

    def loss_fn() -> tuple[torch.Tensor, dict[str, float]]:
        batch = bank.sample(settings.batch_size, gen, dev)
        with autocast(dev, dtype):
            losses = objective(model, batch, gen)
        return losses["total"], {k: float(v.detach()) for k, v in losses.items() if k != "total"}

    reports, stopped = run_steps(
        opt,
        loss_fn,
        lambda step, elapsed: cosine_lr(settings.lr, settings.steps, settings.time_budget, step, elapsed),
        settings.steps,
        settings.time_budget,
        callback=callback,
        cancel=cancel,
        first_step_free=True,
        threads=threads,
    )
    model.eval()
    return PretrainResult(model.cpu(), config, settings.method, reports, stopped, prefixes, len(bank), bank.volumes)


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
