"""napari hooks for files: the volume reader, the label-map writer and the phantom sample data.

These are thin: all geometry lives in :mod:`napari_smp.io`. A layer gets ``scale`` = spacing and
``translate`` = the world position of voxel 0, both in array-axis order ``(Z, Y, X)`` (S, A, R mm),
and its :class:`~napari_smp.io.VolumeMeta` under ``metadata[META_KEY]`` so that a label layer
saved later lands on the source file's grid. An image opens in a display window: the abdominal
soft-tissue window (W 400 / L 40) for a CT in Hounsfield units, the 0.5-99.5 percentiles otherwise
(:func:`napari_smp.io.display.auto_limits`).

The radiological orientation is not set here: a reader hook returns layer data and never sees the
viewer. The plugin's widgets and the demo turn the camera (``_widgets._layers.apply_radiological_view``).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .io import META_KEY, LabelError, VolumeError, VolumeMeta, make_phantom, read_volume, write_labels
from .io.display import auto_limits, preset_limits
from .io.labels import file_stem, sidecar_class_names, to_label_array
from .io.read import SUFFIX_FORMATS, is_label_file

__all__ = ["get_reader", "read_layers", "write_labels_layer", "phantom_sample", "layer_kwargs"]

LayerData = tuple[Any, dict[str, Any], str]
PathOrPaths = str | Sequence[str]

_DICOM_SUFFIXES = (".dcm", ".ima", ".dicom")
_DICOM_PROBE_FILES = 32  # files looked at before deciding a folder holds no DICOM


def _paths(path: PathOrPaths) -> list[Path]:
    return [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]


def _looks_like_dicom_folder(folder: Path) -> bool:
    """Cheap test: a ``.dcm`` name or the ``DICM`` magic at byte 128 among the first few files."""
    seen = 0
    for item in folder.iterdir():
        if not item.is_file():
            continue
        if item.suffix.lower() in _DICOM_SUFFIXES:
            return True
        with open(item, "rb") as fh:
            fh.seek(128)
            if fh.read(4) == b"DICM":
                return True
        seen += 1
        if seen >= _DICOM_PROBE_FILES:
            break
    return False


def _can_read(p: Path) -> bool:
    if p.is_dir():
        return _looks_like_dicom_folder(p)
    return any(p.name.lower().endswith(suffix) for suffix in SUFFIX_FORMATS)


def get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """npe2 reader hook: :func:`read_layers` when every path is a supported volume, else ``None``.

    Never raises (napari's contract): a path we cannot judge is simply declined.
    """
    try:
        paths = _paths(path)
        return read_layers if paths and all(_can_read(p) for p in paths) else None
    except Exception:  # e.g. a folder we may not list: let another reader try
        return None


def layer_kwargs(meta: VolumeMeta, name: str) -> dict[str, Any]:
    """Layer keyword arguments that place a ``(Z, Y, X)`` array of ``meta`` in world millimetres."""
    return {
        "name": name,
        "scale": tuple(meta.spacing),
        "translate": tuple(meta.origin_zyx),
        "units": "mm",
        "metadata": {META_KEY: meta},
    }


def _class_features(class_names: dict[int, str]) -> dict[str, list[Any]]:
    """Labels-layer features: one row per class, so napari's status bar names the class under the cursor."""
    rows = {0: "background", **class_names}
    return {"index": list(rows), "name": list(rows.values())}


def _read_one(path: Path) -> LayerData:
    data, meta = read_volume(path, allow_nan=True)
    name = file_stem(path)
    if is_label_file(path, data):
        try:
            labels = to_label_array(data, path)
        except LabelError as exc:
            warnings.warn(f"{exc} It is opened as an image.", UserWarning, stacklevel=2)
        else:
            if meta.class_names is None:
                meta.class_names = sidecar_class_names(path)
            kwargs = layer_kwargs(meta, name)
            if meta.class_names:
                kwargs["features"] = _class_features(meta.class_names)
            return labels, kwargs, "labels"
    if np.issubdtype(data.dtype, np.floating) and np.isnan(data).any():
        warnings.warn(
            f"{path} has NaN voxels; fill them before segmenting this image.", UserWarning, stacklevel=2
        )
    limits, _ = auto_limits(data)
    return data, {**layer_kwargs(meta, name), "colormap": "gray", "contrast_limits": limits}, "image"


def read_layers(path: PathOrPaths) -> list[LayerData]:
    """Read each path into an Image layer, or a Labels layer for a segmentation file.

    A file is a segmentation when its name says so (``*_seg``, ``*label*``, ``*mask*``, ``gt``...)
    or its voxels are integers with few values (see :func:`napari_smp.io.is_label_file`).

    Raises:
        VolumeError: a file cannot be read (napari shows the message).
    """
    return [_read_one(p) for p in _paths(path)]


def write_labels_layer(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: save a 3D Labels layer as ``.nii.gz``, ``.nii``, ``.nrrd`` or ``.mha``.

    With a :class:`~napari_smp.io.VolumeMeta` in the layer metadata the file lands exactly on the
    source image's grid; without one, the layer's ``scale`` and ``translate`` (mm, ``(Z, Y, X)``)
    become an axis-aligned RAS+ affine.

    Returns:
        The written path, in a list (napari's writer contract).
    """
    labels = np.asarray(data)
    if labels.ndim != 3:
        raise VolumeError(
            f"cannot write {path}: the layer is {labels.ndim}D, and only 3D label volumes can be saved."
        )
    meta = (attributes.get("metadata") or {}).get(META_KEY)
    if not isinstance(meta, VolumeMeta):
        scale = attributes.get("scale")
        translate = attributes.get("translate")
        meta = VolumeMeta.from_grid(
            labels.shape,
            tuple(scale) if scale is not None else (1.0, 1.0, 1.0),
            tuple(translate) if translate is not None else (0.0, 0.0, 0.0),
        )
    return [str(write_labels(path, labels, meta))]


def phantom_sample(seed: int = 0) -> list[LayerData]:
    """Sample data: the procedural abdominal CT phantom and its 7-organ label map."""
    phantom = make_phantom(seed)
    image_meta = dataclasses.replace(phantom.meta, class_names=None)
    image_kwargs = {
        **layer_kwargs(image_meta, "phantom CT"),
        "colormap": "gray",
        "contrast_limits": preset_limits("abdomen"),  # soft tissue, W 400 / L 40
    }
    label_kwargs = layer_kwargs(phantom.meta, "phantom labels")
    label_kwargs["features"] = _class_features(phantom.meta.class_names or {})
    label_kwargs["opacity"] = 0.5
    return [(phantom.image, image_kwargs, "image"), (phantom.labels, label_kwargs, "labels")]
