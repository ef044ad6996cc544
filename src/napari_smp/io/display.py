"""How a volume is first shown: its intensity window and the screen directions of its axes.

Numpy only (no napari, no Qt): the napari side (``_napari_io`` for the window, ``_widgets`` for the
camera) applies what these functions compute. Nothing here changes data or geometry.

Window: a CT (intensities in Hounsfield units: 1st percentile below -500 and 99th above 0, the rule
of the engine's ``guess_norm``) opens in the abdominal soft-tissue window W 400 / L 40; anything
else (MR, PET, ...) between the 0.5th and 99.5th percentiles of a strided sample.

Orientation: arrays are ``(Z, Y, X)`` in RAS+ order (index 0 inferior -> superior, 1 posterior ->
anterior, 2 the patient's left -> right). The radiological display of 3D Slicer, ITK-SNAP and OHIF
puts anterior up and the patient's right on the screen's left in axial views, superior up and the
patient's right on the left in coronal views, and superior up with anterior on the screen's left in
sagittal views (Slicer's sagittal slice: screen x = posterior). The neurological convention only
swaps the patient's left and right. :func:`camera_orientation` turns a convention and the array axes
napari displays into napari's camera ``orientation`` (depth, vertical, horizontal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "CONVENTIONS",
    "NEUROLOGICAL",
    "RADIOLOGICAL",
    "WINDOW_PRESETS",
    "auto_limits",
    "camera_orientation",
    "looks_like_ct",
    "percentile_limits",
    "preset_limits",
    "strided_sample",
    "window_limits",
]

RADIOLOGICAL = "radiological"
NEUROLOGICAL = "neurological"
CONVENTIONS = (RADIOLOGICAL, NEUROLOGICAL)

#: CT window presets, name -> (width, level) in HU
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "abdomen": (400.0, 40.0),
    "lung": (1500.0, -600.0),
    "bone": (1800.0, 400.0),
    "brain": (80.0, 40.0),
}
CT_DEFAULT_PRESET = "abdomen"

_SAMPLE_VOXELS = 1_000_000


def window_limits(width: float, level: float) -> tuple[float, float]:
    """Contrast limits ``(level - width/2, level + width/2)`` of a window; W 400 / L 40 -> (-160, 240)."""
    if not width > 0:
        raise ValueError(f"a window width must be positive, not {width}")
    return (float(level) - float(width) / 2, float(level) + float(width) / 2)


def preset_limits(name: str) -> tuple[float, float]:
    """Contrast limits of a preset of :data:`WINDOW_PRESETS` (``abdomen``, ``lung``, ``bone``, ``brain``)."""
    try:
        return window_limits(*WINDOW_PRESETS[name])
    except KeyError:
        raise ValueError(f"unknown window preset {name!r}; choose one of {', '.join(WINDOW_PRESETS)}") from None


def strided_sample(volume: np.ndarray, max_voxels: int = _SAMPLE_VOXELS) -> np.ndarray:
    """About ``max_voxels`` voxels of ``volume`` on a regular stride (the same stride on every axis).

    Array-likes (memory maps, dask arrays) are strided before they are read.
    """
    arr = volume if hasattr(volume, "shape") and hasattr(volume, "__getitem__") else np.asarray(volume)
    size, ndim = int(np.prod(arr.shape)), len(arr.shape)
    step = max(1, int(round((size / max_voxels) ** (1 / max(ndim, 1))))) if size else 1
    return np.asarray(arr[(slice(None, None, step),) * ndim])


def _finite(sample: np.ndarray) -> np.ndarray:
    sample = np.asarray(sample)
    if np.issubdtype(sample.dtype, np.floating):
        sample = sample[np.isfinite(sample)]
    return sample.ravel()


def looks_like_ct(volume: np.ndarray) -> bool:
    """True when the intensities look like Hounsfield units: 1st percentile < -500 and 99th > 0."""
    sample = _finite(strided_sample(volume))
    if sample.size == 0:
        return False
    lo, hi = np.percentile(sample, (1, 99))
    return bool(lo < -500 and hi > 0)


def percentile_limits(volume: np.ndarray, lower: float = 0.5, upper: float = 99.5) -> tuple[float, float]:
    """Contrast limits at the ``lower`` and ``upper`` percentiles of a strided sample.

    A constant volume (or one whose percentiles coincide) gets its full range, and a volume with no
    finite voxel gets ``(0, 1)``, so the limits always increase.
    """
    sample = _finite(strided_sample(volume))
    if sample.size == 0:
        return (0.0, 1.0)
    lo, hi = (float(v) for v in np.percentile(sample, (lower, upper)))
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        hi = lo + 1.0
    return (lo, hi)


def auto_limits(volume: np.ndarray) -> tuple[tuple[float, float], str]:
    """The first window of a volume and what it is: ``((-160, 240), "abdomen")`` for a CT, else
    ``(percentile limits, "percentile")``."""
    if looks_like_ct(volume):
        return preset_limits(CT_DEFAULT_PRESET), CT_DEFAULT_PRESET
    return percentile_limits(volume), "percentile"


# orientation ---------------------------------------------------------------------------------------

#: RAS+ world direction (x=R, y=A, z=S) of each array axis: 0 -> superior, 1 -> anterior, 2 -> right
_AXIS_DIRECTION = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def _vertical(axis: int) -> str:
    # superior up (coronal, sagittal), anterior up (axial); a left-right axis shown vertically keeps
    # napari's default
    return "up" if axis in (0, 1) else "down"


def _horizontal(axis: int, convention: str) -> str:
    if axis == 2:  # the patient's right: on the screen's left in radiology
        return "left" if convention == RADIOLOGICAL else "right"
    if axis == 1:  # anterior on the screen's left in a sagittal view (3D Slicer, ITK-SNAP, OHIF)
        return "left"
    return "right"


def camera_orientation(displayed: Sequence[int], convention: str = RADIOLOGICAL) -> tuple[str, str, str]:
    """napari's camera ``orientation`` (depth, vertical, horizontal) for a RAS+ ``(Z, Y, X)`` volume.

    Args:
        displayed: the array axes (0, 1, 2 of the volume) napari shows, in ``dims.order``: the last
            two are the canvas' vertical and horizontal axes; a third, the depth axis of a 3D view,
            is inferred when only two are given.
        convention: ``"radiological"`` (the patient's right on the screen's left) or ``"neurological"``.

    The vertical and horizontal directions give the 2D views above. The depth direction is chosen so
    that a 3D rendering is the patient seen from outside, never a mirror image (the array axes in
    ``(S, A, R)`` order form a left-handed frame, so napari's default 3D view would be mirrored).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown display convention {convention!r}; choose {' or '.join(CONVENTIONS)}")
    axes = [int(a) for a in displayed]
    if len(axes) == 2:
        axes = [({0, 1, 2} - set(axes)).pop(), *axes]
    if sorted(axes) != [0, 1, 2]:
        raise ValueError(f"displayed axes must be two or three of 0, 1, 2 without repeats, not {tuple(displayed)}")
    depth_axis, v_axis, h_axis = axes
    vertical, horizontal = _vertical(v_axis), _horizontal(h_axis, convention)
    right = _AXIS_DIRECTION[h_axis] * (1 if horizontal == "right" else -1)
    up = _AXIS_DIRECTION[v_axis] * (1 if vertical == "up" else -1)
    # seen from outside: screen right x screen up points at the viewer
    towards = np.cross(right, up)
    depth = "towards" if towards @ _AXIS_DIRECTION[depth_axis] > 0 else "away"
    return (depth, vertical, horizontal)
