"""The real TotalSegmentator development CT: 20 DICOM slices and its organ labels on the same grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_smp.io import read_labels, read_volume

pytestmark = pytest.mark.data

ORGANS = [
    "spleen",
    "liver",
    "stomach",
    "adrenal_gland_right",
    "colon",
    "aorta",
    "inferior_vena_cava",
    "portal_vein_and_splenic_vein",
]


@pytest.fixture(scope="module")
def dev_ct(dev_ct_dir: Path) -> tuple[np.ndarray, np.ndarray, object, object]:
    image, meta = read_volume(dev_ct_dir / "example_ct_dicom")
    labels, label_meta = read_labels(dev_ct_dir / "dev_ct_labels.nii.gz")
    return image, labels, meta, label_meta


def test_the_series_is_20_slices_of_512_squared(dev_ct, dev_ct_dir: Path) -> None:
    image, _, meta, _ = dev_ct
    assert image.shape == (20, 512, 512)
    assert meta.spacing == pytest.approx((2.0, 0.977, 0.977), abs=1e-3)
    assert -1100 < image.min() and image.max() < 4000  # Hounsfield units, rescale applied
    saved, saved_meta = read_volume(dev_ct_dir / "dev_ct_image.nii.gz")
    assert saved.dtype == image.dtype and np.array_equal(saved, image) and saved_meta.same_grid(meta)


def test_labels_are_the_chosen_organs_on_the_ct_grid(dev_ct, dev_ct_dir: Path) -> None:
    image, labels, meta, label_meta = dev_ct
    assert labels.shape == image.shape and label_meta.same_grid(meta)
    assert label_meta.class_names == {i: name for i, name in enumerate(ORGANS, start=1)}
    assert np.unique(labels).tolist() == list(range(len(ORGANS) + 1))
    counts = np.bincount(labels.ravel(), minlength=len(ORGANS) + 1)[1:]
    assert counts.min() >= 1000
    doc = json.loads((dev_ct_dir / "dev_ct_labels.json").read_text())
    assert [doc["organs"][name]["voxels"] for name in ORGANS] == counts.tolist()


def test_labels_sit_on_the_anatomy(dev_ct) -> None:
    """Orientation check in numbers: the labels mark tissue of the right density, on the right side."""
    image, labels, _, _ = dev_ct
    hu = {name: float(image[labels == i].mean()) for i, name in enumerate(ORGANS, start=1)}
    assert 40 < hu["liver"] < 150 and 40 < hu["spleen"] < 150  # soft tissue, contrast-enhanced
    assert hu["aorta"] > 150  # arterial contrast
    liver = labels == ORGANS.index("liver") + 1
    for flipped in (liver[:, :, ::-1], liver[:, ::-1], liver[::-1]):
        # a label map mirrored along any axis would mark less liver-like tissue
        assert abs(float(image[flipped].mean()) - 90) > abs(hu["liver"] - 90)
    x_of = {name: np.nonzero(labels == i)[2].mean() for i, name in enumerate(ORGANS, start=1)}
    assert x_of["liver"] > x_of["spleen"]  # RAS+: x grows toward the patient's right, where the liver is
