"""Display choices computed without napari: CT window presets, MR percentiles, camera orientation."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smp.io.display import (
    WINDOW_PRESETS,
    auto_limits,
    camera_orientation,
    looks_like_ct,
    percentile_limits,
    preset_limits,
    strided_sample,
    window_limits,
)


def _ct(shape: tuple[int, ...] = (20, 64, 64)) -> np.ndarray:
    """Air around a soft-tissue body with some bone: HU values as a scanner writes them."""
    rng = np.random.default_rng(0)
    vol = np.full(shape, -1000.0, np.float32)
    vol[:, 8:-8, 8:-8] = rng.normal(40, 15, (shape[0], shape[1] - 16, shape[2] - 16))
    vol[:, 28:36, 28:36] = 700
    return vol


def _mr(shape: tuple[int, ...] = (20, 64, 64)) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.gamma(2.0, 150.0, shape).astype(np.float32)


def test_window_presets_are_the_radiology_ones() -> None:
    assert WINDOW_PRESETS == {"abdomen": (400, 40), "lung": (1500, -600), "bone": (1800, 400), "brain": (80, 40)}
    assert preset_limits("abdomen") == (-160.0, 240.0)
    assert preset_limits("lung") == (-1350.0, 150.0)
    assert preset_limits("bone") == (-500.0, 1300.0)
    assert preset_limits("brain") == (0.0, 80.0)
    assert window_limits(400, 40) == (-160.0, 240.0)
    with pytest.raises(ValueError, match="unknown window preset 'liver'"):
        preset_limits("liver")
    with pytest.raises(ValueError, match="positive"):
        window_limits(0, 40)


def test_ct_opens_in_the_soft_tissue_window() -> None:
    assert looks_like_ct(_ct())
    assert auto_limits(_ct()) == ((-160.0, 240.0), "abdomen")
    # integer HU (int16, as DICOM stores them) too
    assert auto_limits(_ct().astype(np.int16))[1] == "abdomen"


def test_mr_opens_at_its_percentiles() -> None:
    mr = _mr()
    assert not looks_like_ct(mr)
    (lo, hi), kind = auto_limits(mr)
    assert kind == "percentile"
    expected = np.percentile(mr[::1, ::1, ::1], (0.5, 99.5))  # small volume: the sample is all of it
    np.testing.assert_allclose((lo, hi), expected, rtol=1e-6)
    assert lo < hi


def test_percentiles_of_a_large_volume_come_from_a_strided_sample() -> None:
    big = np.arange(200**3, dtype=np.float32).reshape(200, 200, 200)  # 8 M voxels: every 2nd on each axis
    sample = strided_sample(big)
    assert sample.size < 1_500_000 and sample.ndim == 3  # ~1 M voxels, one stride on every axis
    np.testing.assert_array_equal(sample, big[::2, ::2, ::2])
    lo, hi = percentile_limits(big)
    np.testing.assert_allclose((lo, hi), np.percentile(sample, (0.5, 99.5)))
    # close to the percentiles of the whole volume
    full = np.percentile(big, (0.5, 99.5))
    assert abs(lo - full[0]) < 0.01 * big.max() and abs(hi - full[1]) < 0.01 * big.max()


def test_percentile_limits_always_increase() -> None:
    assert percentile_limits(np.full((4, 4, 4), 7.0)) == (7.0, 8.0)
    spike = np.zeros((10, 10, 10))
    spike[0, 0, 0] = 5  # equal percentiles: the full range
    assert percentile_limits(spike) == (0.0, 5.0)
    nan = np.full((3, 3, 3), np.nan)
    assert percentile_limits(nan) == (0.0, 1.0)
    with_nan = _mr()
    with_nan[0] = np.nan  # NaN voxels are ignored, not propagated
    assert np.isfinite(percentile_limits(with_nan)).all()
    assert not looks_like_ct(nan)


# orientation: (Z, Y, X) arrays are (S, A, R); napari's orientation is (depth, vertical, horizontal)

AXIAL, CORONAL, SAGITTAL = (1, 2), (0, 2), (0, 1)


@pytest.mark.parametrize(
    "displayed, radiological, neurological",
    [
        (AXIAL, ("up", "left"), ("up", "right")),  # anterior up; the patient's right left / right
        (CORONAL, ("up", "left"), ("up", "right")),  # superior up
        (SAGITTAL, ("up", "left"), ("up", "left")),  # superior up, anterior on the left (Slicer)
    ],
)
def test_camera_orientation_of_the_three_planes(displayed, radiological, neurological) -> None:
    assert camera_orientation(displayed)[1:] == radiological
    assert camera_orientation(displayed, "radiological")[1:] == radiological
    assert camera_orientation(displayed, "neurological")[1:] == neurological


_RAS = {0: np.array([0, 0, 1.0]), 1: np.array([0, 1.0, 0]), 2: np.array([1.0, 0, 0])}  # S, A, R in (x, y, z)


@pytest.mark.parametrize("order", [(0, 1, 2), (1, 0, 2), (2, 0, 1), (0, 2, 1), (1, 2, 0), (2, 1, 0)])
@pytest.mark.parametrize("convention", ["radiological", "neurological"])
def test_3d_view_is_never_a_mirror_image(order, convention) -> None:
    depth, vertical, horizontal = camera_orientation(order, convention)
    right = _RAS[order[2]] * (1 if horizontal == "right" else -1)
    up = _RAS[order[1]] * (1 if vertical == "up" else -1)
    towards = _RAS[order[0]] * (1 if depth == "towards" else -1)
    # screen right, screen up and the direction to the viewer form a right-handed frame in RAS mm
    assert np.linalg.det(np.stack([right, up, towards])) == pytest.approx(1.0)
    # two displayed axes give the same answer as the three of the 3D view they belong to
    assert camera_orientation(order[1:], convention) == (depth, vertical, horizontal)


def test_axial_3d_is_seen_from_the_feet() -> None:
    # anterior up and the patient's right on the left is the view from below: superior points away
    assert camera_orientation((0, 1, 2)) == ("away", "up", "left")


def test_camera_orientation_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="convention"):
        camera_orientation(AXIAL, "upside-down")
    with pytest.raises(ValueError, match="displayed axes"):
        camera_orientation((1, 1))
    with pytest.raises(ValueError, match="displayed axes"):
        camera_orientation((0, 3))
