"""``napari-smp train``: a model trained on a dataset folder (``torchrun`` for several processes)."""

from __future__ import annotations

import argparse
import os

from ..config import ModelConfig, NormConfig
from ._common import CHECKPOINT_SUFFIXES, architecture, check_device, check_output, train_config

__all__ = ["run_train"]


def run_train(args: argparse.Namespace) -> int:
    from ..engine.training import train_dataset

    if int(os.environ.get("RANK", "0")) == 0:
        check_output(args.out, args.overwrite, suffixes=CHECKPOINT_SUFFIXES)
    check_device(args)
    config = architecture(args, ModelConfig(
        preset=args.preset,
        norm=NormConfig(mode=args.norm),
        img_size=args.img_size,
        slice_context=args.slice_context,
        use_memory=args.use_memory,
    ))
    train = train_config(args, val_fraction=args.val_fraction, val_every=args.val_every)
    summary = train_dataset(args.dataset, args.out, config, train)
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"trained {summary.steps} steps (stopped: {summary.stopped}) on {len(summary.train_cases)} cases; "
            f"best validation Dice {summary.best_dice:.4f} at step {summary.best_step} "
            f"({len(summary.val_cases)} held-out cases); wrote {args.out}"
        )
    return 0
