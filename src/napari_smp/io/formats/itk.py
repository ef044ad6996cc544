"""SimpleITK backend: NRRD, MetaImage (.mha/.mhd) and DICOM series folders.

ITK works in LPS+ world coordinates and orders an image's axes ``(i, j, k)`` with ``i`` fastest;
``GetArrayFromImage`` returns ``(k, j, i)``. Here arrays are handed out in ``(i, j, k)`` order like
nibabel's, with a RAS+ affine, so one code path reorients every format.
"""

from __future__ import annotations

import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..geometry import affine_from_itk, itk_from_affine
from ..meta import VolumeMeta
from .raw import RawVolume

__all__ = ["read_itk", "read_dicom_series", "read_series", "write_itk", "dicom_series_files"]

_SEGMENT_NAME = re.compile(r"^Segment(\d+)_Name$")
#: files per decoding thread at least: a series is read in parallel chunks only when each gets this many
#: (compressed slices, JPEG 2000 as in the TotalSegmentator example, take about 30 ms each to decode, and
#: napari calls a reader on its main thread; SimpleITK releases the GIL while it reads)
_FILES_PER_THREAD = 8
_MAX_THREADS = 8


def _to_raw(img: sitk.Image, fmt: str) -> RawVolume:
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(
            f"it has {img.GetNumberOfComponentsPerPixel()} values per voxel (colour or vector data)"
        )
    dim = img.GetDimension()
    data = sitk.GetArrayFromImage(img)
    data = data.transpose(tuple(range(data.ndim - 1, -1, -1)))  # (k, j, i) -> (i, j, k)
    origin, spacing = img.GetOrigin(), img.GetSpacing()
    direction = np.asarray(img.GetDirection(), dtype=float).reshape(dim, dim)
    if dim < 3:  # the reader reports 2D files; give it a well-formed 3D affine to carry
        pad = 3 - dim
        origin, spacing = tuple(origin) + (0.0,) * pad, tuple(spacing) + (1.0,) * pad
        direction = np.pad(direction, ((0, pad), (0, pad)))
        direction[dim:, dim:] = np.eye(pad)
    direction3 = direction[:3, :3]
    affine = affine_from_itk(origin[:3], spacing[:3], tuple(direction3.ravel()))
    extra = {
        "itk_origin": [float(v) for v in origin[:3]],
        "itk_spacing": [float(v) for v in spacing[:3]],
        "itk_direction": [float(v) for v in direction3.ravel()],
    }
    return RawVolume(
        data=data, source_affine=affine, format=fmt, extra=extra, class_names=_segment_names(img)
    )


def _segment_names(img: sitk.Image) -> dict[int, str] | None:
    """Class names from 3D Slicer ``Segment{i}_Name`` / ``Segment{i}_LabelValue`` header fields."""
    names: dict[int, str] = {}
    keys = set(img.GetMetaDataKeys())
    for key in keys:
        match = _SEGMENT_NAME.match(key)
        if not match:
            continue
        index = int(match.group(1))
        value_key = f"Segment{index}_LabelValue"
        try:
            value = int(img.GetMetaData(value_key)) if value_key in keys else index + 1
        except ValueError:
            continue
        names[value] = img.GetMetaData(key)
    return dict(sorted(names.items())) or None


def read_itk(path: Path, fmt: str) -> RawVolume:
    """Read one NRRD or MetaImage file (a detached header finds its data file itself)."""
    return _to_raw(sitk.ReadImage(str(path)), fmt)


def dicom_series_files(folder: Path) -> list[list[str]]:
    """File lists of the DICOM series in ``folder`` (not recursive), largest series first."""
    reader = sitk.ImageSeriesReader
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK prints "No Series were found" on stderr itself
    try:
        series = [
            list(reader.GetGDCMSeriesFileNames(str(folder), sid)) for sid in reader.GetGDCMSeriesIDs(str(folder))
        ]
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)
    return sorted(series, key=len, reverse=True)


def read_dicom_series(folder: Path) -> RawVolume:
    """Read the DICOM series of ``folder`` with the most files; warn when there are several."""
    series = dicom_series_files(folder)
    if not series:
        raise ValueError("it holds no DICOM series")
    if len(series) > 1:
        sizes = ", ".join(str(len(files)) for files in series)
        warnings.warn(
            f"{folder} holds {len(series)} DICOM series ({sizes} files); reading the largest one.",
            UserWarning,
            stacklevel=3,
        )
    return _to_raw(read_series(series[0]), "dicom")


def read_series(files: list[str], threads: int | None = None) -> sitk.Image:
    """One series as a 3D image, as ITK's series reader gives it, contiguous chunks decoded in threads.

    The geometry is the one ITK's reader computes for the whole list: the first file's origin and
    direction, the in-plane spacing, and the slice spacing as the distance from the first to the last
    file's position over ``len(files) - 1``. Chunks that disagree (pixel type, size) are read again
    as one series, so the result never depends on the split.

    Args:
        files: the series' files in slice order (``dicom_series_files``).
        threads: decoding threads (None: the usable CPUs, at most 8, and at least 8 files each).
    """
    if threads is None:
        threads = min(len(os.sched_getaffinity(0)), _MAX_THREADS)
    threads = max(1, min(threads, len(files) // _FILES_PER_THREAD))
    if threads < 2:
        return _read_files(files)
    chunks = [list(c) for c in np.array_split(np.array(files, dtype=object), threads)]
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(_read_files, chunks))
    first, last = parts[0], parts[-1]
    same = {(p.GetPixelID(), p.GetSize()[:2], p.GetDirection()) for p in parts}
    if len(same) > 1 or first.GetDimension() != 3:
        return _read_files(files)
    end = np.array(last.TransformIndexToPhysicalPoint((0, 0, last.GetSize()[2] - 1)))  # the last file's position
    step = float(np.linalg.norm(end - np.array(first.GetOrigin()))) / (len(files) - 1)
    image = sitk.GetImageFromArray(np.concatenate([sitk.GetArrayViewFromImage(p) for p in parts], axis=0))
    image.SetOrigin(first.GetOrigin())
    image.SetDirection(first.GetDirection())
    image.SetSpacing((*first.GetSpacing()[:2], step))
    return image


def _read_files(files: list[str]) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    return reader.Execute()


def write_itk(
    path: Path, data: np.ndarray, meta: VolumeMeta, class_names: dict[int, str] | None = None
) -> None:
    """Write a 3D array in file order ``(I, J, K)`` with the source grid's origin, spacing and direction.

    An ITK-read source repeats its recorded LPS geometry exactly; other sources are converted from
    ``meta.source_affine``. Class names go into Slicer-style ``Segment{i}_*`` fields (NRRD keeps them).
    """
    if meta.format in ("nrrd", "mha", "mhd", "dicom") and "itk_origin" in meta.extra:
        origin = tuple(meta.extra["itk_origin"])
        spacing = tuple(meta.extra["itk_spacing"])
        direction = tuple(meta.extra["itk_direction"])
    else:
        origin, spacing, direction = itk_from_affine(meta.source_affine)
    img = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    img.SetOrigin(origin)
    img.SetSpacing(spacing)
    img.SetDirection(direction)
    for index, (value, name) in enumerate(sorted((class_names or {}).items())):
        img.SetMetaData(f"Segment{index}_Name", str(name))
        img.SetMetaData(f"Segment{index}_LabelValue", str(int(value)))
    sitk.WriteImage(img, str(path), True)
