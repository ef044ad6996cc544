"""napari layers in and out: the (Z, Y, X) arrays the engine takes, and the geometry new layers inherit.

Every layer a widget creates lands exactly on its source image: same scale, translate, rotation,
shear, affine, units and axis labels, and a copy of its metadata (with the ``VolumeMeta`` under
``META_KEY`` carrying the class names of the result). Layers computed on a slab of slices are
shifted along the first axis so that they still overlay the right slices.

The viewer side of the display conventions lives here too: :func:`apply_radiological_view` turns
napari's camera (never the data, the layer transforms or the world coordinates) so that RAS+ volumes
look as they do in radiology viewers, and :func:`apply_window` sets an image layer's CT window.
"""

from __future__ import annotations

import copy
import dataclasses
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..io.display import CONVENTIONS, RADIOLOGICAL, auto_limits, camera_orientation, preset_limits
from ..io.meta import META_KEY

__all__ = [
    "ImageLayerError",
    "LayerMismatchError",
    "active_image",
    "apply_radiological_view",
    "apply_window",
    "follow_medical_volumes",
    "view_convention",
    "check_same_grid",
    "class_names_of",
    "derived_layer_kwargs",
    "labels_of",
    "layer_spacing",
    "unique_name",
    "volume_layers",
    "volume_of",
    "volume_spacing",
]


class ImageLayerError(ValueError):
    """A layer cannot be used as a (Z, Y, X) volume."""


class LayerMismatchError(ValueError):
    """Two layers that must share a voxel grid do not."""


def _base(layer: Any) -> Any:
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def volume_of(layer: Any) -> np.ndarray:
    """(Z, Y, X) intensities of an Image layer (a 2D image becomes one slice), read into memory."""
    if getattr(layer, "rgb", False):
        raise ImageLayerError(f"'{layer.name}' is an RGB image; choose a grey-level CT or MR volume")
    data = np.asarray(_base(layer))
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ImageLayerError(f"'{layer.name}' has {data.ndim} dimensions; a (Z, Y, X) volume is needed")
    return data


def labels_of(layer: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A copy of a Labels layer's data as (Z, Y, X); painting may go on while the copy is used."""
    data = np.array(_base(layer), copy=True)
    if data.ndim == 2:
        data = data[None]
    if shape is not None and data.shape != tuple(shape):
        raise ImageLayerError(f"labels '{layer.name}' are {data.shape} but the image is {tuple(shape)}: "
                              "choose the labels painted on this image")
    return data


def volume_layers(layers: Sequence[Any]) -> list[Any]:
    """The image layers that hold a single-channel 3D volume (Z, Y, X)."""
    return [
        layer
        for layer in layers
        if type(layer).__name__ == "Image"
        and getattr(layer, "ndim", 0) == 3
        and not getattr(layer, "rgb", False)
    ]


def layer_spacing(layer: Any) -> tuple[float, ...]:
    """Voxel size in mm, (Z, Y, X): the layer's scale, or its ``VolumeMeta`` when the scale is unset."""
    scale = tuple(float(s) for s in layer.scale)
    meta = layer.metadata.get(META_KEY)
    if meta is not None and all(s == 1.0 for s in scale) and len(meta.spacing) == len(scale):
        return tuple(float(s) for s in meta.spacing)
    return scale


def volume_spacing(layer: Any) -> tuple[float, ...]:
    """``layer_spacing`` as (Z, Y, X): a 2D layer is one slice 1 mm thick."""
    spacing = layer_spacing(layer)
    return ((1.0,) + spacing) if len(spacing) == 2 else spacing


def class_names_of(layer: Any) -> dict[int, str] | None:
    """label -> class name of a Labels layer: its features (``class`` or ``name``), its ``VolumeMeta`` or
    ``metadata['class_names']`` (:func:`napari_smp._napari_io.class_names_from`, which the writer uses too)."""
    from .._napari_io import class_names_from

    return class_names_from(getattr(layer, "features", None), getattr(layer, "metadata", None))


def derived_layer_kwargs(source: Any, *, class_names: dict[int, str] | None = None, z_offset: int = 0) -> dict:
    """Keyword arguments that put a new layer on ``source``'s grid.

    Args:
        source: the napari layer the result was computed from.
        class_names: label value -> name for a Labels result; stored in the metadata (``class_names``
            and the ``VolumeMeta``) and returned as ``features`` so napari shows the name on hover.
        z_offset: first slice of ``source`` the new (S, Y, X) data starts at.
    """
    meta = copy.deepcopy(dict(source.metadata))
    translate = np.asarray(source.translate, dtype=np.float64)
    if z_offset:
        from napari.utils.transforms import Affine

        linear = Affine(scale=source.scale, rotate=source.rotate, shear=source.shear).linear_matrix
        step = np.zeros(len(translate))
        step[0] = z_offset
        translate = translate + linear @ step
    kwargs: dict[str, Any] = {
        "scale": tuple(source.scale),
        "translate": tuple(translate),
        "rotate": np.asarray(source.rotate),
        "shear": np.asarray(source.shear),
        "affine": np.asarray(source.affine.affine_matrix),
        "units": tuple(source.units),
        "axis_labels": tuple(source.axis_labels),
    }
    if class_names is not None:
        import pandas as pd

        names = {int(v): str(n) for v, n in class_names.items()}
        meta["class_names"] = names
        if dataclasses.is_dataclass(meta.get(META_KEY)):
            meta[META_KEY] = dataclasses.replace(meta[META_KEY], class_names=names)
        kwargs["features"] = pd.DataFrame({"index": list(names), "class": list(names.values())})
    kwargs["metadata"] = meta
    return kwargs


def check_same_grid(a: Any, b: Any) -> None:
    """Raise ``LayerMismatchError`` when layers ``a`` and ``b`` differ in shape, scale or position."""
    if tuple(a.data.shape) != tuple(b.data.shape):
        raise LayerMismatchError(
            f"'{a.name}' is {tuple(a.data.shape)} but '{b.name}' is {tuple(b.data.shape)}: "
            "choose two layers of the same volume"
        )
    sa, sb = layer_spacing(a), layer_spacing(b)
    if not np.allclose(sa, sb, rtol=1e-4, atol=1e-6):
        fmt = lambda s: " x ".join(f"{v:g}" for v in s)  # noqa: E731
        raise LayerMismatchError(
            f"'{a.name}' has voxels of {fmt(sa)} mm but '{b.name}' has {fmt(sb)} mm: "
            "the two layers must share one grid"
        )
    if not np.allclose(a.translate, b.translate, atol=1e-3):
        raise LayerMismatchError(f"'{a.name}' and '{b.name}' are placed at different origins: "
                                 "the two layers must share one grid")


def unique_name(existing: list[str] | set[str], base: str) -> str:
    """``base``, or ``base (2)``, ``base (3)``... whichever is not taken yet."""
    taken = set(existing)
    if base not in taken:
        return base
    n = 2
    while f"{base} ({n})" in taken:
        n += 1
    return f"{base} ({n})"


# display: camera orientation and intensity windows ---------------------------------------------------

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


def active_image(viewer: Any) -> Any | None:
    """The selected Image layer, else the topmost Image layer, else None."""
    active = viewer.layers.selection.active
    if active is not None and type(active).__name__ == "Image":
        return active
    images = [ly for ly in viewer.layers if type(ly).__name__ == "Image"]
    return images[-1] if images else None


def apply_window(layer: Any, preset: str = "auto") -> tuple[float, float]:
    """Set an Image layer's ``contrast_limits`` to a window preset and return them.

    Args:
        layer: a napari Image layer.
        preset: ``abdomen`` (W 400 / L 40), ``lung`` (W 1500 / L -600), ``bone`` (W 1800 / L 400),
            ``brain`` (W 80 / L 40), or ``auto``: the abdominal window for a CT, the 0.5-99.5
            percentiles otherwise (what the reader chooses when it opens a file).
    """
    if preset == "auto":
        # the coarsest level of a pyramid is sample enough; auto_limits strides before reading
        limits, _ = auto_limits(layer.data[-1] if getattr(layer, "multiscale", False) else layer.data)
    else:
        limits = preset_limits(preset)
    layer.contrast_limits = limits
    return limits
