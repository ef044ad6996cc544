"""File builders for the io tests: tiny volumes written with the reference libraries themselves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

__all__ = ["save_nifti", "save_itk", "save_dicom_series", "rotation_z"]


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray, code: int = 1) -> Path:
    """NIfTI-1 with both qform and sform set to ``affine`` (code 1 = scanner), data as given."""
    img = nib.Nifti1Image(data, affine)
    img.header.set_sform(affine, code=code)
    img.header.set_qform(affine, code=code)
    nib.save(img, str(path))
    return path


def save_itk(
    path: Path,
    data_ijk: np.ndarray,
    spacing: Sequence[float],
    origin: Sequence[float],
    direction: Sequence[float] = (1, 0, 0, 0, 1, 0, 0, 0, 1),
) -> Path:
    """An ITK file (format by extension) from an ``(I, J, K)`` array and LPS geometry."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(data_ijk.transpose(2, 1, 0)))
    img.SetSpacing(tuple(float(v) for v in spacing))
    img.SetOrigin(tuple(float(v) for v in origin))
    img.SetDirection(tuple(float(v) for v in direction))
    sitk.WriteImage(img, str(path), True)
    return path


def rotation_z(degrees: float) -> np.ndarray:
    """4x4 rotation about the superior axis."""
    a = np.deg2rad(degrees)
    rot = np.eye(4)
    rot[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return rot


def save_dicom_series(
    folder: Path,
    volume_zyx: np.ndarray,
    spacing_xyz: Sequence[float],
    origin_lps: Sequence[float],
    series_uid: str,
    direction: Sequence[float] = (1, 0, 0, 0, 1, 0, 0, 0, 1),
) -> list[Path]:
    """One int16 CT slice file per z, with the geometry tags a DICOM reader sorts and places them by."""
    folder.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(volume_zyx.astype(np.int16))
    img.SetSpacing(tuple(float(v) for v in spacing_xyz))
    img.SetOrigin(tuple(float(v) for v in origin_lps))
    img.SetDirection(tuple(float(v) for v in direction))
    d = img.GetDirection()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    files = []
    for k in range(img.GetDepth()):
        plane = img[:, :, k]
        tags = {
            "0008|0060": "CT",
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|000d": "1.2.826.0.1.3680043.8.498.1",
            "0020|000e": series_uid,
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.6f}" for v in img.TransformIndexToPhysicalPoint((0, 0, k))),
            "0020|0037": "\\".join(f"{v:.6f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7])),
            "0018|0050": f"{spacing_xyz[2]:.6f}",
        }
        for key, value in tags.items():
            plane.SetMetaData(key, value)
        path = folder / f"{series_uid[-3:]}_{k:03d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(plane)
        files.append(path)
    return files
