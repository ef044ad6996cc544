"""Purity of the memory bank's clusters after a default fine-tune with the bank (issue 30).

For each case and seed: paint k slices (``propagation_pilot.choose_painted``), fine-tune the default
lite network with its memory bank (``--steps`` optimiser steps, the demo's 150 by default, one
thread-pair), then, on the never-painted slices of the labelled z-range, body only:

- **seeded**: the class-seeded bank's own clusters (cluster c = class c), tied purity;
- **k-means**: k-means (k = number of classes) of the same module's features on the same slices (the
  paper's unseeded bank), majority-class purity, and how many classes its clusters stand for;
- **random**: the same k-means on the features of an untrained network of the same architecture.

Features: ``--space phi`` (default; the bank's own space) or ``theta``. Definitions in
``napari_smp.engine.inference.cluster_purity``. A tied mean counts a class whose cluster claims
nothing as 0; a majority mean can be high with every cluster standing for background, hence the
"classes" column.

    .venv/bin/python benchmarks/clusters.py --cases phantom dev_ct --seeds 0 --steps 150 --write

The CPU is shared with other work here: no seconds are reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "scripts"))
sys.path.insert(0, str(_ROOT / "benchmarks"))

from _report import write_section  # noqa: E402
from propagation_pilot import choose_painted, load  # noqa: E402

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
from napari_smp.model import build_model  # noqa: E402

PAINTED = {"phantom": 4, "dev_ct": 6, "mni": 4}


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
        rows.append({"module": module, "seeded": seeded.mean(present), "seeded_bg": seeded.purity[0],
                     "kmeans": kmt.mean(), "kmeans_cov": kmt.covered(), "random": rft.mean(),
                     "random_cov": rft.covered(), "classes": int(present.sum())})
        print(f"  {module}: seeded {rows[-1]['seeded']:.3f} | k-means {rows[-1]['kmeans']:.3f} "
              f"({kmt.covered()} classes) | random {rows[-1]['random']:.3f} ({rft.covered()})", flush=True)
    return rows


def run_case(case: str, seed: int, steps: int, space: str, threads: int, tied: bool = False) -> list[dict]:
    image, labels = load(case)
    painted = choose_painted(labels, PAINTED.get(case, 4), False)
    paint = np.zeros_like(labels)
    paint[painted] = labels[painted]
    res = finetune(image, paint, config=ModelConfig(use_memory=True, memory=MemoryConfig(tied_writes=tied)),
                   train=TrainConfig(steps=steps, seed=seed, threads=threads))
    pred = Predictor(res.model, res.config)
    import torch

    torch.manual_seed(seed)
    rand = Predictor(build_model(res.config), res.config)
    ks = [r.k for r in res.reports if r.k is not None]
    print(f"{case} seed {seed}: {len(res.reports)} steps, painted {painted.tolist()}, K last {ks[-1:]}", flush=True)
    rows = purity_rows(pred, rand, image, labels, painted, space, seed)
    for r in rows:
        r.update(case=case + (" (tied writes)" if tied else ""), seed=seed)
    return rows


def table(rows: list[dict], steps: int, space: str) -> str:
    lines = [
        f"Default lite network with its memory bank, fine-tuned {steps} steps on the painted slices; purity on "
        f"the never-painted slices of the labelled range, body only, features `{space}`. Seeded: the "
        "class-seeded bank's clusters, tied purity (a class whose cluster claims nothing counts 0). k-means "
        "and random: majority-class purity, with the number of classes their clusters stand for.",
        "",
        "| case | module | seeds | seeded | seeded background | k-means (classes) "
        "| random features (classes) | classes present |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["case"], r["module"]) for r in rows}, key=lambda t: (t[0], t[1]))
    for case, module in keys:
        rs = [r for r in rows if r["case"] == case and r["module"] == module]

        def ms(key: str, rs: list[dict] = rs) -> str:
            v = np.array([r[key] for r in rs], dtype=float)
            return f"{v.mean():.3f}" + (f" ± {v.std():.3f}" if len(v) > 1 else "")

        cov = "/".join(str(r["kmeans_cov"]) for r in rs)
        rcov = "/".join(str(r["random_cov"]) for r in rs)
        lines.append(f"| {case} | {module} | {len(rs)} | {ms('seeded')} | {ms('seeded_bg')} | {ms('kmeans')} ({cov}) "
                     f"| {ms('random')} ({rcov}) | {rs[0]['classes']} |")
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
    ap.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    args = ap.parse_args()
    rows: list[dict] = []
    for case in args.cases:
        for seed in args.seeds:
            try:
                for tied in ([True] if args.only_tied else [False, True] if args.tied else [False]):
                    rows += run_case(case, seed, args.steps, args.space, args.threads, tied)
            except FileNotFoundError as err:
                print(f"skipped: {err}", flush=True)
    md = table(rows, args.steps, args.space)
    print(md)
    if args.write:
        write_section("Memory-bank clusters: purity", md, packages=("torch", "numpy", "scipy"),
                      script="python benchmarks/clusters.py " + " ".join(sys.argv[1:]).replace(" --write", ""))


if __name__ == "__main__":
    main()
