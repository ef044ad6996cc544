"""Dataset folders in the Medical Segmentation Decathlon / nnU-Net layout: ``imagesTr/`` paired with
``labelsTr/`` (MSD names, or nnU-Net's ``_0000`` channel suffix on the images), class names from
``dataset.json``. Every volume format ``read_volume`` knows counts (one suffix table, ``SUFFIX_FORMATS``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import VolumeError
from .read import SUFFIX_FORMATS

__all__ = ["DatasetCase", "find_cases", "dataset_class_names"]


@dataclass
class DatasetCase:
    """One training case: its name and the image and label files."""

    name: str
    image: Path
    label: Path


def _stem(path: Path) -> str | None:
    """The file name without its volume suffix; None when it is not a volume file."""
    name = path.name
    for suffix in SUFFIX_FORMATS:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


def _volumes(folder: Path) -> dict[str, Path]:
    found = {}
    for p in sorted(folder.iterdir()):
        stem = _stem(p)
        if stem is not None and not p.name.startswith("."):
            found[stem] = p
    return found


def find_cases(root: str | Path) -> tuple[list[DatasetCase], dict[int, str] | None]:
    """Pair ``imagesTr/*`` with ``labelsTr/*``.

    Returns:
        The cases, sorted by image file name, and the class names of ``dataset.json`` when present.

    Raises:
        VolumeError: not a dataset folder, no image, or an image without its label file.
    """
    root = Path(root)
    images, labels = root / "imagesTr", root / "labelsTr"
    if not images.is_dir() or not labels.is_dir():
        raise VolumeError(f"{root} is not a dataset folder: it needs imagesTr/ and labelsTr/")
    label_files = _volumes(labels)
    cases = []
    for stem, image in _volumes(images).items():
        name = stem[:-5] if stem.endswith("_0000") else stem
        if name not in label_files:
            raise VolumeError(f"case {name!r} has no label file in {labels}")
        cases.append(DatasetCase(name, image, label_files[name]))
    if not cases:
        raise VolumeError(f"no images found in {images}")
    return cases, dataset_class_names(root / "dataset.json")


def dataset_class_names(path: str | Path) -> dict[int, str] | None:
    """Class names of a ``dataset.json`` (MSD ``{"0": "background"}`` or nnU-Net v2 ``{"background": 0}``)."""
    path = Path(path)
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8")).get("labels")
    if not isinstance(raw, dict):
        return None
    if all(str(k).isdigit() for k in raw):
        return {int(k): str(v) for k, v in raw.items()}
    return {int(v): str(k) for k, v in raw.items() if isinstance(v, int)}
