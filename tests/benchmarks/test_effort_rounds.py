"""The correction rounds' simulated annotator: which slice each policy paints next (known answers)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from _effort_rounds import evenly, next_slice, worst


def _labels() -> np.ndarray:
    labels = np.zeros((12, 8, 8), np.uint8)
    labels[2:10, 2:6, 2:6] = 1  # labelled range: slices 2..9
    return labels


def _dice_on(pred: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> float:
    a, b = pred[keep] == 1, labels[keep] == 1
    return float(2 * (a & b).sum() / (a.sum() + b.sum())) if a.sum() + b.sum() else float("nan")


def test_evenly_takes_the_middle_of_the_largest_gap_the_range_ends_included():
    labels = _labels()
    assert evenly(labels, [3, 5]) == 7  # gaps: (1, 3), (3, 5), (5, 10): the last is largest
    assert evenly(labels, [4, 9]) == 6  # (4, 9) beats (1, 4) and (9, 10)


def test_worst_is_the_unpainted_slice_scored_lowest_and_suggest_follows_the_product():
    labels = _labels()
    pred = labels.copy()
    pred[6] = 0  # slice 6 missed entirely, slice 8 half
    pred[8, 2:4] = 0
    assert worst(pred, labels, [3, 5], _dice_on) == 6
    assert worst(pred, labels, [3, 6], _dice_on) == 8  # a painted slice is never chosen
    guide = SimpleNamespace(labels=pred, suggestion=SimpleNamespace(slice=4))
    assert next_slice("suggest", labels, guide, [3, 5], _dice_on) == 4
    assert next_slice("worst", labels, guide, [3, 5], _dice_on) == 6
    assert next_slice("evenly", labels, guide, [3, 5], _dice_on) == 7
