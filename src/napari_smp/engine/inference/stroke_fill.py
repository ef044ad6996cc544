"""Strokes on an axial slice -> that whole slice labelled: a marker-controlled watershed on the image.

Scribbles leave most pixels of a slice unknown, and propagation carries whole painted slices only. A
slice holding a background stroke and at least one structure's stroke is filled the way 3D Slicer's
"Grow from seeds" and classic interactive watershed segmentation do: every stroke floods the slice's
gradient landscape from its pixels, and each pixel takes the label of the flood that reaches it over
the lowest ridge. Organ boundaries are where the image's edges are, so the strokes need not come near
them. The slice is then a whole painted slice, and everything made for whole slices (propagation, the
intensity evidence, the network) works from it.

The gradient is taken of the image clipped to the range of the structures' marked intensities (widened
by half that range): air, bone or a skull's edges saturate instead of outranking the faint edge
between two organs. What a stroke-less structure on a filled slice becomes is undefined (its
neighbours' floods share it): the user guide says to give every structure of a scribbled slice a
stroke. Measured in docs/experiments/2026-12-07-scribble-fill-suggestion-start.md.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["fill_strokes", "scribbled_slices", "fill_scribbled", "SMOOTHING"]

#: Gaussian sigma (pixels) before the gradient: 1.0 in the pilot (phantom, dev CT, MNI, two lesion
#: volumes); 2.0 blurred the phantom's small organs, 0.5 let CT noise split floods
SMOOTHING = 1.0


def fill_strokes(image: np.ndarray, marks: np.ndarray, background_label: int) -> np.ndarray:
    """One slice's strokes grown into a whole label map.

    Args:
        image: (Y, X) intensities.
        marks: (Y, X) integer strokes: 0 = not marked, ``background_label`` = background, others = classes.
        background_label: the value of background strokes.
    Returns:
        (Y, X) labels, marks' dtype: every pixel a class value or 0 (background); marked pixels as marked.
    """
    from skimage.filters import sobel
    from skimage.segmentation import watershed

    data = image.astype(np.float32, copy=False)
    structures = (marks != 0) & (marks != background_label)
    if structures.any():
        lo, hi = np.percentile(data[structures], [1.0, 99.0])
        margin = 0.5 * float(hi - lo) + 1e-3
        data = np.clip(data, lo - margin, hi + margin)
    landscape = sobel(ndimage.gaussian_filter(data, SMOOTHING))
    grown = watershed(landscape, markers=marks.astype(np.int32))
    grown[grown == background_label] = 0
    return grown.astype(marks.dtype, copy=False)


def scribbled_slices(painting: np.ndarray, background_label: int) -> np.ndarray:
    """Axial slices whose own strokes say what the whole slice is: a background stroke and a structure's.

    A stroke drawn on a coronal or sagittal slice crosses each axial slice in a line, and a line is no
    ground to grow a slice from: a slice counts only by its *axial* marks, those with no mark straight
    above or below them, and only when they spread over both in-plane axes (a coronal stroke drawn
    left to right lies in one axial row).

    Args:
        painting: (Z, Y, X) scribbles (0 = not marked).
    Returns:
        (n,) int64 slice indices, ascending.
    """
    data = np.asarray(painting)
    marked = data != 0
    stacked = np.zeros_like(marked)  # marked with a mark above or below: part of a through-plane stroke
    stacked[1:] |= marked[1:] & marked[:-1]
    stacked[:-1] |= marked[:-1] & marked[1:]
    own = marked & ~stacked
    out = []
    for z in np.flatnonzero(own.any(axis=(1, 2))):
        values = data[z][own[z]]
        rows, cols = np.nonzero(own[z])
        spread = np.ptp(rows) > 0 and np.ptp(cols) > 0
        if spread and (values == background_label).any() and (values != background_label).any():
            out.append(z)
    return np.asarray(out, np.int64)


def fill_scribbled(
    image: np.ndarray, painting: np.ndarray, background_label: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every scribbled axial slice (``scribbled_slices``) filled by ``fill_strokes``.

    Args:
        image: (Z, Y, X) intensities.
        painting: (Z, Y, X) scribbles.
    Returns:
        filled: (Z, Y, X) a whole-slice painting (painting's dtype): the filled slices labelled (0 =
            background), every other slice 0; slices: the filled slices' indices.
    """
    slices = scribbled_slices(painting, background_label)
    filled = np.zeros(painting.shape, painting.dtype)
    for z in slices:
        filled[z] = fill_strokes(image[z], np.asarray(painting[z]), background_label)
    return filled, slices
