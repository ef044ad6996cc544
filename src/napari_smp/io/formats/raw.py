"""What a format backend hands to the reader: voxels in the file's own axis order plus geometry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RawVolume"]


@dataclass
class RawVolume:
    """A volume exactly as its file stores it, before reorientation.

    Attributes:
        data: array in the file's own axis order ``(I, J, K, ...)``.
        source_affine: ``(4, 4)`` map from ``(i, j, k, 1)`` to RAS+ mm.
        format: ``nifti``, ``nrrd``, ``mha``, ``mhd`` or ``dicom``.
        extra: JSON-friendly header fields a writer needs to reproduce the file's grid exactly.
        class_names: label value -> name, when the header carries names.
    """

    data: np.ndarray
    source_affine: np.ndarray
    format: str
    extra: dict[str, Any] = field(default_factory=dict)
    class_names: dict[int, str] | None = None
