"""NRRD and MetaImage through SimpleITK: LPS geometry, round trips, class names, cross-format writes."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from io_files import save_itk, save_nifti

from napari_smp.io import read_labels, read_volume, write_labels, write_volume

# i -> posterior, j -> inferior, k -> left: a permuted and flipped (coronal-like) grid in LPS terms
COR_DIRECTION = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)


def _geometry(img: sitk.Image) -> tuple:
    return img.GetOrigin(), img.GetSpacing(), img.GetDirection(), img.GetSize()


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".nhdr", ".mhd"])
def test_itk_round_trip_is_exact(tmp_path: Path, label_block: np.ndarray, suffix: str) -> None:
    src = save_itk(
        tmp_path / f"organs_label{suffix}",
        label_block.astype(np.uint8),
        (0.6, 0.7, 3.0),
        (5, -3, 9),
        COR_DIRECTION,
    )
    labels, meta = read_labels(src)
    out = write_labels(tmp_path / f"out{suffix}", labels, meta)
    before, after = sitk.ReadImage(str(src)), sitk.ReadImage(str(out))
    assert _geometry(after) == _geometry(before)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(after), sitk.GetArrayFromImage(before))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_lps_itk_file_matches_ras_nifti(
    tmp_path: Path, label_block: np.ndarray, ras_affine: np.ndarray
) -> None:
    nii = save_nifti(tmp_path / "a_seg.nii.gz", label_block, ras_affine)
    # the same grid in ITK terms: identity direction means i -> L, so the data is flipped along i and j
    nx, ny, _ = label_block.shape
    far = ras_affine @ np.array([nx - 1, ny - 1, 0, 1.0])
    lps_origin = (-far[0], -far[1], far[2])
    mha = save_itk(
        tmp_path / "a_seg.mha", label_block[::-1, ::-1, :].astype(np.uint8), (0.8, 0.7, 2.5), lps_origin
    )
    a, meta_a = read_labels(nii)
    b, meta_b = read_labels(mha)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(meta_a.affine, meta_b.affine, atol=1e-5)


def test_nrrd_in_ras_space_reads_like_lps(tmp_path: Path) -> None:
    values = np.arange(24, dtype=np.uint8)
    header = (
        "NRRD0004\ntype: uint8\ndimension: 3\nspace: right-anterior-superior\nsizes: 2 3 4\n"
        "space directions: (1,0,0) (0,2,0) (0,0,3)\nkinds: domain domain domain\nendian: little\n"
        "encoding: raw\nspace origin: (5,6,7)\n\n"
    )
    (tmp_path / "ras.nrrd").write_bytes(header.encode() + values.tobytes())
    data, meta = read_volume(tmp_path / "ras.nrrd")
    # file order is x fastest: values[i + 2 j + 6 k]; RAS already, so (Z, Y, X)[k, j, i]
    np.testing.assert_array_equal(data, values.reshape(4, 3, 2))
    np.testing.assert_allclose(meta.affine[:3, 3], [5, 6, 7])
    assert meta.spacing == pytest.approx((3.0, 2.0, 1.0))


def test_slicer_segment_names_are_read_and_written(tmp_path: Path) -> None:
    img = sitk.GetImageFromArray(np.array([[[0, 1], [2, 2]]] * 2, dtype=np.uint8))
    img.SetMetaData("Segment0_Name", "liver")
    img.SetMetaData("Segment0_LabelValue", "1")
    img.SetMetaData("Segment1_Name", "spleen")
    img.SetMetaData("Segment1_LabelValue", "2")
    sitk.WriteImage(img, str(tmp_path / "case.seg.nrrd"))
    labels, meta = read_labels(tmp_path / "case.seg.nrrd")
    assert meta.class_names == {1: "liver", 2: "spleen"}
    out = write_labels(tmp_path / "copy.nrrd", labels, meta)
    assert read_labels(out)[1].class_names == {1: "liver", 2: "spleen"}


def test_sidecar_json_names(tmp_path: Path, label_block: np.ndarray, ras_affine: np.ndarray) -> None:
    src = save_nifti(tmp_path / "ct_seg.nii.gz", label_block, ras_affine)
    (tmp_path / "ct_seg.json").write_text(json.dumps({"labels": {"1": "liver", "3": "aorta", "x": "junk"}}))
    assert read_labels(src)[1].class_names == {1: "liver", 3: "aorta"}


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_nifti_source_written_as_itk_keeps_world_geometry(
    tmp_path: Path, label_block: np.ndarray, lps_affine: np.ndarray, suffix: str
) -> None:
    src = save_nifti(tmp_path / "src_seg.nii.gz", label_block, lps_affine)
    labels, meta = read_labels(src)
    out = write_labels(tmp_path / f"out{suffix}", labels, meta)
    again, meta_again = read_labels(out)
    np.testing.assert_array_equal(again, labels)
    np.testing.assert_allclose(meta_again.affine, meta.affine, atol=1e-6)


def test_itk_source_written_as_nifti_keeps_world_geometry(tmp_path: Path, label_block: np.ndarray) -> None:
    src = save_itk(
        tmp_path / "src.mha", label_block.astype(np.int16), (0.6, 0.7, 3.0), (5, -3, 9), COR_DIRECTION
    )
    image, meta = read_volume(src)
    out = write_volume(tmp_path / "copy.nii.gz", image, meta)
    again, meta_again = read_volume(out)
    np.testing.assert_array_equal(again, image)
    assert again.dtype == np.int16
    np.testing.assert_allclose(meta_again.affine, meta.affine, atol=1e-5)
    np.testing.assert_allclose(nib.load(out).affine, meta.source_affine, atol=1e-5)
