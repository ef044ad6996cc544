"""Inference: a trained network applied to whole volumes, slice by slice, and the painting carried
through a volume without a network (propagation along the image, interpolation, nearest copy).

Names are imported on first use (PEP 562): propagation and interpolation need no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
