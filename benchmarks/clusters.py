"""Purity of the memory bank's clusters after a default fine-tune with the bank (issue 30).

For each case and seed: paint k slices (``propagation_pilot.choose_painted``), fine-tune the default
lite network with its memory bank (``--steps`` optimiser steps, the demo's 150 by default, one
thread-pair), then, on the never-painted slices of the labelled z-range, body only:

- **seeded**: the class-seeded bank's own clusters (cluster c = class c), tied purity;
- **k-means**: k-means (k = number of classes) of the same module's features on the same slices (the
  paper's unseeded bank), majority-class purity, and how many classes its clusters stand for;
- **random**: the same k-means on the features of an untrained network of the same architecture;
- **network's answer**: the network's own segmentation read as clusters (class c's cluster = the
  pixels it labels c), tied purity on the same pixels;
- **cell oracle**: the module's resolution ceiling, the tied purity of a perfect classifier at its
  stride (each cell's similarity to cluster c = the true share of class c in it, brought to the image
  grid as the bank's similarities are).

``--cluster-loss W`` adds a run with the bank's cluster loss (``memory.prototype_loss = W``, tied writes
on). Rows are appended to benchmarks/results/clusters.jsonl as each case ends.

Features: ``--space phi`` (default; the bank's own space) or ``theta``. Definitions in
``napari_smp.engine.inference.cluster_purity``. A tied mean counts a class whose cluster claims
nothing as 0; a majority mean can be high with every cluster standing for background, hence the
"classes" column.

    .venv/bin/python benchmarks/clusters.py --cases phantom dev_ct --seeds 0 --steps 150 --write

The CPU is shared with other work here: no seconds are reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "scripts"))
sys.path.insert(0, str(_ROOT / "benchmarks"))

from _report import write_section  # noqa: E402
from propagation_pilot import choose_painted, load, loaded  # noqa: E402

from napari_smp.config import MemoryConfig, ModelConfig, TrainConfig  # noqa: E402
from napari_smp.engine.classes import ClassTable  # noqa: E402
from napari_smp.engine.inference import Predictor  # noqa: E402
from napari_smp.engine.inference.cluster_maps import (  # noqa: E402
    cell_mask,
    kmeans_prototypes,
    module_features,
    similarity_on_grid,
)
from napari_smp.engine.inference.cluster_purity import (  # noqa: E402
    body_mask,
    cluster_purity,
    grid_assignment,
    otsu_threshold,
)
from napari_smp.engine.training.finetune import finetune  # noqa: E402
from napari_smp.metrics.per_class import class_metrics  # noqa: E402
from napari_smp.model import build_model  # noqa: E402

PAINTED = {"phantom": 4, "dev_ct": 6, "mni": 4}


def cell_oracle(gt: np.ndarray, n_cls: int, grid: tuple[int, int], model_size: int, body: np.ndarray,
                present: np.ndarray) -> float:
    """The resolution ceiling of a module: tied purity if every feature cell's similarity to cluster c
    were the true share of class c among its pixels (a perfect classifier at the module's stride),
    brought to the image grid the way the bank's similarities are.

    Args:
        gt: (S, Y, X) compact class index; grid: the module's (h, w); model_size: the network's input
        side (slices are resized to it); body: (S, Y, X) bool; present: (n_cls,) bool.
    """
    import torch
    import torch.nn.functional as F

    onehot = F.one_hot(torch.from_numpy(gt).long(), n_cls).permute(0, 3, 1, 2).float()
    cells = F.adaptive_avg_pool2d(F.interpolate(onehot, size=(model_size, model_size), mode="area"), grid)
    up = F.interpolate(cells, size=gt.shape[1:], mode="bilinear", align_corners=False)
    return cluster_purity(up.argmax(1).numpy(), gt, n_cls, n_cls, body, tied=True).mean(present)


def purity_rows(pred: Predictor, rand: Predictor, image: np.ndarray, labels: np.ndarray, painted: np.ndarray,
                space: str, seed: int) -> list[dict]:
    """One row per module: seeded, k-means and random-feature purity on the never-painted slices."""
    z = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    slices = [int(s) for s in range(z.min(), z.max() + 1) if s not in set(painted.tolist())]
    body = body_mask(image[slices], otsu_threshold(image))
    # the model's compact class index; a value the painting never showed is left out of the body
    values = ClassTable.from_config(pred.config).values
    lookup = np.full(int(labels.max()) + 1, -1, dtype=np.int64)
    lookup[[v for v in values if v <= labels.max()]] = [i for i, v in enumerate(values) if v <= labels.max()]
    gt = lookup[labels[slices]]
    body &= gt >= 0
    gt = np.maximum(gt, 0)
    size = image.shape[1:]
    # the ceiling: the network's own answer read as clusters (class c's "cluster" = where it says c)
    answer = lookup[np.minimum(pred.predict(image).labels[slices], lookup.size - 1)]
    answer = np.maximum(answer, 0)
    whole = lookup[labels[slices]]
    fg = [c for c in range(1, int(whole.max()) + 1) if np.any(whole == c)]
    scores = class_metrics(answer, whole, labels=fg, distances=False)
    dice = float(np.mean([m.dice for m in scores.values()])) if fg else float("nan")
    rows = []
    for module in pred.memory_modules():
        feats = module_features(pred, image, module, slices, space=space)
        k = feats.prototypes.shape[0]
        n_cls = max(k, int(gt.max()) + 1)
        present = np.bincount(gt[body], minlength=n_cls)[:n_cls] > 0
        seeded = cluster_purity(grid_assignment(similarity_on_grid(feats.theta, feats.prototypes, size)),
                                gt, k, n_cls, body, tied=True)
        cells = cell_mask(body, tuple(feats.theta.shape[-2:]))
        km = kmeans_prototypes(feats.theta, k, seed, cells)
        kmt = cluster_purity(grid_assignment(similarity_on_grid(feats.theta, km, size)), gt, k, n_cls, body,
                             tied=False)
        rf = module_features(rand, image, module, slices, space=space)
        rk = kmeans_prototypes(rf.theta, k, seed, cells)
        rft = cluster_purity(grid_assignment(similarity_on_grid(rf.theta, rk, size)), gt, k, n_cls, body,
                             tied=False)
        network = cluster_purity(answer, gt, n_cls, n_cls, body, tied=True).mean(present)
        oracle = cell_oracle(gt, n_cls, tuple(feats.theta.shape[-2:]), pred.config.img_size, body, present)
        rows.append({"module": module, "seeded": seeded.mean(present), "seeded_bg": seeded.purity[0],
                     "network": network, "oracle": oracle, "dice": dice,
                     "kmeans": kmt.mean(), "kmeans_cov": kmt.covered(), "random": rft.mean(),
                     "random_cov": rft.covered(), "classes": int(present.sum())})
        print(f"  {module}: seeded {rows[-1]['seeded']:.3f} (network {network:.3f}, cell oracle {oracle:.3f})"
              f" | k-means {rows[-1]['kmeans']:.3f} "
              f"({kmt.covered()} classes) | random {rows[-1]['random']:.3f} ({rft.covered()})", flush=True)
    return rows


def run_case(case: str, seed: int, steps: int, space: str, threads: int, tied: bool = False,
             cluster_loss: float = 0.0, stages: tuple[int, ...] = (3, 4), momentum: float = 0.3) -> list[dict]:
    image, labels = load(case)
    painted = choose_painted(labels, PAINTED.get(case, 4), False)
    paint = np.zeros_like(labels)
    paint[painted] = labels[painted]
    memory = MemoryConfig(tied_writes=tied or cluster_loss > 0, prototype_loss=cluster_loss, write_momentum=momentum)
    res = finetune(image, paint, config=ModelConfig(use_memory=True, lite_memory_stages=stages, memory=memory),
                   train=TrainConfig(steps=steps, seed=seed, threads=threads))
    pred = Predictor(res.model, res.config)
    import torch

    torch.manual_seed(seed)
    rand = Predictor(build_model(res.config), res.config)
    ks = [r.k for r in res.reports if r.k is not None]
    print(f"{case} seed {seed}: {len(res.reports)} steps, painted {painted.tolist()}, K last {ks[-1:]}", flush=True)
    rows = purity_rows(pred, rand, image, labels, painted, space, seed)
    tag = f" (cluster loss {cluster_loss:g})" if cluster_loss > 0 else " (tied writes)" if tied else ""
    if stages != (3, 4) or momentum != 0.3:
        tag += f" (stages {','.join(map(str, stages))}, write momentum {momentum:g})"
    for r in rows:
        r.update(case=case + tag, seed=seed, seconds=round(res.reports[-1].elapsed, 1))
    return rows


def ceiling_table(cases: list[str], model_size: int = 128) -> str:
    """The cell oracle at every lite stride, per case, on the never-painted slices (no training)."""
    lines = ["| case | stride 4 (stage 1) | stride 8 (stage 2) | stride 16 (stage 3) | stride 32 (stage 4) |",
             "|---|---|---|---|---|"]
    for case, image, labels in loaded(cases):
        painted = set(choose_painted(labels, PAINTED.get(case, 4), False).tolist())
        values = np.unique(labels)
        lookup = np.zeros(int(labels.max()) + 1, dtype=np.int64)
        lookup[values] = np.arange(values.size)
        z = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
        slices = [int(s) for s in range(z.min(), z.max() + 1) if s not in painted]
        gt = lookup[labels[slices]]
        body = body_mask(image[slices], otsu_threshold(image))
        present = np.bincount(gt[body], minlength=values.size) > 0
        cells = [cell_oracle(gt, values.size, (model_size // s, model_size // s), model_size, body, present)
                 for s in (4, 8, 16, 32)]
        lines.append(f"| {case} {image.shape[1]}x{image.shape[2]} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def table(rows: list[dict], steps: int, space: str) -> str:
    lines = [
        f"Default lite network with its memory bank, fine-tuned {steps} steps on the painted slices; purity on "
        f"the never-painted slices of the labelled range, body only, features `{space}`. Seeded: the "
        "class-seeded bank's clusters, tied purity (a class whose cluster claims nothing counts 0). k-means "
        "and random: majority-class purity, with the number of classes their clusters stand for.",
        "",
        "| case | module | seeds | seeded | seeded background | network's answer | cell oracle "
        "| k-means (classes) | random features (classes) | classes present |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["case"], r["module"]) for r in rows}, key=lambda t: (t[0], t[1]))
    for case, module in keys:
        rs = [r for r in rows if r["case"] == case and r["module"] == module]

        def ms(key: str, rs: list[dict] = rs) -> str:
            if any(key not in r for r in rs):  # rows logged before the column existed
                return "-"
            v = np.array([r[key] for r in rs], dtype=float)
            return f"{v.mean():.3f}" + (f" ± {v.std():.3f}" if len(v) > 1 else "")

        cov = "/".join(str(r["kmeans_cov"]) for r in rs)
        rcov = "/".join(str(r["random_cov"]) for r in rs)
        lines.append(f"| {case} | {module} | {len(rs)} | {ms('seeded')} | {ms('seeded_bg')} | {ms('network')} "
                     f"| {ms('oracle')} | {ms('kmeans')} ({cov}) "
                     f"| {ms('random')} ({rcov}) | {rs[0]['classes']} |")
    return "\n".join(lines) + "\n"


def summary(rows: list[dict]) -> str:
    """Per case (and bank variant): the mean over modules of the bank's tied purity, mean ± spread
    over seeds, beside the network's own answer."""
    lines = ["| case | seeds | bank, mean over modules | best module | network's answer | network Dice |",
             "|---|---|---|---|---|---|"]
    for case in sorted({r["case"] for r in rows}):
        rs = [r for r in rows if r["case"] == case]
        seeds = sorted({r["seed"] for r in rs})
        per_seed = np.array([np.mean([r["seeded"] for r in rs if r["seed"] == sd]) for sd in seeds])
        net = np.array([next(r["network"] for r in rs if r["seed"] == sd) for sd in seeds])
        modules = sorted({r["module"] for r in rs})
        best = max(modules, key=lambda m: np.mean([r["seeded"] for r in rs if r["module"] == m]))
        best_v = np.mean([r["seeded"] for r in rs if r["module"] == best])
        dice = [next(r.get("dice") for r in rs if r["seed"] == sd) for sd in seeds]
        dice_s = "-" if None in dice else f"{np.mean(dice):.3f} ± {np.std(dice):.3f}"
        lines.append(f"| {case} | {len(seeds)} | {per_seed.mean():.3f} ± {per_seed.std():.3f} | {best} {best_v:.3f} "
                     f"| {net.mean():.3f} ± {net.std():.3f} | {dice_s} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=["phantom", "dev_ct"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--space", choices=("phi", "theta"), default="phi")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tied", action="store_true", help="also run with memory.tied_writes (W-LD writes by class)")
    ap.add_argument("--only-tied", action="store_true", help="run only with memory.tied_writes")
    ap.add_argument("--cluster-loss", type=float, default=0.0,
                    help="also run with memory.prototype_loss at this weight (tied writes on)")
    ap.add_argument("--stages", nargs="+", type=int, default=[3, 4],
                    help="lite stages with a bank in the --cluster-loss run (1 = stride 4)")
    ap.add_argument("--write-momentum", type=float, default=0.3, help="W-LD write momentum of the --cluster-loss run")
    ap.add_argument("--skip-default", action="store_true", help="run only the --cluster-loss variant")
    ap.add_argument("--ceiling", action="store_true",
                    help="only print the cell oracle of every stride per case (no training)")
    ap.add_argument("--from-log", action="store_true",
                    help="rebuild the tables from benchmarks/results/clusters.jsonl instead of running")
    ap.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    args = ap.parse_args()
    if args.ceiling:
        print(ceiling_table(args.cases))
        return
    rows: list[dict] = []
    if args.from_log:
        with open(_ROOT / "benchmarks" / "results" / "clusters.jsonl") as log:
            rows = [r for r in map(json.loads, log) if r["case"].split(" ")[0] in args.cases]
    for case in ([] if args.from_log else args.cases):
        for seed in args.seeds:
            try:
                for tied in ([] if args.skip_default else [True] if args.only_tied else
                             [False, True] if args.tied else [False]):
                    rows += run_case(case, seed, args.steps, args.space, args.threads, tied)
                if args.cluster_loss > 0:
                    rows += run_case(case, seed, args.steps, args.space, args.threads, True, args.cluster_loss,
                                     tuple(args.stages), args.write_momentum)
                with open(_ROOT / "benchmarks" / "results" / "clusters.jsonl", "a") as log:
                    for r in rows:
                        if r["case"].split(" ")[0] == case and r["seed"] == seed:
                            log.write(json.dumps({k: (float(v) if isinstance(v, np.floating) else v)
                                                  for k, v in r.items()}) + "\n")
            except FileNotFoundError as err:
                print(f"skipped: {err}", flush=True)
    md = (summary(rows) + "\n" + table(rows, args.steps, args.space) + "\nResolution ceiling (cell oracle: a "
          "perfect classifier at each stride of the 128-pixel model grid, brought to the image grid the same way; "
          "never-painted slices, body only):\n\n" + ceiling_table(args.cases))
    print(md)
    if args.write:
        write_section("Memory-bank clusters: purity", md, packages=("torch", "numpy", "scipy"),
                      script="python benchmarks/clusters.py " + " ".join(sys.argv[1:]).replace(" --write", ""))


if __name__ == "__main__":
    main()
