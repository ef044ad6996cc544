"""The empty-mask rule, the labels argument, the result type and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_smp.metrics import (
    BOTH_EMPTY,
    GT_EMPTY,
    PRED_EMPTY,
    MetricInputError,
    PerClass,
    ShapeMismatchError,
    assd,
    class_metrics,
    dice,
    hd,
    hd95,
)


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros((6, 10, 10), dtype=np.uint16)
    pred = np.zeros_like(gt)
    gt[1:4, 2:6, 2:6] = 1
    pred[1:4, 3:7, 2:6] = 1
    gt[2:5, 6:9, 6:9] = 2  # class 2: gt only
    pred[0, 0:2, 0:2] = 3  # class 3: pred only
    return pred, gt


def test_one_side_empty_gives_dice_zero_and_nan_distances_with_reason(pair) -> None:
    pred, gt = pair
    res = class_metrics(pred, gt, spacing=(2.0, 1.0, 1.0))
    assert list(res) == [1, 2, 3]
    assert res[1].reason is None and res[1].hd95 > 0
    assert res[2].reason == PRED_EMPTY and res[3].reason == GT_EMPTY
    for label in (2, 3):
        assert res[label].dice == 0.0
        assert all(math.isnan(v) for v in (res[label].hd95, res[label].hd, res[label].assd, res[label].asd))
    h = hd95(pred, gt, (2.0, 1.0, 1.0))
    assert h.reasons == {2: PRED_EMPTY, 3: GT_EMPTY}
    assert h.reason(1) is None
    # a defined Dice of 0 carries no reason: reasons explain NaNs only
    assert dice(pred, gt).reasons == {}


def test_both_empty_is_nan_with_reason_for_every_metric() -> None:
    empty = np.zeros((4, 5, 6), dtype=bool)
    for metric in (dice, hd95, hd, assd):
        res = metric(empty, empty, labels=[1]) if metric is dice else metric(empty, empty, None, [1])
        assert math.isnan(res[1]) and res.reason(1) == BOTH_EMPTY
    # with labels=None there is nothing to score, not an error
    assert len(hd95(empty, empty)) == 0


def test_bool_masks_and_01_maps_give_one_value() -> None:
    a = np.zeros((8, 8), dtype=bool)
    a[2:5, 2:5] = True
    b = np.roll(a, 1, axis=1)
    assert len(hd95(a, b)) == 1
    assert hd95(a, b).value() == hd95(a.astype(np.int64), b.astype(np.uint8)).value()


def test_labels_argument_selects_and_adds_classes(pair) -> None:
    pred, gt = pair
    assert list(hd95(pred, gt, labels=2)) == [2]
    assert list(dice(pred, gt, labels=[3, 1])) == [1, 3]
    res = dice(pred, gt, labels=[1, 9])
    assert res.reason(9) == BOTH_EMPTY and not math.isnan(res[1])
    with pytest.raises(MetricInputError, match="background"):
        dice(pred, gt, labels=[0])
    with pytest.raises(MetricInputError, match="integers"):
        dice(pred, gt, labels=[1.5])


def test_large_label_values_are_scored() -> None:
    gt = np.zeros((6, 6), dtype=np.int64)
    gt[1:3, 1:3] = 70000
    pred = gt.copy()
    pred[1, 1] = 0
    assert dice(pred, gt)[70000] == pytest.approx(2 * 3 / 7)


def test_per_class_result_behaves_as_a_read_only_mapping(pair) -> None:
    pred, gt = pair
    res = hd95(pred, gt)
    assert isinstance(res, PerClass)
    assert dict(res).keys() == {1, 2, 3}
    assert res.nanmean() == pytest.approx(res[1])
    with pytest.raises(ValueError, match="index the result by label"):
        res.value()
    with pytest.raises(KeyError):
        res.reason(5)
    assert "pred empty" in repr(res)


def test_shape_mismatch_is_a_clear_value_error() -> None:
    with pytest.raises(ShapeMismatchError, match="resample") as info:
        dice(np.zeros((4, 5), np.uint8), np.zeros((5, 4), np.uint8))
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("pred", "match"),
    [
        (np.zeros((4, 4, 4, 4), np.uint8), "2D"),
        (np.full((4, 4), 0.5), "non-integer"),
        (np.full((4, 4), -1, np.int8), "negative"),
        (np.zeros((4, 4), complex), "dtype"),
    ],
)
def test_bad_label_maps_raise(pred, match) -> None:
    with pytest.raises(MetricInputError, match=match):
        dice(pred, np.zeros(pred.shape, np.uint8))


def test_whole_number_floats_are_accepted() -> None:
    gt = np.zeros((5, 5))
    gt[1:3, 1:3] = 2.0
    assert dice(gt, gt.astype(np.uint8))[2] == 1.0


@pytest.mark.parametrize("spacing", [(1.0, 2.0), (1.0, -1.0, 1.0), (0.0,), (1.0, float("nan"), 1.0)])
def test_bad_spacing_raises(spacing) -> None:
    mask = np.ones((3, 3, 3), dtype=bool)
    with pytest.raises(MetricInputError, match="spacing"):
        hd95(mask, mask, spacing=spacing)


def test_unknown_convention_raises() -> None:
    mask = np.ones((3, 3), dtype=bool)
    with pytest.raises(MetricInputError, match="convention"):
        hd95(mask, mask, convention="deepmind")  # type: ignore[arg-type]
