"""``napari-smp complete``: a painting completed into a whole label map (the main job)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..config import ModelConfig, TrainConfig
from ._common import (
    CHECKPOINT_SUFFIXES,
    SEGMENT_SUFFIXES,
    architecture,
    check_device,
    check_output,
    clean,
    progress,
    scribble_label,
)
from .signals import received

__all__ = ["run_complete"]


def run_complete(args: argparse.Namespace) -> int:
    from ..engine.classes import ClassTable
    from ..engine.completion import complete
    from ..engine.volumes import guess_norm
    from ..io import check_dicom_seg_output, read_labels, read_volume, write_labels

    if args.start is not None:
        return _correct(args)
    if args.cluster_bank and (args.init is not None or not args.network):
        raise ValueError("--cluster-bank builds a new network; it cannot go with --init (whose architecture is "
                         "kept) or --no-network")
    inputs = (args.image, args.painted, args.init)
    check_output(args.out, args.overwrite, *inputs, suffixes=SEGMENT_SUFFIXES)
    check_output(args.model_out, args.overwrite, *inputs, args.out, suffixes=CHECKPOINT_SUFFIXES, what="--model-out")
    background = scribble_label(args)
    image, meta = read_volume(args.image)
    check_dicom_seg_output(args.out, meta)
    painted, pmeta = read_labels(args.painted)
    _check_grid("painting", args.painted, painted, pmeta, args.image, image, meta)
    if background is not None:  # bad scribbles: one sentence before any work
        from ..engine.annotation import check_scribbles

        check_scribbles(painted, background)
    check_device(args)
    train = TrainConfig(time_budget=args.time_budget, seed=args.seed, device=args.device)
    config = architecture(args, ModelConfig(norm=guess_norm(image)))
    with progress(None, "completing", "step") as bar:

        def report(r) -> None:
            bar.update(1)
            bar.set_postfix_str(r.summary())

        done = complete(
            image,
            painted,
            config=config,
            init=args.init,
            train=train,
            class_names=pmeta.class_names,
            slices=args.slices,
            model_out=args.model_out,
            network=args.network,
            callback=report,
            background_label=background,
            cancel=received,  # a Ctrl-C that a library swallowed still stops the run
        )
    # scribbles: the background label is written as 0, so its name goes
    classes = {v: n for v, n in (pmeta.class_names or {}).items() if v != background}
    if done.network is not None:  # the model's table names every class it knows
        classes = {v: n for v, n in ClassTable.from_config(done.network.config).by_value.items() if v} | classes
    write_labels(args.out, clean(args, done.labels, meta.spacing, classes), meta, class_names=classes or None)
    for note in done.notes:
        print(f"note: {note}", file=sys.stderr)
    saved = f"; model {args.model_out}" if args.model_out is not None and done.network is not None else ""
    print(f"wrote {args.out}: {done.summary()}{saved}")
    if done.suggestion is not None:
        z = done.suggestion.slice
        at = float(meta.affine[2, 0] * z + meta.affine[2, 3])  # superior position of the slice (RAS+ world)
        print(f"next: {done.suggestion.describe(classes)}; array slice {z}, S = {at:.1f} mm")
    return 0


def _correct(args: argparse.Namespace) -> int:
    """``complete --start SEG``: corrections carried through an existing segmentation (no network)."""
    from ..engine.inference.correct_existing import correct_segmentation
    from ..io import check_dicom_seg_output, read_labels, read_volume, write_labels

    flags = (("--init", args.init), ("--model-out", args.model_out), ("--scribbles", args.scribbles),
             ("--cluster-bank", args.cluster_bank))
    for flag, given in flags:
        if given:
            raise ValueError(f"--start corrects a segmentation without a network or scribbles: drop {flag}")
    check_output(args.out, args.overwrite, args.image, args.painted, args.start, suffixes=SEGMENT_SUFFIXES)
    image, meta = read_volume(args.image)
    check_dicom_seg_output(args.out, meta)
    painted, pmeta = read_labels(args.painted)
    start, smeta = read_labels(args.start)
    _check_grid("painting", args.painted, painted, pmeta, args.image, image, meta)
    _check_grid("segmentation", args.start, start, smeta, args.image, image, meta)
    done = correct_segmentation(image, start, painted, background=args.slices, cancel=received)
    classes = (smeta.class_names or {}) | (pmeta.class_names or {})
    write_labels(args.out, clean(args, done.labels, meta.spacing, classes), meta, class_names=classes or None)
    print(f"wrote {args.out}: {done.summary()}")
    return 0


def _check_grid(what: str, path: object, data: Any, data_meta: Any, image_path: object, image: Any, meta: Any) -> None:
    """One sentence when a label map read from ``path`` is not on the image's grid."""
    if data.shape != image.shape or not meta.same_grid(data_meta, atol=1e-2):
        raise ValueError(f"the {what} {path} is not on the grid of {image_path}")
