"""``napari-smp clusters``: the memory bank's clusters as a figure, a table and K's curve."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import InferConfig
from ._common import progress

__all__ = ["run_clusters"]


def run_clusters(args: argparse.Namespace) -> int:
    """``napari-smp clusters``: the bank's clusters of one module as a figure, a table and K's curve."""
    from ..engine.checkpoint import read_checkpoint_info
    from ..engine.inference import Predictor
    from ..engine.inference.cluster_figure import (
        parse_slices,
        save_cluster_figure,
        save_k_curve,
        write_cluster_csv,
    )
    from ..engine.inference.cluster_report import cluster_report, default_module
    from ..engine.k_history import read_k_history
    from ..io import read_labels, read_volume

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    if not out.parent.is_dir():
        raise ValueError(f"the folder of {out} does not exist")
    names = ["clusters.png", "clusters.svg", "clusters.csv", "k_history.png", "k_history.svg"]
    taken = [n for n in names if (out / n).exists()]
    if taken and not args.overwrite:
        raise ValueError(f"{out / taken[0]} exists; pass --overwrite to replace it")
    volume, meta = read_volume(args.image)
    slices = parse_slices(args.slices, volume.shape[0])
    labels = None
    if args.labels is not None:
        labels, _ = read_labels(args.labels)
        if labels.shape != volume.shape:
            raise ValueError(f"--labels {args.labels} has shape {labels.shape}, the image {volume.shape}")
    info = read_checkpoint_info(args.checkpoint)
    predictor = Predictor.from_checkpoint(args.checkpoint, InferConfig(device=args.device))
    module = args.module or default_module(predictor.memory_modules())
    painted = info["extra"].get("slices")
    with progress(len(slices), f"clusters of {module}", "slice") as bar:
        report = cluster_report(
            predictor, volume, module, slices, None if labels is None else labels[slices.start : slices.stop],
            painted=painted, progress=lambda done, _: bar.update(done - bar.n), space=args.space,
        )
    out.mkdir(exist_ok=True)
    written = save_cluster_figure(report, volume, out / "clusters")
    written.append(write_cluster_csv(report, out / "clusters.csv"))
    history = read_k_history(info["extra"])
    memory = predictor.config.memory
    if history is not None:
        written += save_k_curve(history, memory.slots, out / "k_history", memory.warmup_steps)
    if report.warming_up:
        print("note: this bank never finished its warm-up; its clusters mean nothing yet", file=sys.stderr)
    if history is None:
        print("note: this checkpoint keeps no K history (written before it was recorded): no K curve",
              file=sys.stderr)
    print(f"{report.k} clusters of {module} on slices {slices.start}..{slices.stop - 1}: "
          f"{', '.join(str(p) for p in written)}")
    for split in report.purity:
        print(f"mean purity, {split} slices (body only): {report.mean_purity(split):.3f}")
    return 0
