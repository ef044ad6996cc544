"""NIfTI: read -> (Z, Y, X) RAS+ -> write lands on exactly the source file's grid."""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from io_files import save_nifti

from napari_smp.io import read_labels, read_volume, write_labels

ORIENTATIONS = ["ras_affine", "lps_affine", "oblique_affine"]


@pytest.mark.parametrize("affine_name", ORIENTATIONS)
def test_label_round_trip_is_exact(
    tmp_path: Path, label_block: np.ndarray, affine_name: str, request: pytest.FixtureRequest
) -> None:
    affine = request.getfixturevalue(affine_name)
    src = save_nifti(tmp_path / "case_seg.nii.gz", label_block, affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the oblique warning has its own test
        labels, meta = read_labels(src)
    assert labels.dtype == np.uint8
    out = write_labels(tmp_path / "out.nii.gz", labels, meta)

    before, after = nib.load(src), nib.load(out)
    assert after.shape == before.shape
    np.testing.assert_array_equal(np.asarray(after.dataobj), np.asarray(before.dataobj))
    np.testing.assert_array_equal(after.affine, before.affine)
    for field in ("qform_code", "sform_code"):
        assert after.header[field] == before.header[field]
    np.testing.assert_array_equal(after.header.get_qform(), before.header.get_qform())
    assert after.get_data_dtype() == np.uint8
    assert after.header.get_intent()[0] == "label"


@pytest.mark.parametrize("affine_name", ORIENTATIONS)
def test_painted_world_point_lands_at_that_point(
    tmp_path: Path, label_block: np.ndarray, affine_name: str, request: pytest.FixtureRequest
) -> None:
    affine = request.getfixturevalue(affine_name)
    src = save_nifti(tmp_path / "img.nii.gz", label_block * 10.0, affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image, meta = read_volume(src)
    file_affine = nib.load(src).affine
    world = file_affine @ np.array([2.0, 4.0, 3.0, 1.0])  # centre of file voxel (2, 4, 3)
    z, y, x = np.round(np.linalg.solve(meta.affine, world)[:3]).astype(int)
    assert image[z, y, x] == label_block[2, 4, 3] * 10.0
    painted = np.zeros(image.shape, dtype=np.uint8)
    painted[z, y, x] = 9
    out = nib.load(write_labels(tmp_path / "paint.nii", painted, meta))
    (hit,) = np.argwhere(np.asarray(out.dataobj) == 9)
    np.testing.assert_allclose(out.affine @ np.append(hit, 1.0), world, atol=1e-5)


def test_lps_and_ras_storage_read_identically(
    tmp_path: Path, label_block: np.ndarray, ras_affine: np.ndarray
) -> None:
    ras = save_nifti(tmp_path / "ras_seg.nii.gz", label_block, ras_affine)
    # the same voxels stored with i -> left, j -> posterior: flip the data, move the origin to the far corner
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:3, 3] = [label_block.shape[0] - 1, label_block.shape[1] - 1, 0]
    lps = save_nifti(tmp_path / "lps_seg.nii.gz", label_block[::-1, ::-1, :], ras_affine @ flip)
    a, meta_a = read_labels(ras)
    b, meta_b = read_labels(lps)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(meta_a.affine, meta_b.affine, atol=1e-5)
    assert meta_a.spacing == pytest.approx(meta_b.spacing)
    # (Z, Y, X) = (K, J, I) for a RAS file: axis 0 is superior, spacing (2.5, 0.7, 0.8)
    np.testing.assert_array_equal(a, label_block.transpose(2, 1, 0).astype(np.uint8))
    assert meta_a.spacing == pytest.approx((2.5, 0.7, 0.8))
    assert meta_a.origin_zyx == pytest.approx((40.0, 15.0, -20.0))


def test_oblique_file_warns_once_and_is_flagged(
    tmp_path: Path, label_block: np.ndarray, oblique_affine: np.ndarray
) -> None:
    src = save_nifti(tmp_path / "tilted.nii.gz", label_block, oblique_affine)
    with pytest.warns(UserWarning, match="oblique"):
        _, meta = read_volume(src)
    assert meta.oblique
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_volume(src)  # second read of the same file is silent
    # closest canonical: the in-memory axes still run (S, A, R) on the whole
    assert meta.affine[2, 0] > 0 and meta.affine[1, 1] > 0 and meta.affine[0, 2] > 0
    np.testing.assert_allclose(sorted(meta.spacing), sorted([1.1, 0.9, 2.0]), rtol=1e-6)


def test_trailing_singleton_axes_are_dropped_and_restored(
    tmp_path: Path, label_block: np.ndarray, ras_affine: np.ndarray
) -> None:
    src = save_nifti(tmp_path / "mask4d.nii.gz", label_block[..., None], ras_affine)
    labels, meta = read_labels(src)
    assert labels.shape == (5, 6, 7)
    assert meta.source_shape == (7, 6, 5, 1)
    out = nib.load(write_labels(tmp_path / "back.nii.gz", labels, meta))
    assert out.shape == (7, 6, 5, 1)
    np.testing.assert_array_equal(np.asarray(out.dataobj), label_block[..., None])


def test_scaled_integer_image_reads_as_float(tmp_path: Path, ras_affine: np.ndarray) -> None:
    img = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), ras_affine)
    img.header.set_slope_inter(2.0, -1024.0)
    nib.save(img, str(tmp_path / "ct.nii.gz"))
    data, _ = read_volume(tmp_path / "ct.nii.gz")
    assert data.dtype == np.float32
    assert data.min() == -1024.0 and data.max() == 23 * 2.0 - 1024.0


def test_large_label_values_become_uint16(tmp_path: Path, ras_affine: np.ndarray) -> None:
    data = np.zeros((3, 3, 3), dtype=np.int32)
    data[1, 1, 1] = 1000
    labels, _ = read_labels(save_nifti(tmp_path / "big_label.nii.gz", data, ras_affine))
    assert labels.dtype == np.uint16 and labels.max() == 1000


def test_big_endian_file_reads_native(tmp_path: Path, ras_affine: np.ndarray) -> None:
    data = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    img = nib.Nifti1Image(data, ras_affine, header=nib.Nifti1Header(endianness=">"))
    img.set_data_dtype(">i2")
    nib.save(img, str(tmp_path / "old.nii"))
    assert nib.load(tmp_path / "old.nii").get_data_dtype().byteorder == ">"
    out, _ = read_volume(tmp_path / "old.nii")
    assert out.dtype == np.int16 and out.dtype.isnative
    np.testing.assert_array_equal(out, data.transpose(2, 1, 0))
