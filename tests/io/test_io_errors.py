"""Every bad input gets a VolumeError/LabelError naming the file, and writes are all-or-nothing."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from io_files import save_itk, save_nifti

import napari_smp.io.formats.nifti as nifti_backend
from napari_smp.io import LabelError, VolumeError, read_labels, read_volume, write_labels
from napari_smp.io.meta import VolumeMeta


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match="does not exist") as err:
        read_volume(tmp_path / "nope.nii.gz")
    assert "nope.nii.gz" in str(err.value)


@pytest.mark.parametrize("name", ["junk.nii.gz", "junk.nii", "junk.nrrd", "junk.mha"])
def test_garbage_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"this is not a medical image\x00\x01" * 20)
    with pytest.raises(VolumeError, match="could not be read as") as err:
        read_volume(tmp_path / name)
    assert name in str(err.value) and "\n" not in str(err.value)


def test_unknown_format(tmp_path: Path) -> None:
    (tmp_path / "scan.png").write_bytes(b"\x89PNG")
    with pytest.raises(VolumeError, match="not a supported volume format"):
        read_volume(tmp_path / "scan.png")


def test_folder_without_dicom(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(VolumeError, match="no DICOM series"):
        read_volume(tmp_path)


def test_4d_is_refused(tmp_path: Path, ras_affine: np.ndarray) -> None:
    path = save_nifti(tmp_path / "fmri.nii.gz", np.zeros((4, 4, 3, 2), np.float32), ras_affine)
    with pytest.raises(VolumeError, match="4D with shape"):
        read_volume(path)


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha"])
def test_2d_is_refused(tmp_path: Path, ras_affine: np.ndarray, suffix: str) -> None:
    if suffix == ".mha":
        import SimpleITK as sitk

        sitk.WriteImage(sitk.GetImageFromArray(np.zeros((5, 6), np.uint8)), str(tmp_path / "slice.mha"))
    else:
        save_nifti(tmp_path / f"slice{suffix}", np.zeros((5, 6), np.float32), ras_affine)
    with pytest.raises(VolumeError, match="2D image"):
        read_volume(tmp_path / f"slice{suffix}")


def test_nan_image_is_refused_with_count(tmp_path: Path, ras_affine: np.ndarray) -> None:
    data = np.zeros((4, 4, 4), np.float32)
    data[0, 0, :3] = np.nan
    path = save_nifti(tmp_path / "ct.nii.gz", data, ras_affine)
    with pytest.raises(VolumeError, match="has 3 NaN voxels"):
        read_volume(path)
    kept, _ = read_volume(path, allow_nan=True)
    assert np.isnan(kept).sum() == 3


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.array([0.0, 1.0, 0.5]), "non-integer voxels"),
        (np.array([0.0, -1.0, 2.0]), "negative values"),
        (np.array([0.0, np.nan, 1.0]), "NaN voxels"),
        (np.array([0.0, 70000.0, 1.0]), "at most 65535"),
    ],
)
def test_bad_label_values(tmp_path: Path, ras_affine: np.ndarray, values: np.ndarray, message: str) -> None:
    data = np.zeros((3, 3, 3), np.float32)
    data[0, 0, :] = values
    path = save_nifti(tmp_path / "bad_seg.nii.gz", data, ras_affine)
    with pytest.raises(LabelError, match=message) as err:
        read_labels(path)
    assert "bad_seg.nii.gz" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_integral_float_labels_are_accepted(tmp_path: Path, ras_affine: np.ndarray) -> None:
    data = np.zeros((3, 3, 3), np.float64)
    data[1, 1, 1] = 4.0
    labels, _ = read_labels(save_nifti(tmp_path / "float_seg.nii.gz", data, ras_affine))
    assert labels.dtype == np.uint8 and labels[1, 1, 1] == 4


def test_write_refuses_wrong_shape_and_extension(
    tmp_path: Path, label_block: np.ndarray, ras_affine: np.ndarray
) -> None:
    labels, meta = read_labels(save_nifti(tmp_path / "a_seg.nii.gz", label_block, ras_affine))
    with pytest.raises(VolumeError, match="does not match|but the grid"):
        write_labels(tmp_path / "out.nii.gz", labels[:, :, :-1], meta)
    with pytest.raises(VolumeError, match="extension"):
        write_labels(tmp_path / "out.png", labels, meta)
    with pytest.raises(LabelError):
        write_labels(tmp_path / "out.nii.gz", labels.astype(np.float32) + 0.5, meta)
    with pytest.raises(VolumeError, match="folder"):
        write_labels(tmp_path / "missing" / "out.nii.gz", labels, meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_seg.nii.gz"]


def test_failed_write_leaves_nothing_and_keeps_old_file(
    tmp_path: Path, label_block: np.ndarray, ras_affine: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels, meta = read_labels(save_nifti(tmp_path / "a_seg.nii.gz", label_block, ras_affine))
    target = tmp_path / "pred.nii.gz"
    target.write_bytes(b"previous result")

    def broken_save(img: nib.Nifti1Image, filename: str) -> None:
        Path(filename).write_bytes(b"half a file")  # a crash mid-write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nifti_backend.nib, "save", broken_save)
    with pytest.raises(VolumeError, match="No space left on device"):
        write_labels(target, labels, meta)
    assert target.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["a_seg.nii.gz", "pred.nii.gz"]
    with pytest.raises(VolumeError):
        write_labels(tmp_path / "new.nii.gz", labels, meta)
    assert not (tmp_path / "new.nii.gz").exists()


def test_vector_image_is_refused(tmp_path: Path) -> None:
    import SimpleITK as sitk

    rgb = sitk.GetImageFromArray(np.zeros((3, 4, 5, 3), np.uint8), isVector=True)
    sitk.WriteImage(rgb, str(tmp_path / "rgb.mha"))
    with pytest.raises(VolumeError, match="values per voxel"):
        read_volume(tmp_path / "rgb.mha")


def test_meta_from_grid_matches_a_ras_file(
    tmp_path: Path, label_block: np.ndarray, ras_affine: np.ndarray
) -> None:
    _, meta = read_labels(
        save_itk(tmp_path / "x.mha", label_block.astype(np.uint8), (0.8, 0.7, 2.5), (20.0, -15.0, 40.0))
    )
    made = VolumeMeta.from_grid(meta.shape, meta.spacing, meta.origin_zyx)
    np.testing.assert_allclose(made.affine, meta.affine, atol=1e-9)
    assert made.shape == meta.shape
