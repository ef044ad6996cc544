"""Label-map rules: which files are segmentations, and which arrays are valid class-index maps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .errors import LabelError

__all__ = [
    "LABEL_NAME_PATTERN",
    "file_stem",
    "to_label_array",
    "looks_like_labels",
    "name_says_labels",
    "sidecar_class_names",
]

#: a file-name token that marks a segmentation: seg, segmentation, label(s), labelmap, mask, msk, gt, annot...
LABEL_NAME_PATTERN = re.compile(
    r"^(seg|segs|dseg|segment\w*|label\w*|lbl|masks?|msk|gt|groundtruth|annot\w*)\d*$"
)

_MAX_SAMPLE = 1 << 20  # voxels inspected by the data heuristic; enough to see a label map's few values
_MAX_CLASSES = 64  # more distinct values than this reads as an image, not a label map
_VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def file_stem(path: str | Path) -> str:
    """File name without its volume extension (``case_01.nii.gz`` -> ``case_01``), case kept."""
    name = Path(path).name
    for suffix in _VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def to_label_array(data: np.ndarray, path: str | Path = "<array>") -> np.ndarray:
    """Cast a class-index map to ``uint8`` (``uint16`` when a value exceeds 255), keeping its shape.

    Integer-valued floats are accepted because many tools save label maps as float32.

    Args:
        data: label map of any shape and real dtype.
        path: where it came from, for the error message.

    Raises:
        LabelError: NaN, negative, fractional or > 65535 values.
    """
    arr = np.asarray(data)
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise LabelError(f"{path} holds {arr.dtype} values; a label map needs integer class indices.")
    if arr.size == 0:
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        n_nan = int(np.count_nonzero(np.isnan(arr)))
        if n_nan:
            raise LabelError(
                f"{path} has {n_nan} NaN voxels; a label map needs integer class indices everywhere."
            )
        n_frac = int(np.count_nonzero(arr != np.round(arr)))
        if n_frac:
            raise LabelError(
                f"{path} has {n_frac} non-integer voxels; it looks like a probability or intensity image, "
                "not a label map of class indices."
            )
    low, high = arr.min(), arr.max()
    if low < 0:
        raise LabelError(
            f"{path} has negative values (down to {low:g}); label values must be 0 (background) or more."
        )
    if high > np.iinfo(np.uint16).max:
        raise LabelError(f"{path} has label values up to {high:g}; at most 65535 classes are supported.")
    dtype = np.uint8 if high <= np.iinfo(np.uint8).max else np.uint16
    return arr.astype(dtype, copy=False)


def looks_like_labels(data: np.ndarray) -> bool:
    """Whether an array looks like a label map: integral, non-negative values, and few of them.

    Only a strided sample of about a million voxels is inspected, so a huge volume costs little.
    """
    arr = np.asarray(data)
    if arr.dtype == bool:
        return True
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)) or arr.size == 0:
        return False
    step = max(1, int(round((arr.size / _MAX_SAMPLE) ** (1.0 / max(arr.ndim, 1)))))
    sample = arr[(slice(None, None, step),) * arr.ndim]
    if np.issubdtype(sample.dtype, np.floating):
        if not np.all(np.isfinite(sample)) or np.any(sample != np.round(sample)):
            return False
    if sample.min() < 0:
        return False
    return np.unique(sample).size <= _MAX_CLASSES


def name_says_labels(stem: str) -> bool:
    parts = stem.split("_")
    if len(parts) > 1 and all("-" in part for part in parts[:-1]) and "-" not in parts[-1]:
        # BIDS-style name (key-value entities, then a suffix naming the data type): only the suffix or a
        # seg-<name> entity speaks; "label-22" in "sub-01_label-22_ct" is an entity value, not a label map
        keys = {part.split("-", 1)[0] for part in parts[:-1]}
        return bool(LABEL_NAME_PATTERN.match(parts[-1])) or "seg" in keys
    return any(LABEL_NAME_PATTERN.match(token) for token in re.split(r"[^a-z0-9]+", stem) if token)


def sidecar_class_names(path: str | Path) -> dict[int, str] | None:
    """Class names from an optional JSON file beside the label map (``<stem>.json``).

    Accepted forms: ``{"1": "liver", ...}``, or that mapping under a ``"class_names"`` or ``"labels"``
    key. Anything else is ignored (the names are a convenience, never a reason to fail a read).
    """
    p = Path(path)
    sidecar = p.parent / f"{file_stem(p)}.json"
    if not sidecar.is_file():
        return None
    try:
        doc = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(doc, dict):
        for key in ("class_names", "labels"):
            if isinstance(doc.get(key), dict):
                doc = doc[key]
                break
    if not isinstance(doc, dict):
        return None
    names: dict[int, str] = {}
    for key, value in doc.items():
        try:
            names[int(key)] = str(value)
        except (TypeError, ValueError):
            continue
    return dict(sorted(names.items())) or None
