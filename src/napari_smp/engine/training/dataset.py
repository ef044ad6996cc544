"""Full-dataset training on a Decathlon / nnU-Net folder, on one process or many under ``torchrun``.

Under ``torchrun`` every process runs this same code; PyTorch DistributedDataParallel averages the
gradients (NCCL on GPUs, gloo on CPUs). Each rank draws its own random batches from all training
slices (sampling with replacement, so no sampler sharding is needed). DDP broadcasts buffers from
rank 0 before every forward, so the memory banks of all ranks follow rank 0's bank; the loss that
drives K is averaged across ranks so K moves alike everywhere. Validation and checkpoints happen on
rank 0 only, on cases held out by case (``imagesTs`` is never read).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ...config import ModelConfig, TrainConfig
from ...io import DatasetCase, find_cases, read_labels, read_volume
from ...metrics import dice
from ...model import build_model
from ..checkpoint import save_checkpoint
from ..classes import ClassTable
from ..device import resolve_device
from ..errors import EngineError
from ..inference.predictor import Predictor
from ..volumes import annotated_slices, check_image, check_labels
from .finetune import short_run_warmup
from .loop import StepReport, fit
from .slice_set import SliceSet

__all__ = ["split_cases", "train_dataset", "TrainSummary"]


@dataclass
class TrainSummary:
    """How a dataset training run went: the best validation Dice and the step that reached it."""

    best_dice: float
    best_step: int
    steps: int
    stopped: str
    train_cases: list[str]
    val_cases: list[str]


def split_cases(cases: list[DatasetCase], val_fraction: float, seed: int) -> tuple[list, list]:
    """A held-out validation split chosen by case, reproducible with ``seed``."""
    if len(cases) < 2 or val_fraction <= 0:
        return cases, []
    order = np.random.default_rng(seed).permutation(len(cases))
    n_val = min(len(cases) - 1, max(1, round(val_fraction * len(cases))))
    val = sorted(order[:n_val].tolist())
    return [c for i, c in enumerate(cases) if i not in val], [cases[i] for i in val]


def _load_case(case: DatasetCase) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    image, meta = read_volume(case.image)
    labels, lmeta = read_labels(case.label)
    check_image(image, f"image of case {case.name}")
    if labels.shape == image.shape and not meta.same_grid(lmeta, atol=1e-2):
        raise EngineError(
            f"case {case.name}: the label map {case.label.name} is on another voxel grid than the image "
            f"(spacing {lmeta.spacing} vs {meta.spacing}, origin {lmeta.origin} vs {meta.origin})"
        )
    return image, check_labels(labels, image.shape, f"label map of case {case.name}"), meta.spacing


def _mean_foreground_dice(pred: np.ndarray, gt: np.ndarray, table: ClassTable) -> float:
    return float(dice(pred, gt, labels=list(table.values[1:])).nanmean())


def _init_distributed(train: TrainConfig) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, resolve_device(train.device)
    backend = "nccl" if torch.cuda.is_available() and train.device != "cpu" else "gloo"
    dist.init_process_group(backend)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if backend == "nccl" else torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(device)
    return dist.get_rank(), world, device


def train_dataset(
    root: str | Path,
    out: str | Path,
    config: ModelConfig,
    train: TrainConfig,
    callback: Callable[[StepReport], None] | None = None,
    log: Callable[[str], None] = print,
) -> TrainSummary:
    """Train on every labelled case of ``root`` and keep the checkpoint with the best validation Dice."""
    rank, world, device = _init_distributed(train)
    try:
        if rank == 0:
            backend = dist.get_backend() if world > 1 else "none"
            log(f"training on {world} process(es) (backend {backend}, device {device})")
        cases, names = find_cases(root)
        train_cases, val_cases = split_cases(cases, train.val_fraction, train.seed)
        loaded = [_load_case(c) for c in train_cases]
        # the classes: every value of the training cases and of dataset.json, kept as the user's values
        values = set().union(*(np.unique(lab).tolist() for _, lab, _ in loaded))
        table = ClassTable.build(values, names)
        config = short_run_warmup(table.configure(config), train.step_cap)
        data = SliceSet.concat(
            [
                SliceSet.from_volume(
                    img, lab, annotated_slices(lab), config, soft=train.soft_labels, to_index=table.to_index
                )
                for img, lab, _ in loaded
            ]
        )
        torch.manual_seed(train.seed)  # identical initial weights on every rank
        core = build_model(config).to(device)
        model = core
        if world > 1:
            model = torch.nn.parallel.DistributedDataParallel(
                core, device_ids=[device] if device.type == "cuda" else None
            )
        val = [_load_case(c) for c in val_cases] if rank == 0 else []
        best = {"dice": -1.0, "step": 0}
        start = time.perf_counter()

        def validate(step: int, loss: float) -> None:
            if val:
                predictor = Predictor(core, config)
                scores = [_mean_foreground_dice(predictor.predict(img).labels, lab, table) for img, lab, _ in val]
                score = float(np.nanmean(scores))
                core.train()
            else:
                score = -loss  # no held-out case: keep the lowest-loss model
            log(f"step {step}: loss {loss:.4f}  validation Dice {score:.4f}")
            if score > best["dice"]:
                best.update(dice=score, step=step)
                save_checkpoint(
                    out,
                    core,
                    config,
                    step=step,
                    val_dice=score,
                    train_cases=[c.name for c in train_cases],
                    val_cases=[c.name for c in val_cases],
                )

        def on_step(report: StepReport) -> None:
            if rank != 0:
                return
            if callback is not None:
                callback(report)
            if report.step % train.val_every == 0:
                validate(report.step, report.loss)

        def clock() -> float:
            # the budget and the learning rate read one time agreed by all ranks: a rank that stopped
            # alone would hang the next all-reduce, and different learning rates would split the weights
            elapsed = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
            if world > 1:
                dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
            return float(elapsed.item())

        def reduce(value: float) -> float:
            if world == 1:
                return value
            t = torch.tensor([value], dtype=torch.float64)
            dist.all_reduce(t)
            return float(t.item()) / world

        run = replace(train, seed=train.seed + rank)
        reports, stopped = fit(model, data, run, on_step, None, reduce, memory_owner=core, clock=clock)
        if rank == 0 and reports and reports[-1].step % train.val_every:
            validate(reports[-1].step, reports[-1].loss)  # the final state is a candidate too
        return TrainSummary(
            best["dice"],
            best["step"],
            len(reports),
            stopped,
            [c.name for c in train_cases],
            [c.name for c in val_cases],
        )
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
