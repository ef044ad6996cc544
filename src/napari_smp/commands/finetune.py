"""``napari-smp finetune``: a model fitted to a painting, saved as a checkpoint."""

from __future__ import annotations

import argparse
import sys

from ..config import UNCAPPED_STEPS, ModelConfig, NormConfig
from ._common import (
    CHECKPOINT_SUFFIXES,
    architecture,
    check_device,
    check_output,
    progress,
    scribble_label,
    train_config,
)
from .signals import received

__all__ = ["run_finetune"]


def run_finetune(args: argparse.Namespace) -> int:
    from ..engine.training import finetune
    from ..engine.volumes import guess_norm
    from ..io import read_labels, read_volume

    check_output(args.out, args.overwrite, args.image, args.labels, args.init, suffixes=CHECKPOINT_SUFFIXES)
    background = scribble_label(args)
    new_model_only = (args.img_size, args.use_memory, args.slice_context, args.cluster_bank or None)
    if args.init is not None and any(v is not None for v in new_model_only):
        raise ValueError(
            "--img-size, --slice-context, --memory/--no-memory and --cluster-bank set up a new model; "
            "a run from --init keeps the architecture it was built with"
        )
    image, meta = read_volume(args.image)
    labels, lmeta = read_labels(args.labels)
    if labels.shape != image.shape:
        raise ValueError(f"labels {args.labels} have shape {labels.shape} but image {args.image} has {image.shape}")
    if not meta.same_grid(lmeta, atol=1e-2):
        raise ValueError(f"labels {args.labels} and image {args.image} are on different voxel grids")
    if background is not None:
        from ..engine.annotation import check_scribbles

        check_scribbles(labels, background)
    norm = NormConfig(mode=args.norm) if args.norm else guess_norm(image)
    config = architecture(args, ModelConfig(
        preset=args.preset,
        norm=norm,
        img_size=args.img_size,
        slice_context=args.slice_context,
        use_memory=args.use_memory,
    ))
    train = train_config(args)
    check_device(args)
    with progress(None if train.step_cap == UNCAPPED_STEPS else train.step_cap, "fine-tuning", "step") as bar:

        def report(r) -> None:
            bar.update(1)
            bar.set_postfix_str(r.summary())

        result = finetune(
            image,
            labels,
            out=args.out,
            config=config,
            init=args.init,
            train=train,
            slices=args.slices,
            class_names=lmeta.class_names,
            callback=report,
            background_label=background,
            cancel=received,  # a Ctrl-C that a library swallowed still stops the run
        )
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    answer = f"; {result.answer()}" if result.answer() else ""
    print(
        f"wrote {args.out}: {result.summary()}{answer}"
        if result.reports
        else f"wrote {args.out} without training (stopped: {result.stopped})"
    )
    return 0
