"""Correction rounds of the effort benchmark (issue 29): ``effort.py --rounds N``.

From k painted slices, N rounds in each of which a simulated annotator paints the ground truth of one
more axial slice, chosen by a policy:

* ``suggest``: the product's suggestion (``Completion.suggestion`` of propagation + intensity on the
  painting so far: the slice with the most expected wrong voxels);
* ``reduction``: a variant tried and rejected (docs/experiments/2026-12-07-scribble-fill-suggestion-start.md):
  the slice whose painting removes the most expected wrong voxels over the volume, each slice keeping
  ``d'/d`` of its expected errors when its distance to the nearest painted slice falls from d to d';
* ``worst``: the unpainted slice where propagation + intensity is worst against the ground truth (an
  oracle: what a user who sees every error would pick);
* ``evenly``: the middle of the largest gap between the painted slices and the labelled range's ends.

After every round each method refills the volume from the same painted slices: the peers start again
from scratch, ``complete`` goes on from its last model and its last result as the Refine button does
(``init`` + ``previous``, ``REFINE_STEPS`` / ``REFINE_BUDGET``), so its seconds are a correction's. One
JSON line per (case, k, seed, policy, round, method): Dice on the slices never painted in that round, Dice
on the whole volume (painted slices included, as a user's result is), seconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["POLICIES", "run_rounds", "next_slice", "reduction", "report_rounds"]

POLICIES = ("suggest", "reduction", "worst", "evenly")


def evenly(labels: np.ndarray, painted: list[int]) -> int:
    """The middle of the largest gap between painted slices and the labelled range's ends."""
    z = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    points = sorted(set(painted) | {int(z.min()) - 1, int(z.max()) + 1})
    _, a, b = max((b - a, a, b) for a, b in zip(points[:-1], points[1:], strict=True))
    return (a + b) // 2


def worst(result: np.ndarray, labels: np.ndarray, painted: list[int], score: Any) -> int:
    """The unpainted slice of the labelled range where ``result`` scores lowest against ``labels``."""
    z = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    candidates = [s for s in range(int(z.min()), int(z.max()) + 1) if s not in painted]
    dices = [score(result, labels, np.array([s])) for s in candidates]
    dices = [d if d == d else 1.0 for d in dices]  # a slice with nothing to score is not the worst
    return candidates[int(np.argmin(dices))]


def reduction(probabilities: np.ndarray, painted: list[int]) -> int:
    """The ``reduction`` policy: the unpainted slice whose painting removes the most expected errors,
    ``sum_s errors[s] (1 - d'(s) / d(s))`` (d: a slice's distance to the nearest painted slice)."""
    from napari_smp.engine.inference.suggest import slice_uncertainty

    errors, _ = slice_uncertainty(probabilities)
    z = np.arange(errors.size)
    d = np.abs(z[:, None] - np.asarray(painted)[None, :]).min(axis=1).astype(np.float64)
    after = np.minimum(d[None, :], np.abs(z[:, None] - z[None, :]))
    gain = np.divide(d[None, :] - after, d[None, :], out=np.zeros(after.shape), where=d[None, :] > 0)
    removed = gain @ errors
    removed[painted] = -1.0
    return int(np.argmax(removed))


def next_slice(policy: str, labels: np.ndarray, guide: Any, painted: list[int], score: Any) -> int:
    """The slice the simulated annotator paints next; ``guide``: the propagation + intensity completion."""
    if policy == "suggest":
        return guide.suggestion.slice
    if policy == "reduction":
        return reduction(guide.propagation.probabilities, painted)
    if policy == "worst":
        return worst(guide.labels, labels, painted, score)
    return evenly(labels, painted)


class _Corrections:
    """``complete`` as a user runs it: a first run for the budget, then Refine after every round."""

    def __init__(self, seed: int, budget: float) -> None:
        self.seed, self.budget = seed, budget
        self.folder: Path | None = None  # its models, made on the first call and removed by close()
        self.model: Path | None = None
        self.last: Any = None

    def __call__(self, image: np.ndarray, painting: np.ndarray, painted: np.ndarray) -> tuple[np.ndarray, dict]:
        from napari_smp.config import TrainConfig
        from napari_smp.engine import complete
        from napari_smp.engine.finetune_settings import REFINE_BUDGET, REFINE_STEPS

        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="effort-rounds-"))
        warm = self.model is not None
        train = (TrainConfig(time_budget=REFINE_BUDGET, steps=REFINE_STEPS, seed=self.seed) if warm
                 else TrainConfig(time_budget=self.budget, seed=self.seed))  # fmt: skip
        out = self.folder / f"model{len(list(self.folder.iterdir()))}.safetensors"
        done = complete(image, painting, train=train, slices=painted.tolist(), model_out=out,
                        init=self.model if warm else None, previous=self.last if warm else None)  # fmt: skip
        if done.network is not None:  # the next round goes on from the newest model that was trained
            self.model = out
        self.last = done
        facts: dict = {"sources": done.sources, "steps": len(done.network.reports) if done.network else 0,
                       "correction": warm}  # fmt: skip
        return done.labels, facts

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def run_rounds(args: argparse.Namespace, fillers: dict, loaded: Any, choose_painted: Any, lesions: Any,
               score: Any, scored_slices: Any, cpu: str) -> None:
    """Every (case, start k, seed, policy): ``args.rounds`` rounds, every method refilling after each."""
    for case, image, labels in loaded(args.cases):
        every = np.arange(labels.shape[0])
        for k in args.ks:
            for seed in args.seeds:
                start = choose_painted(labels, k, case in lesions, seed).tolist()
                for policy in args.policies:
                    corrections = _Corrections(seed, args.budget)
                    try:
                        _rounds(args, fillers, image, labels, every, case, k, seed, policy, sorted(start),
                                corrections, score, scored_slices, cpu)
                    finally:
                        corrections.close()


def _rounds(args: argparse.Namespace, fillers: dict, image: np.ndarray, labels: np.ndarray, every: np.ndarray,
            case: str, k: int, seed: int, policy: str, painted: list[int], corrections: _Corrections, score: Any,
            scored_slices: Any, cpu: str) -> None:
    """One (case, k, seed, policy): the first painting and ``args.rounds`` corrections."""
    from napari_smp.engine import complete

    for round_ in range(args.rounds + 1):
        painting = np.zeros_like(labels)
        idx = np.array(painted)
        painting[idx] = labels[idx]
        keep = scored_slices(labels, idx)
        t = time.perf_counter()
        guide = complete(image, painting, network=False, slices=painted)
        guide_seconds = time.perf_counter() - t
        for method in args.methods:
            t = time.perf_counter()
            if method == "evidence":  # the guide is this method's result
                pred, facts, seconds = guide.labels, {}, guide_seconds
            else:
                filler = corrections if method == "complete" else fillers[method]
                args_ = (image, painting, idx) if method == "complete" else (image, painting, idx, seed, args.budget)
                pred, facts = filler(*args_)
                seconds = time.perf_counter() - t
            row = {"case": case, "k": k, "seed": seed, "policy": policy, "round": round_,
                   "method": method, "dice": score(pred, labels, keep),
                   "dice_all": score(pred, labels, every), "seconds": round(seconds, 2),
                   "painted": painted, "budget": args.budget, "cpu": cpu,
                   "date": time.strftime("%Y-%m-%d"), **facts}  # fmt: skip
            with args.results.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{case:8s} k={k} seed={seed} {policy:7s} round {round_} {method:10s} "
                  f"{row['dice']:.3f} / all {row['dice_all']:.3f} {seconds:6.1f} s", flush=True)
        if round_ < args.rounds:
            painted = sorted([*painted, next_slice(policy, labels, guide, painted, score)])


# --- the report: docs/benchmarks.md, section ROUNDS_SECTION ---------------------------------------------------

ROUNDS_SECTION = "Effort: correction rounds (where to paint next)"
_NAMES = {"nearest": "nearest copy", "interp": "SD interpolation", "mci": "ITK MCI",
          "evidence": "propagation + intensity", "complete": "complete (Refine after each round)",
          "propagation": "propagation", "unet": "MONAI U-Net", "rf": "random forest"}  # fmt: skip


def _newest(path: Path) -> dict[tuple, dict]:
    rows: dict[tuple, dict] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        rows[(r["case"], r["k"], r["seed"], r["policy"], r["round"], r["method"])] = r
    return rows


def _mean_std(values: list[float]) -> str:
    v = np.array(values, float)
    return f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}" if len(v) > 1 else f"{np.nanmean(v):.3f}"


def report_rounds(path: Path) -> None:
    """Whole-volume and never-painted Dice per policy and round (mean ± std over volumes and seeds)."""
    from _report import write_section

    rows = _newest(path)
    methods = [m for m in _NAMES if any(key[5] == m for key in rows)]
    rounds = sorted({key[4] for key in rows})
    body: list[str] = []
    any_row = next(iter(rows.values()))
    body.append(f"CPU: {any_row['cpu']}; start: k = {', '.join(str(k) for k in sorted({key[1] for key in rows}))} "
                "painted slices; each round the simulated annotator paints the ground truth of one more slice. "
                "Cells: mean ± std over volumes x seeds of the Dice on the **whole volume** (painted slices "
                "included, as the user's result is), then on the slices not painted in that round. Policies: "
                "*suggest* = the product's suggestion (the slice with the most expected wrong voxels), *reduction* = "
                "a variant tried and rejected (the most expected errors removed over the volume, neighbours "
                "counted by distance), *worst* = the slice propagation + intensity gets most "
                "wrong (an oracle control), *evenly* = the middle of the largest gap.\n")  # fmt: skip
    for m in methods:
        cases = sorted({key[0] for key in rows if key[5] == m})
        seeds = sorted({key[2] for key in rows if key[5] == m})
        body.append(f"**{_NAMES[m]}** ({', '.join(cases)}; seeds {', '.join(map(str, seeds))})\n")
        body.append("| policy | " + " | ".join(f"round {r}" for r in rounds) + " |")
        body.append("|---" * (len(rounds) + 1) + "|")
        for policy in POLICIES:
            cells = []
            for r in rounds:
                got = [v for key, v in rows.items() if key[3] == policy and key[4] == r and key[5] == m]
                cells.append(f"{_mean_std([v['dice_all'] for v in got])} / {np.nanmean([v['dice'] for v in got]):.3f}"
                             f" ({len(got)})" if got else "")  # fmt: skip
            body.append(f"| {policy} | " + " | ".join(cells) + " |")
        secs = [v["seconds"] for key, v in rows.items() if key[5] == m and key[4] > 0]
        if secs:
            body.append(f"\nSeconds per round after the first: median {np.median(secs):.1f}, max {max(secs):.1f}.")
        body.append("")
    write_section(ROUNDS_SECTION, "\n".join(body), packages=("numpy", "scipy", "torch", "scikit-image"),
                  script="python benchmarks/effort.py --rounds 4 --ks 2 ... ; python benchmarks/effort.py --report")
