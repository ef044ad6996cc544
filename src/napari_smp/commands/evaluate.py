"""``napari-smp evaluate``: Dice and surface distances of a prediction against a ground truth."""

from __future__ import annotations

import argparse

from ._common import check_output

__all__ = ["run_evaluate"]


def run_evaluate(args: argparse.Namespace) -> int:
    from ..io import read_labels
    from ..io.atomic import atomic_write_text
    from ..metrics import evaluate_labels

    for out, suffix in ((args.json, ".json"), (args.csv, ".csv")):
        check_output(out, args.overwrite, args.pred, args.gt, suffixes=(suffix,), what=f"--{suffix[1:]}")
    if args.json is not None and args.csv is not None and args.json.resolve() == args.csv.resolve():
        raise ValueError("--json and --csv name the same file")
    pred, pmeta = read_labels(args.pred)
    gt, gmeta = read_labels(args.gt)
    if pred.shape != gt.shape:
        raise ValueError(
            f"PRED {args.pred} has shape {pred.shape} but GT {args.gt} has shape {gt.shape} "
            "(after reorientation to RAS); they must share one grid"
        )
    if not pmeta.same_grid(gmeta, atol=1e-2):
        raise ValueError(
            f"PRED {args.pred} and GT {args.gt} are on different voxel grids "
            f"(spacing {pmeta.spacing} vs {gmeta.spacing}, origin {pmeta.origin} vs {gmeta.origin})"
        )
    names = gmeta.class_names or pmeta.class_names
    report = evaluate_labels(pred, gt, gmeta.spacing, convention=args.convention, class_names=names)
    print(report.format_table())
    if args.json:
        atomic_write_text(args.json, report.to_json())
    if args.csv:
        atomic_write_text(args.csv, report.to_csv())
    return 0
