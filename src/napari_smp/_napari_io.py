"""napari hooks for files: the volume reader, the label-map writer and the phantom sample data.

These are thin: all geometry lives in :mod:`napari_smp.io`. A layer gets ``scale`` = spacing and
``translate`` = the world position of voxel 0, both in array-axis order ``(Z, Y, X)`` (S, A, R mm),
and its :class:`~napari_smp.io.VolumeMeta` under ``metadata[META_KEY]`` so that a label layer
saved later lands on the source file's grid. An image opens in a display window: the abdominal
soft-tissue window (W 400 / L 40) for a CT in Hounsfield units, the 0.5-99.5 percentiles otherwise
(:func:`napari_smp.io.display.auto_limits`).

A Labels layer saved as ``.dcm`` becomes a DICOM SEG that references the DICOM series its image was
read from (:func:`napari_smp.io.formats.dicom_seg.write_dicom_seg`), with the layer's class names as
segment labels. The series comes from the layer's ``VolumeMeta`` (layers our widgets make carry their
image's), or, for a layer painted with napari's own "new labels" button, from the DICOM image layer of
the current viewer that shares its grid.

A reader hook returns layer data and never sees the viewer; it asks ``napari.current_viewer()`` (the
viewer that is opening the file) to turn radiological once a volume of ours arrives
(:func:`follow_current_viewer`), so File > Open alone gives the radiological view.

**The radiological view**: napari's camera turned so RAS+ ``(Z, Y, X)`` volumes look as in radiology
viewers.

Only the camera turns (never the data, the layer transforms or the world coordinates, which stay RAS
mm), so painting, the status bar and saved files are unaffected. The plugin asks for the view in two
ways: its widgets and the demo call :func:`follow_medical_volumes` on their viewer, and the reader
(File > Open, drag and drop) calls :func:`follow_current_viewer` while napari reads a file, because a
reader hook returns layer data and is never handed the viewer: ``napari.current_viewer()`` is the
viewer whose File menu or drop target asked for the file.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .io import META_KEY, LabelError, VolumeError, VolumeMeta, make_phantom, read_volume, write_labels
from .io.dataset import dataset_class_names
from .io.display import CONVENTIONS, RADIOLOGICAL, auto_limits, camera_orientation, preset_limits
from .io.labels import file_stem, sidecar_class_names, to_label_array
from .io.read import SUFFIX_FORMATS, is_label_file

__all__ = [
    "get_reader",
    "read_layers",
    "write_labels_layer",
    "phantom_sample",
    "layer_kwargs",
    "class_names_from",
    "apply_radiological_view",
    "follow_current_viewer",
    "follow_medical_volumes",
    "view_convention",
]

LayerData = tuple[Any, dict[str, Any], str]
PathOrPaths = str | Sequence[str]

_DICOM_SUFFIXES = (".dcm", ".ima", ".dicom")
_SEG_SUFFIX = ".dcm"  # what the writer turns into a DICOM SEG
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


def class_names_from(features: Any, metadata: dict[str, Any] | None) -> dict[int, str] | None:
    """label value -> class name of a Labels layer, from what napari keeps with it.

    In this order: the layer's features (columns ``index`` and ``class``, or ``index`` and ``name`` as
    the reader writes them), the ``VolumeMeta`` in the metadata, ``metadata['class_names']`` (a dict,
    or a list indexed by value). None when the layer names no class.
    """
    columns = list(features) if isinstance(features, dict) else list(getattr(features, "columns", []))
    column = "class" if "class" in columns else "name" if "name" in columns else None
    if column is not None and len(features[column]):
        index = list(features["index"]) if "index" in columns else range(len(features[column]))
        return {int(i): str(n) for i, n in zip(index, list(features[column]), strict=True)}
    metadata = metadata or {}
    meta = metadata.get(META_KEY)
    if isinstance(meta, VolumeMeta) and meta.class_names:
        return {int(k): str(v) for k, v in meta.class_names.items()}
    names = metadata.get("class_names")
    if isinstance(names, dict):
        return {int(k): str(v) for k, v in names.items()}
    if isinstance(names, (list, tuple)):
        return dict(enumerate(str(n) for n in names))
    return None


def _dataset_json_names(path: Path) -> dict[int, str] | None:
    """Class names of the Decathlon / nnU-Net ``dataset.json`` of a label file in ``labelsTr/`` (or beside it)."""
    for folder in (path.parent, path.parent.parent):
        candidate = folder / "dataset.json"
        if candidate.is_file():
            try:
                names = dataset_class_names(candidate)
            except (OSError, ValueError, AttributeError):  # names are a convenience, never a reason to fail a read
                return None
            return {v: n for v, n in (names or {}).items() if v > 0} or None
    return None


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
                meta.class_names = sidecar_class_names(path) or _dataset_json_names(path)
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
    layers = [_read_one(p) for p in _paths(path)]
    follow_current_viewer()  # File > Open alone gives the radiological view, as the widgets do
    return layers


def _dicom_image_meta(shape: tuple[int, ...], attributes: dict[str, Any]) -> VolumeMeta | None:
    """The ``VolumeMeta`` of a DICOM image layer in the current viewer on the grid of the labels being saved."""
    try:
        import napari
    except ImportError:  # pragma: no cover - the writer runs inside napari
        return None
    viewer = napari.current_viewer()
    if viewer is None:
        return None
    scale = np.asarray(attributes.get("scale") if attributes.get("scale") is not None else (1.0, 1.0, 1.0), float)
    translate = np.asarray(attributes.get("translate") if attributes.get("translate") is not None else (0, 0, 0),
                           float)
    for layer in viewer.layers:
        meta = getattr(layer, "metadata", {}).get(META_KEY)
        if not isinstance(meta, VolumeMeta) or meta.format != "dicom" or tuple(layer.data.shape) != tuple(shape):
            continue
        if np.allclose(layer.scale, scale, rtol=1e-4) and np.allclose(layer.translate, translate, atol=1e-3):
            return meta
    return None


def write_labels_layer(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: save a 3D Labels layer as ``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``
    or, for labels on a DICOM series, ``.dcm`` (a DICOM SEG referencing that series).

    With a :class:`~napari_smp.io.VolumeMeta` in the layer metadata the file lands exactly on the
    source image's grid; without one, the layer's ``scale`` and ``translate`` (mm, ``(Z, Y, X)``)
    become an axis-aligned RAS+ affine, except for ``.dcm``, which takes the grid of the DICOM image
    layer it was painted on. The layer's class names (:func:`class_names_from`) name NRRD segments and
    DICOM SEG segments.

    Returns:
        The written path, in a list (napari's writer contract).

    Raises:
        VolumeError: not a 3D layer, ``.dcm`` for labels whose image is not a DICOM series (one
            sentence saying to save as ``.nii.gz``), or a failed write.
    """
    labels = np.asarray(data)
    if labels.ndim != 3:
        raise VolumeError(
            f"cannot write {path}: the layer is {labels.ndim}D, and only 3D label volumes can be saved."
        )
    meta = (attributes.get("metadata") or {}).get(META_KEY)
    if not isinstance(meta, VolumeMeta) and str(path).lower().endswith(_SEG_SUFFIX):
        meta = _dicom_image_meta(labels.shape, attributes)
    if not isinstance(meta, VolumeMeta):
        scale = attributes.get("scale")
        translate = attributes.get("translate")
        meta = VolumeMeta.from_grid(
            labels.shape,
            tuple(scale) if scale is not None else (1.0, 1.0, 1.0),
            tuple(translate) if translate is not None else (0.0, 0.0, 0.0),
        )
    names = class_names_from(attributes.get("features"), attributes.get("metadata"))
    named = {v: n for v, n in (names or {}).items() if v > 0} or None  # 0 is background, never a segment
    try:
        return [str(write_labels(path, labels, meta, class_names=named))]
    except (VolumeError, LabelError) as err:
        # napari takes a ValueError from a writer it picked itself for "no writer here" and says only
        # that; the warning carries our sentence into the message napari shows instead
        warnings.warn(str(err), UserWarning, stacklevel=2)
        raise


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


# --- the radiological view ---------------------------------------------------------------------

#: viewer -> the convention it follows (weak: a closed viewer is forgotten)
_CONVENTION: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_FOLLOWED: weakref.WeakSet[Any] = weakref.WeakSet()


def view_convention(viewer: Any) -> str | None:
    """The convention :func:`apply_radiological_view` set on ``viewer``, or None (napari's default view)."""
    return _CONVENTION.get(viewer)


def _orient(viewer: Any) -> None:
    convention = _CONVENTION.get(viewer)
    dims = viewer.dims
    if convention is None or dims.ndim < 3:
        return
    # a (Z, Y, X) volume sits on the last three dims (napari aligns layers on their trailing axes)
    first = dims.ndim - 3
    shown = [d - first for d in list(dims.order)[-3:]]
    if any(a < 0 for a in shown):  # a leading axis (time, channel) is on screen: not a volume view
        return
    orientation = camera_orientation(shown, convention)
    camera = _camera(viewer)
    if tuple(str(o) for o in camera.orientation) != orientation:
        camera.orientation = orientation


def _camera(viewer: Any) -> Any:
    """The viewer's camera: ``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def apply_radiological_view(viewer: Any, convention: str = RADIOLOGICAL) -> None:
    """Show RAS+ ``(Z, Y, X)`` volumes as radiology viewers do, by turning napari's camera only.

    Radiological (the default; 3D Slicer, ITK-SNAP, OHIF): axial with anterior up and the patient's
    right on the screen's left, coronal with superior up and the patient's right on the left,
    sagittal with superior up and anterior on the left. ``"neurological"`` puts the patient's right
    on the screen's right. The camera follows when the user rolls or transposes the dims or switches
    to 3D (the 3D view is never a mirror image). Layer data, scale, translate and the world
    coordinates (RAS mm) are untouched, so painting, the status bar and saved files are unaffected.

    Args:
        viewer: a ``napari.Viewer`` (or ``ViewerModel``).
        convention: ``"radiological"`` or ``"neurological"``.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown display convention {convention!r}; choose {' or '.join(CONVENTIONS)}")
    first_time = viewer not in _CONVENTION
    _CONVENTION[viewer] = convention
    if first_time:
        ref = weakref.ref(viewer)

        def follow(event: Any = None) -> None:
            v = ref()
            if v is not None:
                _orient(v)

        for name in ("order", "ndisplay", "ndim"):
            getattr(viewer.dims.events, name).connect(follow)
    _orient(viewer)


def _is_medical_volume(layer: Any) -> bool:
    return META_KEY in getattr(layer, "metadata", {}) and getattr(layer, "ndim", 0) == 3


def follow_medical_volumes(viewer: Any) -> None:
    """Turn on the radiological view as soon as ``viewer`` holds a volume read by napari-smp.

    Called when a widget of this plugin is created (and by the demo): napari's reader hook cannot
    reach the viewer, so the widgets do it. A volume is ours when it carries a ``VolumeMeta`` (the
    reader, the phantom sample and every layer our widgets derive from them). Calling it again, or
    after the user chose a convention, changes nothing.
    """
    if viewer in _FOLLOWED:
        return
    _FOLLOWED.add(viewer)
    if any(_is_medical_volume(ly) for ly in viewer.layers):
        if viewer not in _CONVENTION:
            apply_radiological_view(viewer)
        return
    ref = weakref.ref(viewer)

    def on_inserted(event: Any) -> None:
        v = ref()
        if v is None or not _is_medical_volume(event.value):
            return
        v.layers.events.inserted.disconnect(on_inserted)
        if v not in _CONVENTION:
            apply_radiological_view(v)

    viewer.layers.events.inserted.connect(on_inserted)


def follow_current_viewer() -> None:
    """:func:`follow_medical_volumes` on ``napari.current_viewer()``, if napari runs one; never raises.

    The reader calls it: the layers it returns reach that viewer right after, and the first volume of
    ours among them turns the view radiological (unless a convention was already chosen there).
    """
    try:
        import napari

        viewer = napari.current_viewer()
        if viewer is not None:
            follow_medical_volumes(viewer)
    except Exception:  # the display is a nicety: reading the file must never fail for it
        return
