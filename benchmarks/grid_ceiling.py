"""The best mean Dice any network can reach through a given model grid (input size S x S).

The predictor resizes every slice to the model size and the logits back before the argmax. Feeding it
perfect one-hot logits made from the ground truth at size S shows what that round trip alone costs:
thin structures (the cortical ribbon of a 1 mm brain) lose Dice that no training can win back.
Two kinds of training target are compared: class indices resized by nearest neighbour, and class
fractions (``resize_soft_labels``, ``TrainConfig.soft_labels``, the default since 2026-12-03).

    python benchmarks/grid_ceiling.py --sizes 128 160 192 256 --datasets devct phantom mni
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from _report import write_section  # noqa: E402
from fewshot import load_dataset, mean_foreground_dice  # noqa: E402

from napari_smp.engine.slices import resize_labels, resize_slices, resize_soft_labels  # noqa: E402

KINDS = ("nearest", "fractions")


def round_trip(labels: np.ndarray, size: int, kind: str = "nearest") -> np.ndarray:
    """Labels (Z, Y, X) -> the training target at (size, size) -> the predictor's resize back -> argmax.

    ``kind``: ``nearest`` (class indices, one-hot) or ``fractions`` (``resize_soft_labels``).
    """
    n = int(labels.max()) + 1
    out = np.empty_like(labels)
    for z0 in range(0, labels.shape[0], 16):  # a few slices at a time: bounded memory
        y = torch.from_numpy(labels[z0 : z0 + 16].astype(np.int64))
        if kind == "fractions":
            target = resize_soft_labels(y, n, size)
        else:
            target = F.one_hot(resize_labels(y, size), n).permute(0, 3, 1, 2).float()
        back = resize_slices(target, labels.shape[1:])  # the predictor's way back
        out[z0 : z0 + 16] = back.argmax(1).numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 160, 192, 256])
    ap.add_argument("--datasets", nargs="+", default=["devct", "phantom", "mni"])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows = []
    for ds in args.datasets:
        _, labels, _, desc = load_dataset(ds)
        for kind in KINDS:
            scores = [mean_foreground_dice(round_trip(labels, s, kind), labels) for s in args.sizes]
            rows.append((f"{ds}: {desc}", labels.shape[1:], kind, scores))
            line = " ".join(f"{s}: {v:.3f}" for s, v in zip(args.sizes, scores, strict=True))
            print(ds, kind, line, flush=True)
    head = " | ".join(f"{s} x {s}" for s in args.sizes)
    lines = [
        "Mean foreground Dice of the ground truth after the predictor's round trip through an S x S model "
        "grid (the training target at S x S, bilinear up, argmax): the ceiling for any network at that input "
        "size. Target *nearest*: class indices resized by nearest neighbour, one-hot; *fractions*: each "
        "class's share of every model pixel (the one-hot map resized as the image is, "
        "`TrainConfig.soft_labels`). The lite preset's default input is 128.",
        "",
        f"| dataset | slice (Y x X) | target | {head} |",
        "|---|---|---|" + "---|" * len(args.sizes),
    ]
    lines += [
        f"| {name} | {shape[0]} x {shape[1]} | {kind} | " + " | ".join(f"{v:.3f}" for v in scores) + " |"
        for name, shape, kind, scores in rows
    ]
    if not args.no_write:
        write_section("Model-grid ceiling", "\n".join(lines), packages=("torch",), script="benchmarks/grid_ceiling.py")


if __name__ == "__main__":
    main()
