"""Label efficiency: does self-supervised pre-training help a few-slice fine-tune of the ``lite`` preset?

Arms, all with the same fine-tune recipe, step budget, painted slices and seeds:
  * ``scratch``: random initialisation;
  * ``supercl`` / ``macl``: the encoder (MACL: + first decoder stages) pre-trained on unlabelled
    phantoms (seeds 0-3, labels never read), then :func:`init_from_pretrained`.
Every fine-tune runs the same number of optimiser steps, and every pre-training too (the CPU is shared
with other jobs, so a wall-clock budget would give the arms unequal work); the step counts are sized
to the task's budget on an idle machine (about 45 s per fine-tune, 60 s per pre-training) and the wall
times are reported. For 1, 2 and 4 painted slices (random foreground slices, drawn per seed, shared by
all arms) and three seeds, score the mean foreground Dice on the slices that were never painted.

    python benchmarks/label_efficiency.py --pretrain-steps 30 --steps 60 --methods supercl macl
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from napari_smp.config import ModelConfig, NormConfig, PretrainConfig, TrainConfig  # noqa: E402
from napari_smp.engine.checkpoint import init_from_pretrained
from napari_smp.engine.inference.predictor import Predictor  # noqa: E402
from napari_smp.engine.pretraining.run import pretrain, save_pretrained_result  # noqa: E402
from napari_smp.engine.training.finetune import short_run_warmup  # noqa: E402
from napari_smp.engine.training.loop import fit
from napari_smp.engine.training.slice_set import SliceSet
from napari_smp.io import make_phantom  # noqa: E402
from napari_smp.metrics import dice  # noqa: E402
from napari_smp.model import build_model  # noqa: E402

EXPECTED_STEPS = 100  # sets the memory warm-up of every fine-tune (10 steps), the same in every arm


def mean_foreground_dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean Dice (``metrics.dice``) over the foreground classes present in ``gt`` (Z, Y, X)."""
    return dice(pred, gt, labels=[int(c) for c in np.unique(gt) if c]).nanmean()


def painted_slices(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    occupied = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    rng = np.random.default_rng(1000 * count + seed)
    return np.sort(rng.choice(occupied, count, replace=False))


def finetune_arm(image, labels, index, config, init, steps, seed) -> tuple[float, float]:
    torch.manual_seed(seed)
    model = build_model(config) if init is None else init_from_pretrained(config, init)
    cfg = model.config
    data = SliceSet.from_volume(image, labels, index, cfg)
    train = TrainConfig(steps=steps, seed=seed, device="cpu")
    reports, _ = fit(model, data, train)
    wall = reports[-1].elapsed
    pred = Predictor(model, cfg).predict(image).labels
    rest = np.setdiff1d(np.arange(labels.shape[0]), index)
    return mean_foreground_dice(pred[rest], labels[rest]), wall


def write_report(body: str) -> None:
    try:
        from _report import write_section
    except ImportError:  # the metrics branch's writer is not merged: same format, minimal
        path = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        start, end = "<!-- section: Label efficiency -->", "<!-- end section: Label efficiency -->"
        how = "Reproduce: `python benchmarks/label_efficiency.py`."
        section = f"{start}\n## Label efficiency\n\n{how}\n\n{body}\n{end}"
        if start in text:
            text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
        else:
            text = text.rstrip("\n") + "\n\n" + section
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(".benchmarks.md.tmp")
        tmp.write_text(text.rstrip("\n") + "\n")
        tmp.replace(path)
        return
    write_section(
        "Label efficiency",
        body,
        packages=("torch", "scikit-image"),
        script="python benchmarks/label_efficiency.py",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrain-steps", type=int, default=30, help="about 60 s on an idle 2-core CPU")
    ap.add_argument(
        "--steps", type=int, default=60, help="steps per fine-tune, about 45 s on an idle 2-core CPU"
    )
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=["supercl", "macl"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/label_efficiency"))
    ap.add_argument("--reuse", action="store_true", help="reuse pre-trained checkpoints already in --work")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    args.work.mkdir(parents=True, exist_ok=True)
    target = make_phantom(seed=0)
    image, labels = target.image, target.labels
    base = ModelConfig(preset="lite", num_classes=int(labels.max()) + 1, norm=NormConfig(mode="ct"))
    config = short_run_warmup(base, EXPECTED_STEPS)
    unlabelled = [image] + [make_phantom(seed=s).image for s in (1, 2, 3)]
    inits: dict[str, Path | None] = {"scratch": None}
    pre_info = []
    for method in args.methods:
        ckpt = args.work / f"{method}.safetensors"
        if args.reuse and ckpt.exists():
            from napari_smp.engine.checkpoint import read_checkpoint_info

            extra = read_checkpoint_info(ckpt)["extra"]
            inits[method] = ckpt
            loss = f"loss {extra['first_loss']:.2f} -> {extra['final_loss']:.2f}"
            pre_info.append(f"{method}: {extra['steps']} steps, {loss}")
            print(pre_info[-1], flush=True)
            continue
        t = time.perf_counter()
        run = pretrain(
            unlabelled,
            replace(base, num_classes=2, class_names=None),
            PretrainConfig(method, steps=args.pretrain_steps, seed=0, device="cpu"),
        )
        inits[method] = save_pretrained_result(ckpt, run)
        first, last = run.reports[0].loss, run.reports[-1].loss
        pre_info.append(
            f"{method}: {len(run.reports)} steps in {time.perf_counter() - t:.0f} s, "
            f"loss {first:.2f} -> {last:.2f}"
        )
        print(pre_info[-1], flush=True)
    results: dict[tuple[str, int], list[float]] = {}
    walls: dict[str, list[float]] = {}
    for count in args.counts:
        for seed in args.seeds:
            index = painted_slices(labels, count, seed)
            for arm, init in inits.items():
                d, wall = finetune_arm(image, labels, index, config, init, args.steps, seed)
                results.setdefault((arm, count), []).append(d)
                walls.setdefault(arm, []).append(wall)
                print(f"{count} slices seed {seed} {arm:8s}: Dice {d:.3f} ({wall:.0f} s) "
                      f"slices {index.tolist()}", flush=True)
    arms = list(inits)
    lines = [
        "Phantom CT (48 x 160 x 160, 7 organs), `lite` preset (width 32, input 128), 2 CPU threads "
        f"shared with other jobs. Pre-training: {args.pretrain_steps} steps (batch 8) on 4 unlabelled "
        "phantoms (seeds 0-3; seed 0 is the target volume, its labels unused): "
        f"{'; '.join(pre_info)}. Fine-tune: {args.steps} steps per run "
        f"(batch 8, AdamW lr 1e-3, memory warm-up 10 steps); mean wall time per fine-tune: "
        + ", ".join(f"{a} {np.mean(walls[a]):.0f} s" for a in arms)
        + f". Score: mean foreground Dice on never-painted slices, mean +- std over seeds {args.seeds} "
        "(each seed draws its own painted slices, shared by all arms).",
        "",
        "| painted slices | "
        + " | ".join(arms)
        + " | "
        + " | ".join(f"{a} - scratch" for a in arms[1:])
        + " |",
        "|---" * (2 * len(arms)) + "|",
    ]
    for count in args.counts:
        cells = [f"{np.mean(results[(a, count)]):.3f} +- {np.std(results[(a, count)]):.3f}" for a in arms]
        diffs = [np.array(results[(a, count)]) - np.array(results[("scratch", count)]) for a in arms[1:]]
        cells += [f"{d.mean():+.3f} (min {d.min():+.3f}, max {d.max():+.3f})" for d in diffs]
        lines.append(f"| {count} | " + " | ".join(cells) + " |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_report(body)


if __name__ == "__main__":
    main()
