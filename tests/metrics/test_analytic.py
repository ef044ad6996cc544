"""Metrics on shapes whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_smp.metrics import asd, assd, class_metrics, dice, hd, hd95

SPACING = (2.5, 0.8, 1.2)


def _sphere(shape: tuple[int, int, int], centre: tuple[int, int, int], radius: float) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3])
def test_shifted_sphere_hd_is_shift_times_spacing_of_that_axis(axis: int, k: int) -> None:
    # every surface voxel moves by exactly k voxels, and the leading pole has no closer partner
    gt = _sphere((24, 24, 24), (11, 11, 11), 6.0)
    pred = np.roll(gt, k, axis=axis)
    res = hd(pred, gt, spacing=SPACING)
    assert res.value() == pytest.approx(k * SPACING[axis], abs=1e-12)
    # HD95 can be below HD, never above
    for convention in ("medpy", "monai"):
        assert 0 < hd95(pred, gt, SPACING, convention=convention).value() <= k * SPACING[axis] + 1e-12


def test_cube_against_itself_is_zero_everywhere() -> None:
    cube = np.zeros((10, 12, 14), dtype=bool)
    cube[2:8, 3:9, 4:10] = True
    m = class_metrics(cube, cube, spacing=SPACING)[1]
    assert (m.dice, m.hd95, m.hd, m.assd, m.asd) == (1.0, 0.0, 0.0, 0.0, 0.0)
    assert hd95(cube, cube, SPACING, convention="monai").value() == 0.0


def test_dice_of_shifted_squares_by_hand() -> None:
    gt = np.zeros((10, 10), dtype=np.uint8)
    gt[2:6, 2:6] = 1  # 16 pixels
    pred = np.zeros_like(gt)
    pred[3:7, 2:6] = 1  # shifted one row: 12 shared
    assert dice(pred, gt).value() == pytest.approx(2 * 12 / 32)


def test_multilabel_dice_by_hand() -> None:
    gt = np.zeros((6, 8), dtype=np.int32)
    pred = np.zeros_like(gt)
    gt[0:2, 0:4] = 1  # 8
    pred[0:2, 0:2] = 1  # 4, all inside gt 1
    gt[3:6, 0:3] = 2  # 9
    pred[3:6, 1:4] = 2  # 9, 6 shared
    pred[5, 7] = 7  # a class absent from gt
    res = dice(pred, gt)
    assert list(res) == [1, 2, 7]
    assert res[1] == pytest.approx(2 * 4 / 12)
    assert res[2] == pytest.approx(2 * 6 / 18)
    assert res[7] == 0.0


def test_point_against_segment_separates_the_two_conventions() -> None:
    # gt surface = {(5,5)}, pred surface = {(5,5),(5,6),(5,7)}: d_pg = [0,1,2], d_gp = [0]
    gt = np.zeros((10, 10), dtype=bool)
    gt[5, 5] = True
    pred = np.zeros_like(gt)
    pred[5, 5:8] = True
    # pooled [0,0,1,2]: rank 0.95*3 = 2.85 -> 1 + 0.85 * (2 - 1)
    assert hd95(pred, gt).value() == pytest.approx(1.85)
    # max(p95([0,1,2]) = 1.9, p95([0]) = 0)
    assert hd95(pred, gt, convention="monai").value() == pytest.approx(1.9)
    assert hd(pred, gt).value() == pytest.approx(2.0)
    assert assd(pred, gt).value() == pytest.approx(3 / 4)
    assert asd(pred, gt).value() == pytest.approx(1.0)
    assert asd(gt, pred).value() == 0.0


def test_two_voxels_distance_uses_spacing_in_array_order() -> None:
    a = np.zeros((8, 8), dtype=bool)
    b = np.zeros_like(a)
    a[1, 1] = True
    b[4, 5] = True  # offset (3, 4) voxels
    assert hd(a, b, spacing=(2.0, 0.5)).value() == pytest.approx(math.hypot(6.0, 2.0))
    assert hd95(a, b, spacing=(2.0, 0.5)).value() == pytest.approx(math.hypot(6.0, 2.0))
    assert hd(a, b, spacing=3.0).value() == pytest.approx(15.0)
    assert hd(a, b).value() == pytest.approx(5.0)
