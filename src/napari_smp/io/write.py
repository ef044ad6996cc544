"""Write a ``(Z, Y, X)`` array back onto its source file's grid (same affine, voxel order and shape)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import VolumeError, reason_of
from .formats.dicom_seg import SEG_SUFFIX, refuse_non_dicom_source, write_dicom_seg
from .formats.itk import write_itk
from .formats.nifti import write_nifti
from .geometry import from_canonical
from .labels import to_label_array
from .meta import VolumeMeta
from .read import SUFFIX_FORMATS

__all__ = ["write_labels", "write_volume", "check_dicom_seg_output"]


def _output_format(p: Path) -> str:
    name = p.name.lower()
    for suffix, fmt in SUFFIX_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise VolumeError(f"cannot write {p}: use one of {', '.join(SUFFIX_FORMATS)} as the extension.")


def _write(
    path: str | Path, data: np.ndarray, meta: VolumeMeta, *, labels: bool, class_names: dict[int, str] | None = None
) -> Path:
    p = Path(path)
    fmt = _output_format(p)
    if data.shape != meta.shape:
        grid = meta.path or "its volume"
        raise VolumeError(
            f"cannot write {p}: the array has shape {data.shape} "
            f"but the grid of {grid} is {meta.shape} (Z, Y, X)."
        )
    if not p.parent.is_dir():
        raise VolumeError(f"cannot write {p}: the folder {p.parent} does not exist.")
    source = from_canonical(data, meta.source_affine)
    try:
        if fmt == "nifti":
            # restore trailing singleton axes the reader dropped, so the header's dims repeat exactly
            if int(np.prod(meta.source_shape)) == source.size:
                source = source.reshape(meta.source_shape)
            atomic_write(p, lambda tmp: write_nifti(tmp, source, meta, labels=labels))
        else:
            names = (class_names if class_names is not None else meta.class_names) if labels else None
            atomic_write(p, lambda tmp: write_itk(tmp, source, meta, names))
    except Exception as exc:  # a backend failure (disk full, permissions, ITK) becomes one sentence
        raise VolumeError(f"cannot write {p}: {reason_of(exc)}.") from exc
    return p


def check_dicom_seg_output(path: str | Path, meta: VolumeMeta) -> None:
    """Refuse a ``.dcm`` output for labels whose image is not a DICOM series, before any work is done.

    Raises:
        VolumeError: ``path`` ends in ``.dcm`` and ``meta`` does not come from a DICOM series folder.
    """
    if Path(path).name.lower().endswith(SEG_SUFFIX):
        refuse_non_dicom_source(path, meta)


def write_labels(
    path: str | Path, labels: np.ndarray, meta: VolumeMeta, class_names: dict[int, str] | None = None
) -> Path:
    """Write a ``(Z, Y, X)`` label map so the file lands exactly on the grid ``meta`` came from.

    The inverse of :func:`~napari_smp.io.read_labels`: axes are transposed and flipped back to the
    source's voxel order, and the file gets the source's affine (NIfTI: its own qform/sform and codes;
    NRRD/MetaImage: its origin, spacing and direction). The format follows the extension
    (``.nii.gz``, ``.nii``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``), whatever the source format was;
    ``.dcm`` writes a DICOM SEG referencing the source series, for a DICOM source only
    (:func:`~napari_smp.io.formats.dicom_seg.write_dicom_seg`).
    The write is atomic: on any failure no partial file is left and an existing file is untouched.

    Args:
        path: output file.
        labels: ``(Z, Y, X)`` class indices (integers, or integer-valued floats), shape ``meta.shape``.
        meta: geometry of the image the labels belong to.
        class_names: label value -> name for the file (NRRD segment fields, DICOM SEG segment labels);
            default ``meta.class_names``.

    Returns:
        The written path.

    Raises:
        LabelError: the array is not a valid label map.
        VolumeError: wrong shape, unsupported extension, missing folder, ``.dcm`` for a source that is
            not a DICOM series, or a failed write.
    """
    if Path(path).name.lower().endswith(SEG_SUFFIX):
        return write_dicom_seg(path, labels, meta, class_names)
    return _write(path, to_label_array(labels, "the label map to write"), meta, labels=True, class_names=class_names)


def write_volume(path: str | Path, array: np.ndarray, meta: VolumeMeta) -> Path:
    """Write a ``(Z, Y, X)`` image volume onto the grid of ``meta`` (see :func:`write_labels`).

    The voxel type is kept (bool becomes uint8).
    """
    if Path(path).name.lower().endswith(SEG_SUFFIX):
        raise VolumeError(f"cannot write {path}: a DICOM SEG holds label maps only; save the image as .nii.gz.")
    data = np.asarray(array)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    return _write(path, data, meta, labels=False)
