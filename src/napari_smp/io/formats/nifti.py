"""NIfTI-1/2 backend (nibabel): read a file as stored, write an array onto a recorded grid."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import nibabel as nib
import numpy as np

from ..meta import VolumeMeta
from .raw import RawVolume

__all__ = ["read_nifti", "write_nifti"]

_HEADER_CLASSES = {"Nifti1Image": nib.Nifti1Image, "Nifti2Image": nib.Nifti2Image}


def read_nifti(path: Path) -> RawVolume:
    """Read a ``.nii``/``.nii.gz`` file: voxels ``(I, J, K, ...)`` with scaling applied, best affine.

    The whole binary header is kept (base64) so that a written label map repeats its qform/sform,
    codes and units bit for bit.
    """
    img = nib.load(str(path))
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise ValueError(f"it is a {type(img).__name__}, not a single-file NIfTI image")
    # dataobj applies scl_slope/inter but keeps integer storage when there is no scaling
    data = np.asanyarray(img.dataobj)
    extra = {
        "nifti_class": type(img).__name__,
        "nifti_header": base64.b64encode(img.header.binaryblock).decode("ascii"),
    }
    return RawVolume(data=data, source_affine=np.array(img.affine, dtype=float), format="nifti", extra=extra)


def _source_header(meta: VolumeMeta) -> tuple[type[nib.Nifti1Image], nib.Nifti1Header | None]:
    klass = _HEADER_CLASSES.get(str(meta.extra.get("nifti_class", "")), nib.Nifti1Image)
    blob = meta.extra.get("nifti_header")
    if meta.format != "nifti" or not blob:
        return klass, None
    header = klass.header_class.from_fileobj(io.BytesIO(base64.b64decode(blob)))
    return klass, header


def write_nifti(path: Path, data: np.ndarray, meta: VolumeMeta, *, labels: bool) -> None:
    """Write ``data`` (file order, shape ``meta.source_shape``) so it lands on the source grid.

    A NIfTI source keeps its own header (qform, sform, codes, units); any other source gets a fresh
    header whose sform and qform both hold ``meta.source_affine`` with code 1 (scanner).
    """
    klass, header = _source_header(meta)
    if header is None:
        img = klass(data, np.asarray(meta.source_affine, dtype=float))
        img.header.set_sform(meta.source_affine, code=1)
        try:
            img.header.set_qform(meta.source_affine, code=1)
        except Exception:  # a sheared affine has no quaternion form; the sform alone carries it
            img.header.set_qform(None, code=0)
    else:
        header.set_data_dtype(data.dtype)
        # the source's intensity scaling and display window mean nothing for the new voxels
        header.set_slope_inter(1.0, 0.0)
        header["cal_min"] = 0.0
        header["cal_max"] = 0.0
        img = klass(data, None, header=header)
    img.header.set_data_dtype(data.dtype)
    img.header.set_intent("label" if labels else "none")
    nib.save(img, str(path))
