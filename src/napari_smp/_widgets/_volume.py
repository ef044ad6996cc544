"""Turning napari layer data into the (Z, Y, X) arrays the engine takes."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ImageLayerError", "volume_of", "labels_of"]


class ImageLayerError(ValueError):
    """A layer cannot be used as a (Z, Y, X) volume."""


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
