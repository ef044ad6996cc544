"""The intensity evidence: propagated labels as prior, painted intensities as likelihood (inference/intensity.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smp.engine.inference.intensity import (
    SINGLE_SLICE,
    IntensityModel,
    Refinement,
    calibrate,
    intensity_bins,
    refine,
)
from napari_smp.engine.inference.interpolation import interpolate, nearest_copy
from napari_smp.metrics import dice


def _growing_disc(depth: int = 9, size: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright disc (class 1) whose radius grows by 1.5 px a slice, in noise: intensity tells it apart."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((depth, size, size), np.uint8)
    for z in range(depth):
        labels[z][(yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= (6 + 1.5 * z) ** 2] = 1
    image = np.where(labels == 1, 200.0, -100.0) + rng.normal(0, 20, labels.shape)
    return image.astype(np.float32), labels


def test_the_likelihood_is_learnt_from_the_painted_pixels():
    bins = np.array([[[3, 3, 60, 60]]], np.uint8)  # (P=1, 1, 4)
    compact = np.array([[[0, 0, 1, 1]]])
    model = IntensityModel.fit(bins, compact, 2)
    ll = model.log_likelihood
    assert ll.shape == (2, 64)
    np.testing.assert_allclose(np.exp(ll).sum(axis=1), 1.0, rtol=1e-5)
    assert ll[0, 3] > ll[1, 3] and ll[1, 60] > ll[0, 60]  # each class likes its own intensities


def test_beta_zero_is_the_prior_unchanged():
    model = IntensityModel(np.log(np.full((2, 64), 1 / 64, np.float32)))
    prior = np.random.default_rng(0).dirichlet([1, 1], size=(5, 5)).transpose(2, 0, 1).astype(np.float32)
    assert model.posterior(prior, np.zeros((5, 5), np.uint8), Refinement(0.0), 3) is prior


def test_the_evidence_moves_a_copied_boundary_onto_the_image_edge():
    image, labels = _growing_disc()
    painted = np.array([0, 8])
    painting = np.zeros_like(labels)
    painting[painted] = labels[painted]
    copied = nearest_copy(painting, painted)  # the wrong radius on every unpainted slice
    before = dice(copied.label_map(), labels, labels=[1])[1]
    refined = refine(copied, intensity_bins(image), Refinement(1.0, 2.0, 0.5))
    after = dice(refined.label_map(), labels, labels=[1])[1]
    assert after > before + 0.02
    np.testing.assert_array_equal(refined.label_map()[painted], labels[painted])  # painting untouched
    np.testing.assert_allclose(refined.probabilities.sum(axis=0), 1.0, rtol=1e-5)


def test_calibration_trusts_intensities_where_they_define_the_classes():
    image, labels = _growing_disc()
    painted = np.array([0, 4, 8])
    painting = np.zeros_like(labels)
    painting[painted] = labels[painted]
    filled = nearest_copy(painting, painted)
    chosen = calibrate(image, filled, intensity_bins(image), lambda im, lab, p: nearest_copy(lab, p))
    assert chosen.choice.beta > 0
    assert chosen.scores[chosen.choice] > chosen.scores[Refinement(0.0)]


def test_calibration_keeps_the_prior_where_intensities_mislead():
    # a square whose contrast flips from slice to slice (bright on even slices, dark on odd ones): what the
    # painted slices say of intensities is wrong on the hidden ones, and the held-out Dice shows it
    rng = np.random.default_rng(1)
    labels = np.zeros((7, 32, 32), np.uint8)
    labels[:, 8:24, 8:24] = 1
    sign = np.where(np.arange(7) % 2 == 0, 1.0, -1.0)[:, None, None]
    image = (sign * np.where(labels == 1, 150.0, -150.0) + rng.normal(0, 10, labels.shape)).astype(np.float32)
    painted = np.array([0, 3, 6])
    painting = np.zeros_like(labels)
    painting[painted] = labels[painted]
    filled = nearest_copy(painting, painted)
    chosen = calibrate(image, filled, intensity_bins(image), lambda im, lab, p: nearest_copy(lab, p))
    assert chosen.choice == Refinement(0.0)
    assert chosen.scores[Refinement(0.0)] > max(v for h, v in chosen.scores.items() if h.beta > 0)


def test_one_painted_slice_takes_the_default():
    image, labels = _growing_disc()
    painting = np.zeros_like(labels)
    painting[4] = labels[4]
    filled = nearest_copy(painting, [4])
    chosen = calibrate(image, filled, intensity_bins(image), lambda *a: pytest.fail("nothing to hide"))
    assert chosen.choice == SINGLE_SLICE


def test_a_shape_share_mixes_the_interpolation_into_the_unpainted_slices():
    image, labels = _growing_disc()
    painted = np.array([0, 8])
    painting = np.zeros_like(labels)
    painting[painted] = labels[painted]
    copied = nearest_copy(painting, painted)
    expected = 0.5 * copied.probabilities + 0.5 * interpolate(painting, painted).probabilities
    refined = refine(nearest_copy(painting, painted), intensity_bins(image), Refinement(0.0, shape=0.5))
    np.testing.assert_allclose(refined.probabilities, expected, atol=1e-6)  # painted slices: both one-hot
    np.testing.assert_array_equal(refined.label_map()[painted], labels[painted])
    assert "+shape" in refined.method and "+intensity" not in refined.method


def test_calibration_takes_the_interpolated_shape_where_it_is_right_and_intensities_say_nothing():
    # the disc grows linearly (signed-distance interpolation is exact) in an image without contrast: a
    # copied neighbour has the wrong radius, and only the shape share can mend it
    _, labels = _growing_disc()
    image = np.random.default_rng(2).normal(0, 20, labels.shape).astype(np.float32)
    painted = np.array([0, 4, 8])
    painting = np.zeros_like(labels)
    painting[painted] = labels[painted]
    filled = nearest_copy(painting, painted)
    before = dice(filled.label_map(), labels, labels=[1])[1]
    bins = intensity_bins(image)
    chosen = calibrate(image, filled, bins, lambda im, lab, p: nearest_copy(lab, p))
    assert chosen.choice.shape > 0
    assert chosen.scores[chosen.choice] > chosen.scores[Refinement(0.0)]
    after = dice(refine(filled, bins, chosen.choice).label_map(), labels, labels=[1])[1]
    assert after > before + 0.03
