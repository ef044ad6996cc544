"""Format backends: each reads a file as stored (voxels in the file's axis order plus its geometry) and
writes an array onto a recorded grid. ``io.read`` and ``io.write`` choose the backend by suffix."""

from .itk import read_dicom_series, read_itk, write_itk
from .nifti import read_nifti, write_nifti
from .raw import RawVolume

__all__ = ["RawVolume", "read_dicom_series", "read_itk", "read_nifti", "write_itk", "write_nifti"]
