"""Pilot: ``napari_smp.engine.complete`` against its own sources and the copy/interpolation baselines.

For each case and k painted slices (chosen as in ``propagation_pilot.py``), one ``complete`` run gives
the propagation and the fine-tuned network; the network's probabilities are then pooled with the
propagation at several weights (0 = propagation alone, 1 = the network alone), so every row of one
(case, k) comes from the same fine-tune. Scores: mean foreground Dice on never-painted slices.

    .venv/bin/python benchmarks/complete_pilot.py --cases phantom dev_ct --ks 3 6 --budget 120

The CPU is named in the output; the seconds of a shared machine are indicative only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import cpu_model  # noqa: E402
from propagation_pilot import CASES, LESIONS, choose_painted, load, score  # noqa: E402

from napari_smp.config import InferConfig, TrainConfig  # noqa: E402
from napari_smp.engine.classes import ClassTable  # noqa: E402
from napari_smp.engine.completion import _align, complete, pool  # noqa: E402
from napari_smp.engine.inference import Predictor  # noqa: E402
from napari_smp.engine.inference.interpolation import interpolate, nearest_copy  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def run(case: str, k: int, budget: float, seed: int, threads: int) -> list[tuple[str, float]]:
    image, labels = load(case)
    painted = choose_painted(labels, k, case in LESIONS)
    painting = np.zeros_like(labels)
    painting[painted] = labels[painted]
    rows = [("nearest", score(nearest_copy(painting, painted).label_map(), labels, painted)),
            ("interp", score(interpolate(painting, painted).label_map(), labels, painted))]  # fmt: skip
    t = time.perf_counter()
    train = TrainConfig(time_budget=budget, seed=seed, threads=threads)
    done = complete(image, painting, train=train, slices=painted.tolist())
    wall = time.perf_counter() - t
    rows.append((f"complete ({done.sources}, {wall:.0f} s)", score(done.labels, labels, painted)))
    net = done.network
    if net is None:
        return rows
    probs = Predictor(net.model, net.config, InferConfig(threads=threads)).predict(image, probabilities=True)
    table = ClassTable.from_config(net.config)
    aligned = _align(done.propagation, table)
    for w in WEIGHTS:
        pred = np.stack([table.to_values(pool(aligned[:, z], probs.probabilities[:, z], w))
                         for z in range(image.shape[0])])  # fmt: skip
        pred[painted] = labels[painted]
        rows.append((f"pool w={w:g}" + (" (propagation)" if w == 0 else " (network)" if w == 1 else ""),
                     score(pred, labels, painted)))  # fmt: skip
    rows.append((f"network steps {len(net.reports)}, painted-slice Dice {max(net.answers.values()):.3f}", np.nan))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=CASES, default=["phantom", "dev_ct"])
    ap.add_argument("--ks", nargs="+", type=int, default=[3, 6])
    ap.add_argument("--budget", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    print(f"CPU: {cpu_model()}; budget {args.budget:g} s; seed {args.seed}; {args.threads} threads", flush=True)
    for case in args.cases:
        for k in args.ks:
            try:
                rows = run(case, k, args.budget, args.seed, args.threads)
            except FileNotFoundError as err:
                print(f"skipped: {err}")
                continue
            for name, value in rows:
                print(f"{case:8s} k={k}  {name:48s} {'' if np.isnan(value) else f'{value:.3f}'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
