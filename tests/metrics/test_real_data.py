"""Real anisotropic CT/MRI lesion labels (pyradiomics 3.0.1) against medpy, with the file's own spacing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from medpy.metric import binary as medpy_binary
from scipy import ndimage

from napari_smp.metrics import class_metrics

pytestmark = pytest.mark.data


def _read_label(folder: Path, case: str) -> tuple[np.ndarray, tuple[float, float, float]]:
    sitk = pytest.importorskip("SimpleITK")
    image = sitk.ReadImage(str(folder / f"{case}_label.nrrd"))
    # SimpleITK reports spacing as (x, y, z); the array is (z, y, x)
    return sitk.GetArrayFromImage(image), tuple(float(s) for s in image.GetSpacing()[::-1])


def _perturbed(label: np.ndarray) -> np.ndarray:
    """Eroded in-plane (a slice-wise cross) and shifted two voxels along x: a plausible prediction."""
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    return np.roll(ndimage.binary_erosion(label > 0, structure=in_plane), 2, axis=2)


def _assert_equals_medpy(pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...]) -> None:
    m = class_metrics(pred, gt, spacing)[1]
    assert m.dice == pytest.approx(medpy_binary.dc(pred, gt), abs=1e-12)
    assert m.hd95 == pytest.approx(medpy_binary.hd95(pred, gt, spacing), rel=1e-9)
    assert m.hd == pytest.approx(medpy_binary.hd(pred, gt, spacing), rel=1e-9)
    assert m.assd == pytest.approx(medpy_binary.assd(pred, gt, spacing), rel=1e-9)


@pytest.mark.parametrize("case", ["brain1", "breast1"])
def test_real_lesion_equals_medpy_on_the_whole_volume(pyradiomics_dir: Path, case: str) -> None:
    label, spacing = _read_label(pyradiomics_dir, case)
    assert spacing[0] > 2 * spacing[1]  # really anisotropic: slices much thicker than pixels
    gt = label > 0
    _assert_equals_medpy(_perturbed(label), gt, spacing)


def test_lung2_tumour_equals_medpy(pyradiomics_dir: Path) -> None:
    label, spacing = _read_label(pyradiomics_dir, "lung2")
    assert label.shape == (61, 512, 512)
    gt, pred = label > 0, _perturbed(label)
    ours_full = class_metrics(pred, gt, spacing)[1]
    # medpy on all 16 Mvoxels takes ~7 s here; on a generous 10-voxel-margin box its value is the same
    # (outside the box is background), so medpy sees that box and ours sees the whole volume
    box = tuple(
        slice(max(s.start - 10, 0), s.stop + 10)
        for s in ndimage.find_objects((gt | pred).astype(np.uint8))[0]
    )
    _assert_equals_medpy(pred[box], gt[box], spacing)
    assert ours_full.hd95 == pytest.approx(medpy_binary.hd95(pred[box], gt[box], spacing), rel=1e-9)
    assert ours_full.hd95 > spacing[2]  # a two-voxel shift plus erosion is not a sub-voxel error
