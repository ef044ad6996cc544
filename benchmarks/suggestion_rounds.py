"""Pilot: where to paint next. From k = 2 painted slices, 3 rounds each adding the ground truth of one slice.

Strategies: ``suggest`` (``Completion.suggestion``), ``ud`` (its expected errors times the distance to the
nearest painted slice), ``evenly`` (the middle of the largest gap, the labelled range's ends included).
Each round completes with ``complete(..., network=False)`` (propagation + intensity evidence). Prints, per
round, the Dice on the never-painted slices / on the whole volume.

    .venv/bin/python benchmarks/suggestion_rounds.py phantom,dev_ct,lung2,brain1

Results: docs/experiments/2026-12-07-suggestion-rounds.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from effort import choose_painted, score, scored_slices  # noqa: E402
from propagation_pilot import LESIONS, load  # noqa: E402

from napari_smp.engine import complete  # noqa: E402
from napari_smp.engine.completion import Completion  # noqa: E402
from napari_smp.engine.inference.suggest import slice_uncertainty  # noqa: E402

STRATEGIES = ("ud", "suggest", "evenly")


def fill(image: np.ndarray, labels: np.ndarray, painted: list[int]) -> Completion:
    painting = np.zeros_like(labels)
    painting[painted] = labels[painted]
    return complete(image, painting, network=False, slices=sorted(painted))


def evenly(labels: np.ndarray, painted: list[int]) -> int:
    """The middle of the largest gap between painted slices and the labelled range's ends."""
    z = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    points = sorted(set(painted) | {int(z.min()) - 1, int(z.max()) + 1})
    _, a, b = max((b - a, a, b) for a, b in zip(points[:-1], points[1:], strict=True))
    return (a + b) // 2


def next_slice(strategy: str, labels: np.ndarray, done: Completion, painted: list[int]) -> int:
    if strategy == "suggest":
        return done.suggestion.slice
    if strategy == "ud":
        errors, _ = slice_uncertainty(done.propagation.probabilities)
        return int(np.argmax(errors * done.propagation.distance))
    return evenly(labels, painted)


def main(cases: list[str]) -> None:
    for case in cases:
        image, labels = load(case)
        every = np.arange(labels.shape[0])
        for seed in (0, 1):
            start = choose_painted(labels, 2, case in LESIONS, seed).tolist()
            for strategy in STRATEGIES:
                painted = list(start)
                done = fill(image, labels, painted)
                scores = []
                for _round in range(4):
                    never = scored_slices(labels, np.array(sorted(painted)))
                    scores.append(f"{score(done.labels, labels, never):.3f}/{score(done.labels, labels, every):.3f}")
                    if _round == 3:
                        break
                    painted.append(next_slice(strategy, labels, done, painted))
                    done = fill(image, labels, painted)
                print(f"{case} s={seed} {strategy:8s} {' '.join(scores)} {painted[len(start):]}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1].split(","))
