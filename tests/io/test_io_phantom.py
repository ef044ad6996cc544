"""The procedural CT phantom: deterministic, labelled, anatomically placed, not threshold-separable."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from napari_smp.io import Phantom, make_phantom, read_labels, read_volume, write_labels, write_volume
from napari_smp.io.phantom import PHANTOM_CLASSES


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return make_phantom(0)


def test_deterministic_per_seed(phantom: Phantom) -> None:
    again = make_phantom(0)
    np.testing.assert_array_equal(again.image, phantom.image)
    np.testing.assert_array_equal(again.labels, phantom.labels)
    other = make_phantom(1)
    assert not np.array_equal(other.labels, phantom.labels)
    assert not np.array_equal(other.image, phantom.image)


def test_shape_types_and_classes(phantom: Phantom) -> None:
    assert phantom.image.shape == phantom.labels.shape == (48, 160, 160)
    assert phantom.image.dtype == np.float32 and phantom.labels.dtype == np.uint8
    assert phantom.meta.spacing[0] > phantom.meta.spacing[1] == phantom.meta.spacing[2]  # thick slices
    assert phantom.meta.shape == phantom.image.shape
    assert phantom.class_names == list(PHANTOM_CLASSES) and len(phantom.class_names) >= 6
    assert set(np.unique(phantom.labels)) == set(range(len(phantom.class_names)))
    assert phantom.meta.class_names == {i: n for i, n in enumerate(phantom.class_names) if i}
    # air outside the body, soft tissue inside
    assert phantom.image[:, 0, 0].mean() < -900
    assert -100 < np.median(phantom.image[phantom.labels == 1]) < 150


def test_anatomy_follows_the_axis_convention(phantom: Phantom) -> None:
    def centroid(label: int) -> np.ndarray:
        return np.argwhere(phantom.labels == label).mean(axis=0)  # (z, y, x)

    liver, spleen, k_right, k_left, aorta, _, spine = (centroid(c) for c in range(1, 8))
    assert liver[2] > spleen[2] and k_right[2] > k_left[2]  # x grows to the patient's right
    assert spine[1] < aorta[1] < liver[1]  # y grows to anterior: spine is posterior
    assert liver[0] > k_right[0]  # z grows to superior: liver above the kidneys


def test_organs_vary_along_z(phantom: Phantom) -> None:
    areas = np.array([(phantom.labels[z] == 1).sum() for z in range(48)])
    assert areas.min() == 0 and areas.max() > 3000
    present = np.flatnonzero(areas)
    assert np.abs(np.diff(areas[present])).max() < 0.25 * areas.max()  # smooth, no jumps


def test_liver_and_spleen_overlap_in_intensity(phantom: Phantom) -> None:
    liver = phantom.image[phantom.labels == 1]
    spleen = phantom.image[phantom.labels == 2]
    lo, hi = np.percentile(liver, [10, 90])
    assert np.mean((spleen > lo) & (spleen < hi)) > 0.5  # a threshold cannot split them


def test_cheap_to_build() -> None:
    """Built in float32 with few whole-volume temporaries: what keeps it fast (its time, not asserted here,
    is ~0.4 s on 2 cores). The peak is counted in bytes, so a busy machine cannot fail this test."""
    tracemalloc.start()
    try:
        ph = make_phantom(3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ph.image.dtype == np.float32
    volume = ph.image.nbytes  # one float32 volume
    # ~9.8 volumes today; drawing in float64 would double it
    assert peak < 12 * volume, f"peak {peak / volume:.1f} volumes"


def test_saved_phantom_reads_back(tmp_path: Path, phantom: Phantom) -> None:
    write_volume(tmp_path / "phantom.nii.gz", phantom.image, phantom.meta)
    write_labels(tmp_path / "phantom_seg.nrrd", phantom.labels, phantom.meta)
    image, meta = read_volume(tmp_path / "phantom.nii.gz")
    labels, label_meta = read_labels(tmp_path / "phantom_seg.nrrd")
    np.testing.assert_array_equal(image, phantom.image)
    np.testing.assert_array_equal(labels, phantom.labels)
    np.testing.assert_allclose(meta.affine, phantom.meta.affine, atol=1e-5)
    np.testing.assert_allclose(label_meta.affine, phantom.meta.affine, atol=1e-9)
    assert label_meta.class_names == phantom.meta.class_names
