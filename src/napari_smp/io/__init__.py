"""Reading and writing volumes with their geometry.

In memory every volume is ``(Z, Y, X)`` in the closest RAS+ orientation, with spacing in mm in the
same order; :class:`VolumeMeta` carries the way back to the source file's grid.
"""

from .dataset import DatasetCase, find_cases
from .errors import LabelError, VolumeError
from .formats.dicom_seg import write_dicom_seg
from .meta import META_KEY, VolumeMeta
from .phantom import Phantom, make_phantom
from .read import is_label_file, read_labels, read_volume
from .write import check_dicom_seg_output, write_labels, write_volume

__all__ = [
    "META_KEY",
    "VolumeMeta",
    "VolumeError",
    "LabelError",
    "read_volume",
    "read_labels",
    "write_labels",
    "write_volume",
    "write_dicom_seg",
    "check_dicom_seg_output",
    "is_label_file",
    "make_phantom",
    "Phantom",
    "DatasetCase",
    "find_cases",
]
