"""Which files and arrays count as label maps, and how they are cast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from io_files import save_nifti

from napari_smp.io import is_label_file
from napari_smp.io.labels import looks_like_labels, to_label_array


@pytest.mark.parametrize(
    "name",
    [
        "liver_seg.nii.gz",
        "case01-label.nrrd",
        "sub-ct_seg-vert_label-22_msk.nii.gz",
        "Mask.mha",
        "patient3_gt.nii",
        "labels01.nii.gz",
        "ct.segmentation.nrrd",
        "annotations.mhd",
        "sub-01_ses-1_dseg.nii.gz",
    ],
)
def test_label_names(name: str) -> None:
    assert is_label_file(name, data=np.linspace(0, 1, 1000).reshape(10, 10, 10))


@pytest.mark.parametrize(
    "name", ["ct.nii.gz", "sagittal_t2.nrrd", "image_0001.mha", "segundo.nii", "target.nii.gz"]
)
def test_image_names_with_image_data(name: str) -> None:
    rng = np.random.default_rng(0)
    assert not is_label_file(name, data=rng.normal(0, 100, (10, 10, 10)).astype(np.int16))


def test_data_heuristic() -> None:
    few = np.zeros((20, 20, 20), np.int16)
    few[5:10, 5:10, 5:10] = 3
    assert looks_like_labels(few)
    assert looks_like_labels(few.astype(np.float32))  # tools that save labels as float
    assert looks_like_labels(few > 0)
    assert not looks_like_labels(few.astype(np.float32) + 0.5)
    assert not looks_like_labels(few - 1)  # negative values are not classes
    assert not looks_like_labels(np.arange(8000, dtype=np.uint8).reshape(20, 20, 20))  # 256 values: an image


def test_is_label_file_reads_the_file_when_no_data_given(tmp_path: Path, ras_affine: np.ndarray) -> None:
    few = np.zeros((4, 4, 4), np.uint8)
    few[1, 1, 1] = 2
    save_nifti(tmp_path / "case7.nii.gz", few, ras_affine)
    save_nifti(
        tmp_path / "case8.nii.gz",
        np.random.default_rng(0).normal(size=(4, 4, 4)).astype(np.float32),
        ras_affine,
    )
    assert is_label_file(tmp_path / "case7.nii.gz")
    assert not is_label_file(tmp_path / "case8.nii.gz")


def test_cast_rules() -> None:
    assert to_label_array(np.array([0, 255], np.int64)).dtype == np.uint8
    big = to_label_array(np.array([0.0, 256.0], np.float32))
    assert big.dtype == np.uint16 and big.tolist() == [0, 256]
    assert to_label_array(np.array([True, False])).dtype == np.uint8
