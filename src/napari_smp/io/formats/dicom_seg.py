"""DICOM SEG output (highdicom) for label maps drawn on a DICOM series, so results can go back to a PACS.

The label map is taken back to the series' own voxel order with the same geometry path as every other
writer (:func:`~napari_smp.io.geometry.from_canonical`), and each source file is then matched to its
slice by solving its ImagePositionPatient through the grid's affine, so the SEG never relies on file
names or on the order ITK sorted the files in. Every frame references the source instance it lies on.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import VolumeError, reason_of
from ..geometry import LPS_TO_RAS, from_canonical
from ..labels import to_label_array
from ..meta import VolumeMeta
from .itk import dicom_series_files

__all__ = ["write_dicom_seg", "refuse_non_dicom_source", "SEG_SUFFIX", "SEG_SERIES_NUMBER_OFFSET"]

#: the file name ending that selects DICOM SEG output in :func:`~napari_smp.io.write_labels`
SEG_SUFFIX = ".dcm"
#: the SEG's SeriesNumber is the source's plus this (so it sorts after the image series in a viewer)
SEG_SERIES_NUMBER_OFFSET = 1000
#: a source file must lie within this fraction of a voxel of a grid slice (rows, columns and slice axis)
_POSITION_TOL_VOXELS = 0.1
_DIRECTION_TOL = 1e-3
_SPACING_RTOL = 1e-3
_LATERALITY = {"left", "right", "l", "r", "lt", "rt"}
#: common organ names (lower case, laterality removed) -> SNOMED CT keyword in pydicom's code dictionary
_SCT_ORGANS = {
    "liver": "Liver",
    "spleen": "Spleen",
    "kidney": "Kidney",
    "pancreas": "Pancreas",
    "stomach": "Stomach",
    "gallbladder": "Gallbladder",
    "aorta": "Aorta",
    "inferior_vena_cava": "InferiorVenaCava",
    "ivc": "InferiorVenaCava",
    "portal_vein": "PortalVein",
    "splenic_vein": "SplenicVein",
    "esophagus": "Esophagus",
    "oesophagus": "Esophagus",
    "duodenum": "Duodenum",
    "colon": "Colon",
    "small_bowel": "SmallIntestine",
    "small_intestine": "SmallIntestine",
    "adrenal_gland": "AdrenalGland",
    "urinary_bladder": "Bladder",
    "bladder": "Bladder",
    "lung": "Lung",
    "heart": "Heart",
    "brain": "Brain",
    "prostate": "Prostate",
    "uterus": "Uterus",
    "trachea": "Trachea",
    "spinal_cord": "SpinalCord",
    "vertebra": "Vertebra",
    "vertebrae": "Vertebra",
    "rib": "Rib",
    "sacrum": "Sacrum",
    "sternum": "Sternum",
    "skull": "Skull",
    "femur": "Femur",
}
_LO_MAX = 64  # SegmentLabel is a LO: at most 64 characters, no backslash or control characters


def write_dicom_seg(
    path: str | Path,
    labels: np.ndarray,
    meta: VolumeMeta,
    class_names: dict[int, str] | None = None,
    *,
    algorithm_type: str = "AUTOMATIC",
) -> Path:
    """Write a ``(Z, Y, X)`` label map as a DICOM SEG that references the DICOM series it was drawn on.

    One BINARY segment per label value that is present or named (segment numbers 1..n in value order;
    ``SegmentLabel`` = the class name, ``SegmentDescription`` = ``label <value>`` so the user's values
    survive), with a SNOMED CT "Anatomical Structure" code for common organ names and Slicer's generic
    "Tissue"/"Tissue" otherwise. Empty frames are omitted; each frame references the source instance
    whose ImagePositionPatient it shares. The write is atomic.

    Args:
        path: output file (``.dcm``).
        labels: ``(Z, Y, X)`` class indices in our RAS+ array order, shape ``meta.shape``.
        meta: geometry of a volume read from a DICOM series folder (``meta.format == "dicom"``).
        class_names: label value -> name; default ``meta.class_names``.
        algorithm_type: ``AUTOMATIC`` or ``SEMIAUTOMATIC`` (identified as napari-smp and its version),
            or ``MANUAL``.

    Returns:
        The written path.

    Raises:
        LabelError: the array is not a valid label map.
        VolumeError: the source is not a DICOM series, the label map is not on its grid, the series'
            files no longer match that grid, or the write failed.
    """
    p = Path(path)
    refuse_non_dicom_source(p, meta)
    data = to_label_array(labels, "the label map to write")
    if data.shape != meta.shape:
        raise VolumeError(
            f"cannot write {p}: the label map has shape {data.shape} but the grid of {meta.path} is "
            f"{meta.shape} (Z, Y, X)."
        )
    if not p.parent.is_dir():
        raise VolumeError(f"cannot write {p}: the folder {p.parent} does not exist.")
    names = {int(k): str(v) for k, v in (class_names if class_names is not None else meta.class_names or {}).items()}
    values = sorted({int(v) for v in np.unique(data) if v} | {v for v in names if v > 0})
    if not values:
        raise VolumeError(f"cannot write {p}: the label map is empty and names no class, so there is no segment.")

    sources = _source_datasets(p, meta)
    source = from_canonical(data, meta.source_affine)  # (I, J, K): columns, rows, slices of the series
    slices = _slice_of_each_file(p, meta, sources, source.shape)
    ordered = [sources[n] for n in np.argsort(slices)]
    lut = np.zeros(int(values[-1]) + 1, dtype=np.uint8 if len(values) < 256 else np.uint16)
    lut[values] = np.arange(1, len(values) + 1)
    frames = np.ascontiguousarray(lut[source].transpose(2, 1, 0))  # (K, J, I): one (rows, columns) frame per file

    try:
        seg = _segmentation(ordered, frames, values, names, algorithm_type)
        atomic_write(p, lambda tmp: seg.save_as(tmp))
    except VolumeError:
        raise
    except Exception as exc:  # highdicom/pydicom refusals and disk errors become one sentence
        raise VolumeError(f"cannot write {p}: {reason_of(exc)}.") from exc
    return p


def refuse_non_dicom_source(path: str | Path, meta: VolumeMeta) -> None:
    """Raise :class:`VolumeError` unless ``meta`` comes from a DICOM series folder (a SEG must reference it)."""
    if meta.format != "dicom" or not meta.path:
        source = f"a {meta.format} volume" if meta.format != "array" else "an in-memory grid"
        raise VolumeError(
            f"cannot write {path}: DICOM SEG needs a DICOM source series, and these labels belong to {source} "
            "(save them as .nii.gz or .nrrd instead)."
        )


def _source_datasets(p: Path, meta: VolumeMeta) -> list:
    """Headers of the series the reader used (the largest in the folder), with their identities complete."""
    import pydicom
    from pydicom.uid import generate_uid

    folder = Path(meta.path)
    series = dicom_series_files(folder) if folder.is_dir() else []
    if not series:
        raise VolumeError(f"cannot write {p}: the source series {folder} can no longer be read.")
    try:
        datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in series[0]]
    except Exception as exc:
        raise VolumeError(
            f"cannot write {p}: a file of the source series {folder} cannot be read ({reason_of(exc)})."
        ) from exc
    if any(int(getattr(ds, "NumberOfFrames", 1) or 1) > 1 for ds in datasets):
        raise VolumeError(
            f"cannot write {p}: {folder} holds multi-frame DICOM, and a SEG is made for single-frame series only."
        )
    for ds in datasets:  # anonymisers blank these in the data set but keep them in the file meta
        file_meta = getattr(ds, "file_meta", None)
        for own, stored in (
            ("SOPClassUID", "MediaStorageSOPClassUID"),
            ("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
        ):
            if not str(getattr(ds, own, "") or "") and file_meta is not None and getattr(file_meta, stored, ""):
                setattr(ds, own, getattr(file_meta, stored))
        if not str(getattr(ds, "SOPInstanceUID", "") or ""):
            raise VolumeError(
                f"cannot write {p}: a file of {folder} has no SOPInstanceUID, so a SEG cannot reference it."
            )
    instances = sorted(str(ds.SOPInstanceUID) for ds in datasets)
    missing = []
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        given = {str(getattr(ds, keyword, "") or "") for ds in datasets}
        if given == {""}:
            missing.append(keyword)
            stand_in = generate_uid(entropy_srcs=[keyword, *instances])  # the same on every write
            for ds in datasets:
                setattr(ds, keyword, stand_in)
    if missing:
        warnings.warn(
            f"{folder} has no {', '.join(missing)} (anonymised?); the SEG uses stand-ins derived from its "
            "SOP instance UIDs, so a PACS files it apart from the source images.",
            UserWarning,
            stacklevel=3,
        )
    return datasets


def _slice_of_each_file(p: Path, meta: VolumeMeta, datasets: list, shape: tuple[int, ...]) -> np.ndarray:
    """Slice index ``k`` of the ``(I, J, K)`` grid for each file, checked against its position and orientation."""
    n_i, n_j, n_k = shape
    mismatch = f"cannot write {p}: the files of {meta.path} no longer match the grid it was read with"
    if len(datasets) != n_k:
        raise VolumeError(f"{mismatch} ({len(datasets)} files for {n_k} slices).")
    affine = np.asarray(meta.source_affine, dtype=float)
    inverse = np.linalg.inv(affine)
    axes = affine[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    unit = axes / spacing
    slices = np.empty(len(datasets), dtype=int)
    for n, ds in enumerate(datasets):
        try:
            rows, cols = int(ds.Rows), int(ds.Columns)
            orient = np.asarray([float(v) for v in ds.ImageOrientationPatient], dtype=float)
            position = np.asarray([float(v) for v in ds.ImagePositionPatient], dtype=float)
            pixel = np.asarray([float(v) for v in ds.PixelSpacing], dtype=float)
        except (AttributeError, TypeError, ValueError) as exc:
            raise VolumeError(f"{mismatch} (a file lacks {reason_of(exc)}).") from exc
        if (rows, cols) != (n_j, n_i):
            raise VolumeError(f"{mismatch} (a file is {rows}x{cols} pixels, the grid {n_j}x{n_i}).")
        ras_row = LPS_TO_RAS[:3, :3] @ orient[:3]  # direction of increasing column index: grid axis i
        ras_col = LPS_TO_RAS[:3, :3] @ orient[3:]  # direction of increasing row index: grid axis j
        if not (
            np.allclose(ras_row, unit[:, 0], atol=_DIRECTION_TOL)
            and np.allclose(ras_col, unit[:, 1], atol=_DIRECTION_TOL)
        ):
            raise VolumeError(f"{mismatch} (a file's ImageOrientationPatient differs from the grid's axes).")
        # PixelSpacing is (between rows, between columns): the lengths of grid axes j and i
        if not np.allclose(pixel, spacing[[1, 0]], rtol=_SPACING_RTOL):
            raise VolumeError(f"{mismatch} (a file's PixelSpacing differs from the grid's).")
        index = inverse @ np.append(LPS_TO_RAS[:3, :3] @ position, 1.0)
        k = int(round(index[2]))
        if (
            np.abs(index[:2]).max() > _POSITION_TOL_VOXELS
            or abs(index[2] - k) > _POSITION_TOL_VOXELS
            or not 0 <= k < n_k
        ):
            raise VolumeError(f"{mismatch} (a file's ImagePositionPatient lies on no slice of the grid).")
        slices[n] = k
    if len(set(slices.tolist())) != n_k:
        raise VolumeError(f"{mismatch} (two files lie on one slice).")
    return slices


def _property_codes(name: str | None):
    """``(category, type)`` codes: SNOMED CT Anatomical Structure + the organ for common organ names."""
    from pydicom.sr.codedict import codes

    tokens = [t for t in re.split(r"[^a-z0-9]+", (name or "").lower()) if t and t not in _LATERALITY]
    keyword = _SCT_ORGANS.get("_".join(tokens))
    if keyword is not None:
        try:
            return codes.SCT.AnatomicalStructure, getattr(codes.SCT, keyword)
        except AttributeError:  # an older pydicom without this code
            pass
    return codes.SCT.Tissue, codes.SCT.Tissue


def _segment_label(name: str | None, value: int) -> str:
    text = re.sub(r"[\x00-\x1f\\]+", " ", name or "").strip()
    return (text or f"label {value}")[:_LO_MAX]


def _segmentation(datasets: list, frames: np.ndarray, values: list[int], names: dict[int, str], algorithm_type: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from ... import __version__

    kind = hd.seg.SegmentAlgorithmTypeValues(str(algorithm_type).upper())
    algorithm = None
    if kind != hd.seg.SegmentAlgorithmTypeValues.MANUAL:
        algorithm = hd.AlgorithmIdentificationSequence(
            name="napari-smp", version=__version__, family=codes.cid7162.ArtificialIntelligence
        )
    descriptions = []
    for number, value in enumerate(values, start=1):
        category, prop = _property_codes(names.get(value))
        item = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=_segment_label(names.get(value), value),
            segmented_property_category=category,
            segmented_property_type=prop,
            algorithm_type=kind,
            algorithm_identification=algorithm,
        )
        item.SegmentDescription = f"label {value}"
        descriptions.append(item)
    try:
        source_number = int(getattr(datasets[0], "SeriesNumber", None) or 0)
    except (TypeError, ValueError):
        source_number = 0
    return hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=max(source_number, 0) + SEG_SERIES_NUMBER_OFFSET,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="napari-smp",
        manufacturer_model_name="napari-smp",
        software_versions=__version__,
        device_serial_number="0",
        content_label="NAPARI_SMP",
        content_description="napari-smp segmentation",
        series_description="napari-smp segmentation",
        omit_empty_frames=True,
    )
