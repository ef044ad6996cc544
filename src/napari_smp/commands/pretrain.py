"""``napari-smp pretrain``: SuperCL/MACL pre-training on unlabelled volumes."""

from __future__ import annotations

import argparse
from dataclasses import replace

from ..config import ModelConfig, NormConfig, PretrainConfig
from ._common import CHECKPOINT_SUFFIXES, check_device, check_output, progress
from .signals import received

__all__ = ["run_pretrain"]


def run_pretrain(args: argparse.Namespace) -> int:
    from ..engine.errors import Cancelled
    from ..engine.pretraining import check_settings, pretrain, save_pretrained_result
    from ..engine.volumes import guess_norm
    from ..io import read_volume

    check_output(args.out, args.overwrite, *args.volumes, suffixes=CHECKPOINT_SUFFIXES)
    config = ModelConfig(preset="lite", img_size=args.img_size, lite_width=args.width)
    settings = PretrainConfig(
        method=args.method,
        steps=args.steps,
        time_budget=args.time_budget,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        position_threshold=None if args.same_slice_only else 0.1,
    )
    check_settings(config, settings)
    volumes = [read_volume(path)[0] for path in args.volumes]
    norm = NormConfig(mode=args.norm) if args.norm else guess_norm(volumes[0])
    config = replace(config, norm=norm)
    check_device(args)
    with progress(args.steps, f"pre-training ({args.method})", "step") as bar:

        def report(r) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{r.loss:.3f}")

        result = pretrain(volumes, config, settings, callback=report, cancel=received)
    if result.stopped == "cancelled" and received():
        raise Cancelled("pre-training interrupted")  # cli.main: one line, exit code 130 or 143
    if not result.reports:
        raise ValueError("pre-training was cancelled before its first step; nothing was written")
    save_pretrained_result(args.out, result)
    first, last = result.reports[0], result.reports[-1]
    print(
        f"wrote {args.out}: {args.method} on {result.slices} slices of {result.volumes} volume(s), "
        f"{len(result.reports)} steps (stopped: {result.stopped}); "
        f"loss {first.loss:.3f} -> {last.loss:.3f}"
    )
    return 0
