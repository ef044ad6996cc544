"""napari layers in and out: the (Z, Y, X) arrays the engine takes, and the geometry new layers inherit.

Every layer a widget creates lands exactly on its source image: same scale, translate, rotation,
shear, affine, units and axis labels, and a copy of its metadata (with the ``VolumeMeta`` under
``META_KEY`` carrying the class names of the result). Layers computed on a slab of slices are
shifted along the first axis so that they still overlay the right slices.

The viewer side of the display conventions is here too: :func:`apply_window` sets an image layer's CT
window, and :func:`apply_radiological_view` (from :mod:`napari_smp._napari_io`, where the reader
reaches it) turns napari's camera so that RAS+ volumes look as they do in radiology viewers.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._napari_io import apply_radiological_view, class_names_from, follow_medical_volumes, view_convention
from ..io.display import auto_limits, preset_limits
from ..io.meta import META_KEY

__all__ = [
    "ImageLayerError",
    "append_in_turns",
    "LayerMismatchError",
    "active_image",
    "apply_radiological_view",
    "apply_window",
    "follow_medical_volumes",
    "view_convention",
    "check_same_grid",
    "class_names_of",
    "set_class_names",
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

    return class_names_from(getattr(layer, "features", None), getattr(layer, "metadata", None))


def set_class_names(layer: Any, names: dict[int, str]) -> None:
    """Name the classes of a Labels layer where every reader of names looks (:func:`class_names_of`).

    The layer's features (``index`` / ``class``: napari shows the name under the cursor), its
    ``metadata['class_names']`` and the ``VolumeMeta``'s ``class_names`` (so a file written from the
    layer, NRRD segments or DICOM SEG segment labels, carries them). A value without a name (empty
    text) is dropped, and falls back to ``class <value>`` downstream.

    Args:
        layer: a napari Labels layer.
        names: label value -> name (0 is background and is always kept as such).
    """
    import pandas as pd

    clean = {int(v): str(n).strip() for v, n in names.items() if int(v) > 0 and str(n).strip()}
    clean = dict(sorted(clean.items()))
    rows = {0: "background", **clean}
    layer.features = pd.DataFrame({"index": list(rows), "class": list(rows.values())})
    layer.metadata["class_names"] = clean
    meta = layer.metadata.get(META_KEY)
    if dataclasses.is_dataclass(meta):
        layer.metadata[META_KEY] = dataclasses.replace(meta, class_names=clean or None)


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


def append_in_turns(viewer: Any, layers: list[Any], done: Callable[[list[Any]], None]) -> None:
    """Add ready-made napari layers to ``viewer``, one per turn of the event loop, then call ``done(added)``.

    Adding a layer costs napari a few hundred milliseconds on a software-rendered canvas (its visuals,
    controls and a redraw). Several in one go would freeze the viewer for their sum; one per turn lets
    clicks and scrolls in between. Layers are named on arrival (``unique_name``), so names stay unique
    even if the user adds layers meanwhile; a viewer closed meanwhile ends the chain.
    """
    from qtpy.QtCore import QTimer

    queue, added = list(layers), []

    def step() -> None:
        if not queue:
            done(added)
            return
        layer = queue.pop(0)
        try:
            layer.name = unique_name([ly.name for ly in viewer.layers], layer.name)
            viewer.layers.append(layer)
        except RuntimeError:  # the viewer's Qt objects are gone (closed while the chain ran)
            return
        added.append(layer)
        QTimer.singleShot(0, step)

    step()
