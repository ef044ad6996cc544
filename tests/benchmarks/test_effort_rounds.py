"""The correction rounds' simulated annotator: which slice each policy paints next (known answers)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from _effort_rounds import evenly, next_slice, reduction, worst


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


def test_reduction_cuts_a_long_unsure_stretch_in_its_middle_but_takes_a_much_surer_lone_slice():
    p = np.zeros((3, 21, 4, 4), np.float32)
    p[0] = 1.0
    p[:, 1:10, :1] = np.array([0.5, 0.5, 0.0])[:, None, None, None]  # slices 1-9: 2 expected errors each
    assert reduction(p, [0, 10, 20]) == 5  # removes 2 * (1/3 + 3/4 + 1 + 3/4 + 1/3) = 6.33
    p[:, 15, :2] = np.array([0.0, 0.5, 0.5])[:, None, None]  # 4 expected errors on slice 15 alone
    assert reduction(p, [0, 10, 20]) == 5
    p[:, 15] = np.array([0.0, 0.5, 0.5])[:, None, None]  # 8: more than the stretch's 6.33
    assert reduction(p, [0, 10, 20]) == 15
