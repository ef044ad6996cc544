"""The ``napari-smp`` command line (the contract of ARCHITECTURE.md).

User mistakes end with one line on stderr and exit code 2, never a traceback and never a partly
written file; set ``NAPARI_SMP_DEBUG=1`` to see the traceback anyway.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from .commands.signals import Terminated, exit_code, listen, received
from .config import TrainConfig

__all__ = ["main", "build_parser"]


def _slices(text: str) -> list[int]:
    try:
        return [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes comma-separated integers, got {text!r}") from None


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (the contract of every user error here)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def _img_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        size = -1
    if size < 32 or size % 32:  # five stride-2 stages in both presets
        raise argparse.ArgumentTypeError(f"needs a positive multiple of 32 (128, 192, ...), got {text!r}")
    return size


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    p.add_argument(
        "--require-device",
        action="store_true",
        help="fail instead of falling back to the CPU when --device is not available",
    )


def _add_architecture(p: argparse.ArgumentParser, whose: str) -> None:
    """The settings of a new model: input side, and the memory-bank switch."""
    p.add_argument(
        "--img-size",
        type=_img_size,
        help=f"{whose} input side in pixels, a multiple of 32 (default: the preset's, lite 128, paper 256); "
        "slices are resized to it, so a larger side keeps thin structures at a higher cost per step",
    )
    p.add_argument(
        "--slice-context",
        type=int,
        choices=range(4),
        metavar="N",
        help="2.5D input: also feed N neighbouring slices on each side as channels (0-3; default 0, one "
        "slice: in our few-shot benchmark neighbours lowered the score; docs/method.md, 'Defaults and why')",
    )
    p.add_argument(
        "--memory",
        dest="use_memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="build the network with (--memory) or without (--no-memory) its DMW-LA modules and W-LD "
        "memory bank (default: the preset's: paper with, lite without, because at equal time the lite "
        "network did not score higher with it on average; docs/method.md, 'Defaults and why'; "
        "the Clusters views need a model with the bank)",
    )
    _add_cluster_bank(p)


def _add_cluster_bank(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cluster-bank",
        action="store_true",
        help="build the network with a memory bank laid out for the Clusters views: lite's bank at 1/4 "
        "(where organs show), class-tied W-LD writes and the cluster loss; its clusters then claim about "
        "what the network itself labels, at a cost in Dice and time (docs/method.md, 'Reading the clusters')",
    )


def _add_run(
    p: argparse.ArgumentParser,
    steps: int,
    lr: float,
    lr_help: str = "learning rate (AdamW)",
    supervised: bool = True,
) -> None:
    """The options every training command shares (``supervised``: also those of finetune and train)."""
    if supervised:  # the time budget governs when one is given
        p.add_argument(
            "--steps", type=int, help=f"most optimiser steps (default: no cap with --time-budget, else {steps})"
        )
        p.add_argument("--time-budget", type=float, help="train for this many seconds (then --steps only caps the run)")
        p.set_defaults(step_default=steps)
    else:
        p.add_argument("--steps", type=int, default=steps, help=f"optimiser steps (default {steps})")
        p.add_argument("--time-budget", type=float, help="stop after this many seconds")
    p.add_argument("--batch-size", type=int, default=8, help="slices per optimiser step")
    p.add_argument("--lr", type=float, default=lr, help=f"{lr_help} (default {lr:g})")
    if supervised:
        p.add_argument(
            "--lr-schedule",
            choices=("poly", "constant"),
            default="poly",
            help="poly: decay to 0 over the steps or the time budget (default); constant: the paper's",
        )
        p.add_argument(
            "--rot-flip",
            action="store_true",
            help="add the paper's right-angle rotations and mirror flips to the augmentation (off by default: "
            "they swap left and right organs)",
        )
        # the default since the flips went off; still accepted so scripts written for 0.1 keep running
        p.add_argument("--no-rot-flip", dest="rot_flip", action="store_false", help=argparse.SUPPRESS)
        p.add_argument(
            "--soft-labels",
            dest="soft_labels",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="train on each class's share of every model pixel (default), or with --no-soft-labels on "
            "labels resized by nearest neighbour, which drops thin structures of a fine grid "
            "(docs/method.md, 'Training')",
        )
    p.add_argument("--seed", type=int, default=0)


def _min_ml(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"takes a volume in mL of 0 or more, got {text!r}")
    return value


def _add_scribbles(p: argparse.ArgumentParser) -> None:
    """Scribble mode (issue 29): 0 = not annotated, a painted background label; only marks are trained on."""
    p.add_argument(
        "--scribbles",
        action="store_true",
        help="the painting is scribbles: 0 = not annotated, --background-label B = background; only marked "
        "pixels are trained on, in axial, coronal or sagittal strokes (default: whole painted axial slices)",
    )
    p.add_argument(
        "--background-label",
        type=int,
        metavar="B",
        help="with --scribbles: the label value painted as background (written as 0 in the outputs)",
    )


def _add_cleanup(p: argparse.ArgumentParser) -> None:
    """The optional clean-up of the written label map (engine/cleanup.py); off by default."""
    p.add_argument(
        "--largest-component",
        action="store_true",
        help="keep only the largest 3D connected piece of each class (removed voxels become background)",
    )
    p.add_argument(
        "--min-island-ml",
        type=_min_ml,
        metavar="ML",
        help="drop pieces of a class smaller than this volume in mL (a class's largest piece always stays)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="napari-smp",
        description="Similarity Memory Prior segmentation (Sim-MPNet) for CT/MR volumes.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("segment", help="segment a volume with a checkpoint")
    p.add_argument("image", type=Path, help="NIfTI/NRRD/MHA file or DICOM series folder")
    p.add_argument("--checkpoint", type=Path, required=True, help=".safetensors checkpoint")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="label map to write on the image's grid (.nii.gz, .nrrd, .mha; .dcm: a DICOM SEG for a DICOM series)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="slices per forward pass")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    _add_cleanup(p)
    _add_device(p)

    p = sub.add_parser(
        "complete",
        help="the main job: a painting (a few painted axial slices) -> a label map of the whole volume",
    )
    p.add_argument("image", type=Path, help="NIfTI/NRRD/MHA file or DICOM series folder")
    p.add_argument(
        "painted",
        type=Path,
        help="label map; slices with any label are painted (0 = background there; see --scribbles)",
    )
    p.add_argument("--out", type=Path, required=True, help="label map to write on the image's grid")
    p.add_argument("--model-out", type=Path, help="also save the fine-tuned model (.safetensors)")
    p.add_argument("--init", type=Path, help="checkpoint to start the network from (default: from scratch)")
    p.add_argument("--slices", type=_slices, help="empty slices to count as painted background, e.g. 3,17,40")
    p.add_argument(
        "--no-network",
        dest="network",
        action="store_false",
        help="propagation along the image alone: seconds, no training",
    )
    p.add_argument("--time-budget", type=float, default=180.0, help="seconds for everything (default 180)")
    _add_cluster_bank(p)
    p.add_argument(
        "--start",
        type=Path,
        help="an existing segmentation to correct: the painting's slices that differ from it are "
        "corrections, carried through it as far as its error goes; every other voxel is kept (seconds, "
        "no network)",
    )
    _add_scribbles(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace --out and --model-out if they exist")
    _add_cleanup(p)
    _add_device(p)

    p = sub.add_parser("finetune", help="train on the painted slices of one volume")
    p.add_argument("image", type=Path)
    p.add_argument("labels", type=Path, help="label map; slices with any label count as annotated")
    p.add_argument("--out", type=Path, required=True, help="checkpoint to write (.safetensors)")
    p.add_argument("--init", type=Path, help="checkpoint to start from (default: from scratch)")
    p.add_argument("--preset", choices=("lite", "paper"), default="lite")
    p.add_argument("--slices", type=_slices, help="extra slices to count as annotated background, e.g. 3,17,40")
    _add_scribbles(p)
    _add_architecture(p, "a new model's")
    _add_run(p, steps=300, lr=1e-3)
    p.add_argument(
        "--norm",
        choices=("ct", "percentile"),
        help="intensity normalisation (default: ct for CT-like HU ranges, else percentile)",
    )
    p.add_argument("--overwrite", action="store_true")
    _add_device(p)

    p = sub.add_parser("evaluate", help="Dice, HD95, HD and ASSD per class of PRED against GT")
    p.add_argument("pred", type=Path)
    p.add_argument("gt", type=Path)
    p.add_argument(
        "--convention",
        choices=("medpy", "monai"),
        default="medpy",
        help="HD95: medpy pools both directions (the paper's); monai takes the max of the two",
    )
    p.add_argument("--json", type=Path, help="also write the table as JSON")
    p.add_argument("--csv", type=Path, help="also write the table as CSV")
    p.add_argument("--overwrite", action="store_true", help="replace --json/--csv if they exist")

    p = sub.add_parser("train", help="train on a Decathlon/nnU-Net dataset folder (torchrun for several GPUs)")
    p.add_argument("dataset", type=Path, help="folder with imagesTr/, labelsTr/ and optional dataset.json")
    p.add_argument("--out", type=Path, required=True, help="checkpoint of the best validation Dice")
    p.add_argument("--preset", choices=("lite", "paper"), default="lite")
    _add_architecture(p, "the model's")
    _add_run(p, steps=1000, lr=1e-3)
    p.add_argument(
        "--val-fraction", type=float, default=TrainConfig.val_fraction, help="share of cases held out for validation"
    )
    p.add_argument("--val-every", type=int, default=TrainConfig.val_every, help="steps between validations")
    p.add_argument("--norm", choices=("ct", "percentile"), default="percentile")
    p.add_argument("--overwrite", action="store_true")
    _add_device(p)

    p = sub.add_parser("pretrain", help="self-supervised pre-training of the lite encoder on unlabelled scans")
    p.add_argument("volumes", type=Path, nargs="+", help="NIfTI/NRRD/MHA files or DICOM series folders")
    p.add_argument("--out", type=Path, required=True, help="pre-trained checkpoint to write (.safetensors)")
    p.add_argument(
        "--method",
        choices=("supercl", "macl"),
        default="supercl",
        help="supercl: encoder, superpixel pairs; macl: encoder + first decoder stages",
    )
    _add_run(p, steps=500, lr=0.01, lr_help="initial SGD learning rate, cosine-decayed", supervised=False)
    p.add_argument("--img-size", type=int, default=128, help="network input side (MACL: a multiple of 128)")
    p.add_argument("--width", type=int, default=32, help="channels of the lite encoder's first stage")
    p.add_argument(
        "--same-slice-only",
        action="store_true",
        help="positives are the two views of one slice only (volumes of different anatomy)",
    )
    p.add_argument(
        "--norm",
        choices=("ct", "percentile"),
        help="intensity normalisation (default: guessed from the first volume, as finetune does)",
    )
    p.add_argument("--overwrite", action="store_true")
    _add_device(p)

    p = sub.add_parser("clusters", help="the memory bank's clusters: figure (PNG, SVG), clusters.csv, K curve")
    p.add_argument("image", type=Path, help="NIfTI/NRRD/MHA file or DICOM series folder")
    p.add_argument("--checkpoint", type=Path, required=True, help="a model trained with its memory bank")
    p.add_argument("--labels", type=Path, help="a label map of IMAGE: the cluster x class table and purity")
    p.add_argument("--module", help="DMW-LA module, e.g. encoder.stage3.1 (default: the finest decoder bank)")
    p.add_argument("--slices", metavar="A:B", help="axial slices A to B inclusive (default: all)")
    p.add_argument(
        "--space",
        choices=("phi", "theta"),
        default="phi",
        help="features compared with the prototypes: phi, the bank's own (default), or theta, the read's queries",
    )
    p.add_argument("--out", type=Path, required=True, help="folder for clusters.png/.svg, clusters.csv, k_history.*")
    p.add_argument("--overwrite", action="store_true")
    _add_device(p)

    p = sub.add_parser("demo", help="the built-in example: phantom, sparse paint, fine-tune, segment, evaluate")
    p.add_argument("--out", type=Path, default=Path("demo_output"))
    p.add_argument("--steps", type=int, help="fine-tuning steps (default 150; about 65 s on 2 cores)")
    p.add_argument(
        "--time-budget", type=float, default=120.0, help="stop fine-tuning after this many seconds (default 120)"
    )
    p.add_argument("--gui", action="store_true", help="open napari with the results (needs a display)")
    _add_device(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # -h, or a usage mistake already reported in one line
        return int(done.code or 0)
    from . import commands
    from .engine.errors import Cancelled

    with listen():
        try:
            return getattr(commands, f"run_{args.command}")(args)
        except (KeyboardInterrupt, Cancelled) as stop:
            if isinstance(stop, Cancelled) and not received():
                raise
            what = "terminated" if isinstance(stop, Terminated) or exit_code() == 143 else "interrupted"
            print(f"napari-smp: {what}; nothing half-written was left behind", file=sys.stderr)
            return 143 if what == "terminated" else 130
        except (ValueError, OSError) as err:  # our errors subclass ValueError; OSError: unreadable paths
            if os.environ.get("NAPARI_SMP_DEBUG"):
                raise
            print(f"napari-smp {args.command}: error: {err}", file=sys.stderr)
            return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
