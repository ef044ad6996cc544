"""Inference: a trained network applied to whole volumes, slice by slice, and the painting carried
through a volume without a network (propagation along the image, interpolation, nearest copy).

Names are imported on first use (PEP 562): propagation and interpolation need no torch.
"""

from __future__ import annotations

from ..._lazy import lazy_exports

__all__ = [
    "CancelFn",
    "ClusterMaps",
    "FilledSlices",
    "Prediction",
    "Predictor",
    "ProgressFn",
    "interpolate",
    "nearest_copy",
    "propagate",
]

_WHERE = {
    "CancelFn": "predictor",
    "ClusterMaps": "predictor",
    "Prediction": "predictor",
    "Predictor": "predictor",
    "ProgressFn": "predictor",
    "FilledSlices": "interpolation",
    "interpolate": "interpolation",
    "nearest_copy": "interpolation",
    "propagate": "propagation",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
