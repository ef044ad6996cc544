"""``napari-smp segment``: a checkpoint's label map of a volume."""

from __future__ import annotations

import argparse

from ..config import InferConfig
from ._common import SEGMENT_SUFFIXES, check_output, clean, progress

__all__ = ["run_segment"]


def run_segment(args: argparse.Namespace) -> int:
    from ..engine.inference import Predictor
    from ..io import check_dicom_seg_output, read_volume, write_labels

    check_output(args.out, args.overwrite, args.image, args.checkpoint, suffixes=SEGMENT_SUFFIXES)
    volume, meta = read_volume(args.image)
    check_dicom_seg_output(args.out, meta)
    predictor = Predictor.from_checkpoint(
        args.checkpoint, InferConfig(device=args.device, batch_size=args.batch_size), args.require_device
    )
    with progress(volume.shape[0], "segmenting", "slice") as bar:
        result = predictor.predict(volume, meta.spacing, progress=lambda done, _: bar.update(done - bar.n))
    named = {v: n for v, n in predictor.classes.by_value.items() if v}
    labels = clean(args, result.labels, meta.spacing, named)
    write_labels(args.out, labels, meta, class_names=named)  # NRRD and DICOM SEG keep the names
    counts = {n: int((labels == v).sum()) for v, n in named.items()}
    print(f"wrote {args.out} ({volume.shape[0]} slices on {predictor.device}); voxels per class: {counts}")
    return 0
