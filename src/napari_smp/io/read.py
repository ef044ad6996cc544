"""Read a volume or label map from NIfTI, NRRD, MetaImage or a DICOM folder into ``(Z, Y, X)`` RAS+."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import VolumeError, reason_of
from .formats.itk import read_dicom_series, read_itk
from .formats.nifti import read_nifti
from .formats.raw import RawVolume
from .geometry import is_oblique, spacing_of, to_canonical
from .labels import file_stem, looks_like_labels, name_says_labels, sidecar_class_names, to_label_array
from .meta import VolumeMeta

__all__ = ["SUFFIX_FORMATS", "FORMAT_NAMES", "detect_format", "read_volume", "read_labels", "is_label_file"]

#: file suffix -> format key (a folder is a DICOM series)
SUFFIX_FORMATS = {
    ".nii.gz": "nifti",
    ".nii": "nifti",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
    ".mha": "mha",
    ".mhd": "mhd",
}
FORMAT_NAMES = {
    "nifti": "NIfTI",
    "nrrd": "NRRD",
    "mha": "MetaImage",
    "mhd": "MetaImage",
    "dicom": "a DICOM series",
}

# oblique files are read anyway; say so once per file, not on every reload
_OBLIQUE_WARNED: set[str] = set()


def detect_format(path: str | Path) -> str:
    """Format key of ``path``: ``nifti``, ``nrrd``, ``mha``, ``mhd`` by suffix, ``dicom`` for a folder.

    Raises:
        VolumeError: the suffix is not a supported volume format.
    """
    p = Path(path)
    if p.is_dir():
        return "dicom"
    name = p.name.lower()
    for suffix, fmt in SUFFIX_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    supported = ", ".join(SUFFIX_FORMATS)
    raise VolumeError(f"{p} is not a supported volume format (use {supported}, or a DICOM folder).")


def _read_raw(p: Path) -> RawVolume:
    if not p.exists():
        raise VolumeError(f"{p} does not exist.")
    fmt = detect_format(p)
    try:
        if fmt == "nifti":
            return read_nifti(p)
        if fmt == "dicom":
            return read_dicom_series(p)
        return read_itk(p, fmt)
    except VolumeError:
        raise
    except Exception as exc:  # every backend failure becomes one sentence naming the file
        raise VolumeError(f"{p} could not be read as {FORMAT_NAMES[fmt]}: {reason_of(exc)}.") from exc


def _check_voxels(data: np.ndarray, p: Path, allow_nan: bool) -> np.ndarray:
    """Drop trailing singleton axes, refuse what is not one real-valued 3D volume, float64 -> float32."""
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim < 3:
        raise VolumeError(f"{p} is a {data.ndim}D image of shape {data.shape}; napari-smp needs a 3D volume.")
    if data.ndim > 3:
        raise VolumeError(
            f"{p} is {data.ndim}D with shape {data.shape}; napari-smp needs one 3D volume "
            "(extract a single channel or time point first)."
        )
    if data.dtype.fields is not None or not (data.dtype == bool or np.issubdtype(data.dtype, np.number)):
        raise VolumeError(
            f"{p} stores {data.dtype} voxels (colour or structured data); a scalar volume is needed."
        )
    if np.issubdtype(data.dtype, np.complexfloating):
        raise VolumeError(f"{p} stores complex voxels; save the magnitude image instead.")
    if 0 in data.shape:
        raise VolumeError(f"{p} has an empty grid of shape {data.shape}.")
    if not data.dtype.isnative:  # big-endian files (old Analyze/NIfTI writers); torch refuses them
        data = data.astype(data.dtype.newbyteorder("="))
    if np.issubdtype(data.dtype, np.floating):
        if data.dtype != np.float32:
            data = data.astype(np.float32)
        n_nan = int(np.count_nonzero(np.isnan(data)))
        if n_nan and not allow_nan:
            raise VolumeError(
                f"{p} has {n_nan} NaN voxels; fill them (e.g. with the background value) and save the "
                "volume again."
            )
    return data


def read_volume(path: str | Path, allow_nan: bool = False) -> tuple[np.ndarray, VolumeMeta]:
    """Read an image volume as a ``(Z, Y, X)`` array in the closest RAS+ orientation.

    Index 0 walks axial slices from inferior to superior, index 1 posterior to anterior, index 2
    left to right. Integer voxels keep their stored type; floating voxels become float32. An oblique
    grid is read on its closest canonical axes (``meta.oblique`` is set and a warning given once).

    Args:
        path: ``.nii``/``.nii.gz``, ``.nrrd``/``.nhdr``, ``.mha``/``.mhd`` file, or a DICOM series folder
            (with several series, the one with the most files is read and a warning given).
        allow_nan: keep NaN voxels instead of refusing the file.

    Returns:
        ``(data, meta)``: the ``(Z, Y, X)`` array and its geometry (spacing in mm in ``(Z, Y, X)``).

    Raises:
        VolumeError: missing, unreadable or unsupported file, not 3D, NaN voxels, degenerate affine.
    """
    p = Path(path)
    raw = _read_raw(p)
    data = _check_voxels(np.asarray(raw.data), p, allow_nan)
    try:
        zyx, affine = to_canonical(data, raw.source_affine)
    except ValueError as exc:
        raise VolumeError(f"{p} has an unusable affine: {exc}.") from exc
    oblique = is_oblique(raw.source_affine)
    key = str(p.resolve())
    if oblique and key not in _OBLIQUE_WARNED:
        _OBLIQUE_WARNED.add(key)
        warnings.warn(
            f"{p} is oblique (its axes are tilted against the patient axes); it is shown on the closest "
            "canonical axes and written back on its own grid.",
            UserWarning,
            stacklevel=2,
        )
    meta = VolumeMeta(
        spacing=spacing_of(affine),
        affine=affine,
        source_affine=np.asarray(raw.source_affine, dtype=float),
        source_shape=tuple(int(n) for n in raw.data.shape),
        oblique=oblique,
        format=raw.format,
        path=str(p),
        class_names=raw.class_names,
        extra=raw.extra,
    )
    return zyx, meta


def read_labels(path: str | Path) -> tuple[np.ndarray, VolumeMeta]:
    """Read a label map as a ``(Z, Y, X)`` ``uint8`` array (``uint16`` when a value exceeds 255).

    Integer-valued floats are accepted and cast. Class names come from the header (3D Slicer
    ``Segment{i}_Name``/``_LabelValue`` fields) or, failing that, a ``<stem>.json`` file beside it.

    Raises:
        VolumeError: the file cannot be read as a 3D volume (see :func:`read_volume`).
        LabelError: NaN, negative, fractional or > 65535 values.
    """
    data, meta = read_volume(path, allow_nan=True)
    labels = to_label_array(data, Path(path))
    if meta.class_names is None:
        meta.class_names = sidecar_class_names(path)
    return labels, meta


def is_label_file(path: str | Path, data: np.ndarray | None = None) -> bool:
    """Heuristic: is this file a segmentation rather than an image?

    True when a token of the file name marks a segmentation (``liver_seg.nii.gz``,
    ``case01-label.nrrd``, ``mask.mha``; for BIDS-style names the suffix or a ``seg-`` entity:
    ``sub-01_seg-vert_msk.nii.gz``, ``sub-01_dseg.nii.gz``, but not ``sub-01_label-22_ct.nii.gz``),
    or when the voxels are integers with few distinct values. Pass ``data`` (any axis order) when it
    is already in memory; otherwise the file is read for the data test.
    """
    if name_says_labels(file_stem(path).lower()):
        return True
    if data is None:
        data, _ = read_volume(path, allow_nan=True)
    return looks_like_labels(data)
